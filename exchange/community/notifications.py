"""Telling a member something: one function, ``notify``, for every part of the platform.

A notification reaches up to three channels: the portal (the list and the nav's badge),
email (Django's email backend: the console in the embedded demo, SMTP in production), and
the agent (its ``status`` command). The member switches each channel per kind; the
defaults are below. Callers call ``notify`` after their own write commits, but it is
also safe inside a transaction: the email goes out on commit, so a rolled-back write
sends nothing, and an email that fails is logged, never raised, because a mail server
outage must not undo a purchase or a message.
"""

from __future__ import annotations

import logging
from typing import Final

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from exchange.accounts.models import User
from exchange.community.models import (
    Channel,
    MemberProfile,
    Notification,
    NotificationSwitch,
)

log = logging.getLogger(__name__)

KIND_NEW_WORK: Final = "new_work"
KIND_WISHLIST_MATCH: Final = "wishlist_match"
KIND_MESSAGE: Final = "message"
KIND_REVIEW: Final = "review"
KIND_REVIEW_REPLY: Final = "review_reply"
KIND_ROOM_MENTION: Final = "room_mention"
KIND_DEVICE: Final = "device"

#: every kind, with the label the settings page shows, in the page's order
KINDS: Final = (
    (KIND_NEW_WORK, gettext_lazy("New works from rights holders I follow")),
    (KIND_WISHLIST_MATCH, gettext_lazy("New works matching my saved searches")),
    (KIND_MESSAGE, gettext_lazy("Private messages")),
    (KIND_REVIEW, gettext_lazy("Reviews of my works")),
    (KIND_REVIEW_REPLY, gettext_lazy("Replies to my reviews")),
    (KIND_ROOM_MENTION, gettext_lazy("Mentions in chat rooms")),
    (KIND_DEVICE, gettext_lazy("My devices and licences")),
)
KIND_NAMES: Final = frozenset(kind for kind, _label in KINDS)
CHANNELS: Final = tuple(Channel)

#: the sentences of titles that are shown in each reader's language (``title_of``)
TITLES: Final = {
    KIND_NEW_WORK: gettext_noop("New from %(name)s: %(title)s"),
    KIND_WISHLIST_MATCH: gettext_noop("A new work matches your saved search “%(query)s”: "
                                      "%(title)s"),
}

#: email is on by default only for what a member would not want to miss
EMAIL_BY_DEFAULT: Final = frozenset({KIND_NEW_WORK, KIND_WISHLIST_MATCH, KIND_MESSAGE,
                                     KIND_REVIEW_REPLY})


def default_enabled(kind: str, channel: str) -> bool:
    """Portal and agent are on for every kind; email for a few."""
    if channel == Channel.EMAIL:
        return kind in EMAIL_BY_DEFAULT
    return True


def switches_for(user: User) -> dict[str, dict[str, bool]]:
    """``{kind: {channel: on}}`` for every kind and channel: the member's choices over the
    defaults."""
    table = {kind: {str(channel): default_enabled(kind, channel) for channel in CHANNELS}
             for kind in KIND_NAMES}
    for kind, channel, enabled in NotificationSwitch.objects.filter(user=user).values_list(
            "kind", "channel", "enabled"):
        if kind in table and channel in table[kind]:
            table[kind][channel] = enabled
    return table


def notify(*, recipient: User, kind: str, title: str, body: str = "",
           url: str = "") -> Notification | None:
    """Tell ``recipient`` about something, on the channels they keep on for ``kind``.

    Returns the stored notification, or None when every channel of this kind is off.
    ``title``, ``body`` and ``url`` are shown as text (escaped), never as HTML; ``url``
    is a path on this site (``/works/…``), made absolute in the email.
    """
    return notify_once(recipient=recipient, kind=kind, title=title, body=body, url=url,
                       subject="")


def notify_once(*, recipient: User, kind: str, subject: str, title: str, body: str = "",
                url: str = "", params: dict[str, str] | None = None) -> Notification | None:
    """`notify`, at most once per (recipient, kind, ``subject``): a retried task that
    announces the same thing again finds the first row and does nothing (None). An
    empty subject never deduplicates. ``params`` fill the kind's sentence in ``TITLES``
    for each reader's language."""
    if kind not in KIND_NAMES:
        raise ValueError(f"unknown notification kind {kind!r}")
    if not recipient.is_active:
        return None
    channels = switches_for(recipient)[kind]
    if not any(channels.values()):
        return None
    email_on = channels[Channel.EMAIL] and bool(recipient.email)
    try:
        # A savepoint: a duplicate subject must not break the caller's transaction.
        with transaction.atomic():
            notification = Notification.objects.create(
                recipient=recipient, kind=kind, subject=subject[:120], title=title[:200],
                body=body[:2000], url=url[:500], params=params or {},
                in_portal=channels[Channel.PORTAL], in_agent=channels[Channel.AGENT],
                emailed=email_on,
            )
    except IntegrityError:
        if subject and Notification.objects.filter(recipient=recipient, kind=kind,
                                                   subject=subject[:120]).exists():
            return None
        raise
    if email_on:
        transaction.on_commit(lambda: _send_email(notification.pk))
    return notification


def title_of(notification: Notification) -> str:
    """The title in the active language, where it was written from a known sentence;
    otherwise as stored."""
    sentence = TITLES.get(notification.kind)
    if sentence is None or not notification.params:
        return notification.title
    try:
        return str(_(sentence) % notification.params)
    except (KeyError, TypeError, ValueError):  # params from an older sentence
        return notification.title


def _send_email(notification_id: int) -> None:
    """Send one notification's email; a failure is logged (the row stays, marked as not
    emailed), never raised into the request or task that caused it."""
    notification = Notification.objects.select_related("recipient").filter(
        pk=notification_id).first()
    if notification is None:
        return
    recipient = notification.recipient
    link = f"{settings.PUBLIC_URL.rstrip('/')}{notification.url}" if notification.url else ""
    language = MemberProfile.objects.filter(user=recipient).values_list(
        "email_language", flat=True).first()
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    try:
        with translation.override(language):
            parts = [notification.body, link,
                     _("You can switch these emails off on your notification settings page.")]
            send_mail(
                subject=f"[Peermark] {title_of(notification)}",
                message="\n\n".join(part for part in parts if part),
                from_email=None,  # DEFAULT_FROM_EMAIL
                recipient_list=[recipient.email],
                fail_silently=False,
            )
    except Exception:  # a mail server down, refused, misconfigured: never the caller's fault
        log.exception("notification %s: email to user %s failed", notification.pk,
                      recipient.pk)
        Notification.objects.filter(pk=notification.pk).update(emailed=False)
