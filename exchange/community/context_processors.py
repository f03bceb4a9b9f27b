"""The nav's notification badge: ``notifications_unread`` in every page's context (0 when
signed out). Lazy, so a page that does not show it costs no query."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from exchange.accounts.models import User
from exchange.community.models import Channel
from exchange.community.selectors import unread_count


def unread_notifications(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        return {"notifications_unread": 0}
    return {"notifications_unread": SimpleLazyObject(
        lambda: unread_count(user, channel=Channel.PORTAL))}
