"""Every change members make to their community side: follows, saved searches, their
public profile, their notifications and switches; and the announcement of a new work."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TypedDict
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.catalogue.models import MediaType, Work, WorkStatus
from exchange.community import notifications
from exchange.community.models import (
    Channel,
    Follow,
    MemberProfile,
    Notification,
    NotificationSwitch,
    SavedSearch,
)
from exchange.community.selectors import (
    member_get_public,
    saved_search_matches,
    work_url,
)
from exchange.core.errors import ServiceError
from exchange.core.member_text import plain_text
from exchange.core.rate_limits import Rate, check
from exchange.money.currencies import is_known_currency

log = logging.getLogger(__name__)

BIO_MAX_CHARS = 1000
DISPLAY_NAME_MAX_CHARS = 80
MAX_LINKS = 5
LINK_MAX_CHARS = 300
QUERY_MAX_CHARS = 200


def _rate(setting: str) -> Rate:
    return Rate.parse(getattr(settings, setting))


# --- follows ------------------------------------------------------------------------


def follow_create(*, follower: User, username: str) -> tuple[Follow, bool]:
    """Follow the rights holder ``username``: (the follow, whether it is new). Following
    again is no error (the same follow comes back), so a retried request is harmless."""
    target = member_get_public(username=username)
    if target.pk == follower.pk:
        raise ServiceError(_("You cannot follow yourself."), code="follow_self")
    if not target.is_rights_holder:
        raise ServiceError(_("Only rights holders can be followed."),
                           code="not_a_rights_holder")
    existing = Follow.objects.filter(follower=follower, rights_holder=target).first()
    if existing is not None:
        return existing, False
    check("follow", follower.pk, _rate("COMMUNITY_FOLLOW_RATE"))
    try:
        with transaction.atomic():
            return Follow.objects.create(follower=follower, rights_holder=target), True
    except IntegrityError:  # a concurrent request followed first
        return Follow.objects.get(follower=follower, rights_holder=target), False


def follow_delete(*, follower: User, username: str) -> bool:
    """Stop following ``username``; True if there was a follow. Unfollowing someone one
    does not follow is no error, but an unknown name is (a typo should say so)."""
    target = member_get_public(username=username)
    deleted, _rows = Follow.objects.filter(follower=follower, rights_holder=target).delete()
    return bool(deleted)


# --- saved searches (wishlists) -----------------------------------------------------


def saved_search_create(*, owner: User, query: object, media_type: str = "",
                        currency: str = "", max_price_minor: int | None = None,
                        ) -> tuple[SavedSearch, bool]:
    """Save a catalogue search: (the search, whether it is new). The same search again
    is the same entry; more than ``COMMUNITY_MAX_SAVED_SEARCHES`` is refused."""
    text = " ".join(plain_text(query, field="query", max_chars=QUERY_MAX_CHARS).split())
    if media_type and media_type not in MediaType.values:
        raise ServiceError(_("Unknown media type."), code="invalid", field="media_type")
    if currency and not is_known_currency(currency):
        raise ServiceError(_("Use the ISO 4217 code of a currency in use, e.g. EUR."),
                           code="invalid", field="currency")
    if max_price_minor is not None:
        if isinstance(max_price_minor, bool) or not isinstance(max_price_minor, int) \
                or max_price_minor <= 0:
            raise ServiceError(_("The highest price is a whole number of minor units above "
                                 "zero."), code="invalid", field="max_price_minor")
        if not currency:
            raise ServiceError(_("A highest price needs its currency."), code="invalid",
                               field="currency")
    fields = {"query": text, "media_type": media_type, "currency": currency,
              "max_price_minor": max_price_minor}
    with transaction.atomic():
        # Lock the member's row so that two concurrent saves cannot both pass the limit.
        User.objects.select_for_update().filter(pk=owner.pk).first()
        existing = SavedSearch.objects.filter(owner=owner, **fields).first()
        if existing is not None:
            return existing, False
        limit = settings.COMMUNITY_MAX_SAVED_SEARCHES
        if SavedSearch.objects.filter(owner=owner).count() >= limit:
            raise ServiceError(
                _("You can keep at most %(limit)d saved searches; delete one first.")
                % {"limit": limit}, code="too_many_saved_searches", status_code=409)
        check("saved_search", owner.pk, _rate("COMMUNITY_SAVED_SEARCH_RATE"))
        return SavedSearch.objects.create(owner=owner, **fields), True


def saved_search_delete(*, owner: User, search_id: object) -> None:
    """Delete one of ``owner``'s saved searches; another member's is a 404, like one
    that does not exist."""
    try:
        pk = int(str(search_id))
    except ValueError:
        pk = -1
    deleted, _rows = SavedSearch.objects.filter(owner=owner, pk=pk).delete()
    if not deleted:
        raise ServiceError(_("No such saved search."), code="not_found", status_code=404)


# --- public profile -----------------------------------------------------------------


class ProfileChanges(TypedDict, total=False):
    display_name: object
    bio: object
    links: object
    collection_public: object


def _link(value: object, index: int) -> str:
    field = f"links[{index}]"
    text = plain_text(value, field=field, max_chars=LINK_MAX_CHARS)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(
            char.isspace() for char in text):
        raise ServiceError(_("A link is a web address starting with http:// or https://."),
                           code="invalid_link", field=field)
    if parts.username or parts.password:
        raise ServiceError(_("A link may not carry a user name or password."),
                           code="invalid_link", field=field)
    return text


def email_language_set(*, user: User, language: str) -> None:
    """Keep ``language`` (one the portal speaks, else nothing is kept) for ``user``'s
    emails. Writes only when it changes, so a login costs one read."""
    if language not in dict(settings.LANGUAGES):
        return
    if MemberProfile.objects.filter(user=user, email_language=language).exists():
        return
    MemberProfile.objects.update_or_create(user=user, defaults={"email_language": language})


def profile_update(*, user: User, changes: ProfileChanges) -> MemberProfile:
    """Change what ``user`` shows the public. Everything is checked before anything is
    stored: one bad link leaves the whole profile as it was."""
    unknown = set(changes) - set(ProfileChanges.__annotations__)
    if unknown:
        raise ServiceError(_("Cannot change %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
                           code="invalid")
    values: dict[str, object] = {}
    if "display_name" in changes:
        values["display_name"] = plain_text(changes["display_name"], field="display_name",
                                            max_chars=DISPLAY_NAME_MAX_CHARS, required=False)
        if "\n" in str(values["display_name"]) or "\t" in str(values["display_name"]):
            raise ServiceError(_("A name is one line."), code="invalid_characters",
                               field="display_name")
    if "bio" in changes:
        values["bio"] = plain_text(changes["bio"], field="bio", max_chars=BIO_MAX_CHARS,
                                   required=False)
    if "links" in changes:
        links = changes["links"]
        if not isinstance(links, list):
            raise ServiceError(_("Expected a list of links."), code="invalid", field="links")
        if len(links) > MAX_LINKS:
            raise ServiceError(_("At most %(limit)d links.") % {"limit": MAX_LINKS},
                               code="too_many_links", field="links")
        cleaned = [_link(link, index) for index, link in enumerate(links)]
        values["links"] = list(dict.fromkeys(cleaned))
    if "collection_public" in changes:
        if not isinstance(changes["collection_public"], bool):
            raise ServiceError(_("Expected true or false."), code="invalid",
                               field="collection_public")
        values["collection_public"] = changes["collection_public"]
    check("profile", user.pk, _rate("COMMUNITY_PROFILE_RATE"))
    with transaction.atomic():
        profile, _created = MemberProfile.objects.select_for_update().get_or_create(user=user)
        for name, value in values.items():
            setattr(profile, name, value)
        profile.save()
    return profile


# --- notifications ------------------------------------------------------------------


def notifications_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    """Mark ``user``'s notifications read: those in ``ids``, or all. Others' ids are
    ignored, as ids that do not exist (marking is no oracle for who got what). Marking
    again is no error; returns how many changed now."""
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())


def notification_switches_set(*, user: User,
                              changes: dict[str, dict[str, bool]]) -> dict[str, dict[str, bool]]:
    """Turn channels of kinds on or off: ``{kind: {channel: on}}``, all checked first."""
    for kind, channels in changes.items():
        if kind not in notifications.KIND_NAMES:
            raise ServiceError(_("Unknown notification kind %(kind)s.") % {"kind": kind},
                               code="invalid", field=kind)
        for channel, enabled in channels.items():
            if channel not in Channel.values or not isinstance(enabled, bool):
                raise ServiceError(_("Each channel (portal, email, agent) is true or false."),
                                   code="invalid", field=f"{kind}.{channel}")
    with transaction.atomic():
        for kind, channels in changes.items():
            for channel, enabled in channels.items():
                NotificationSwitch.objects.update_or_create(
                    user=user, kind=kind, channel=channel, defaults={"enabled": enabled})
    return notifications.switches_for(user)


# --- a new work on sale -------------------------------------------------------------


@dataclass(frozen=True)
class Announcement:
    followers: int
    wishlist_matches: int


def work_announce(*, work_id: uuid.UUID | str) -> Announcement:
    """Tell the rights holder's followers, and the members whose saved searches match,
    that a work is on sale. Each (member, work) and (search, work) is told once, however
    often this runs (a re-delivered task), through the notifications' unique subject."""
    work = Work.objects.select_related("owner").filter(pk=work_id).first()
    if work is None or work.status != WorkStatus.READY:
        return Announcement(0, 0)
    owner = work.owner
    owner_name = member_display_name(owner)
    url = work_url(work)
    told = 0
    followers = User.objects.filter(following__rights_holder=owner, is_active=True)
    for follower in followers.iterator():
        params = {"name": owner_name, "title": work.title}
        sent = notifications.notify_once(
            recipient=follower, kind=notifications.KIND_NEW_WORK, subject=f"work:{work.pk}",
            title=_(notifications.TITLES[notifications.KIND_NEW_WORK]) % params,
            body=work.description[:300], url=url, params=params)
        told += sent is not None
    matched = 0
    for search in saved_search_matches(work):
        if search.owner_id == owner.pk:
            continue  # one's own new work is no news
        params = {"query": search.query, "title": work.title}
        sent = notifications.notify_once(
            recipient=search.owner, kind=notifications.KIND_WISHLIST_MATCH,
            subject=f"search:{search.pk}:work:{work.pk}",
            title=_(notifications.TITLES[notifications.KIND_WISHLIST_MATCH]) % params,
            body=work.description[:300], url=url, params=params)
        matched += sent is not None
    return Announcement(told, matched)


def member_display_name(user: User) -> str:
    profile = MemberProfile.objects.filter(user=user).only("display_name").first()
    return (profile.display_name if profile and profile.display_name else user.username)
