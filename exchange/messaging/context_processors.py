"""The nav's unread badge: ``messages_unread`` in every page's context.

A callable, which templates call when they use it, so a page that does not show the
badge costs no query and one that shows it twice costs one.
"""

from __future__ import annotations

from django.http import HttpRequest

from exchange.accounts.models import User
from exchange.messaging.selectors import unread_count


class UnreadCount:
    def __init__(self, user: User | None) -> None:
        self._user = user
        self._count: int | None = None

    def __call__(self) -> int:
        if self._count is None:
            self._count = unread_count(self._user) if self._user is not None else 0
        return self._count


def unread_messages(request: HttpRequest) -> dict[str, UnreadCount]:
    user = getattr(request, "user", None)
    signed_in = isinstance(user, User) and user.is_authenticated
    return {"messages_unread": UnreadCount(user if signed_in else None)}
