"""Sending, reading, blocking and reporting private messages.

Every refusal happens before anything is written, so a refused message leaves no row,
no conversation and no notification behind. The recipient is told on commit.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.community.notifications import KIND_MESSAGE, notify
from exchange.core.errors import ServiceError
from exchange.core.member_text import plain_text, rich_text
from exchange.core.rate_limits import Rate, RateLimitedError, check
from exchange.licensing.models import Device
from exchange.messaging.models import Block, Conversation, Message, MessageReport, RelayedMessage
from exchange.messaging.selectors import is_blocked, member_devices, member_get
from licensing.core import (
    DevicePublicKeys,
    DocumentKind,
    LicensingError,
    direct_message_signer,
    read_direct_message,
)

SUBJECT_MAX_CHARS = 200
REPORT_REASON_MAX_CHARS = 1000
DAY = dt.timedelta(days=1)


def _rate(setting: str) -> Rate:
    return Rate.parse(getattr(settings, setting))


def _conversation_for(sender: User, recipient: User, now: dt.datetime) -> Conversation:
    """The pair's conversation, started if new. Starting one counts against the sender's
    daily cap; the sender's row is locked first, so two concurrent first messages cannot
    both take the last slot, and the pair is looked up again under the lock, so a
    conversation another request has just started is joined, not counted again."""
    first, second = sorted((sender.pk, recipient.pk))
    pair = Conversation.objects.filter(first_id=first, second_id=second)
    conversation = pair.first()
    if conversation is not None:
        return conversation
    # FOR NO KEY UPDATE: it serialises this sender's new conversations, but does not
    # conflict with the key-share locks that foreign keys to the row take (a message to
    # this member being written at the same time), so two members writing to each other
    # first cannot deadlock.
    User.objects.select_for_update(no_key=True).filter(pk=sender.pk).values_list(
        "pk", flat=True).first()
    conversation = pair.first()
    if conversation is not None:
        return conversation
    _check_daily_conversations(sender, now)
    conversation, _created = Conversation.objects.get_or_create(
        first_id=first, second_id=second,
        defaults={"started_by": sender, "last_message_at": now})
    return conversation


def _check_daily_conversations(sender: User, now: dt.datetime) -> None:
    """At most ``MESSAGING_NEW_CONVERSATIONS_PER_DAY`` new conversations in any 24 hours,
    counted from the database (exact, and not lost when the cache is)."""
    cap = settings.MESSAGING_NEW_CONVERSATIONS_PER_DAY
    recent = list(Conversation.objects.filter(started_by=sender, created_at__gt=now - DAY)
                  .order_by("-created_at").values_list("created_at", flat=True)[:cap])
    if len(recent) >= cap:
        retry_after = max(1, math.ceil((recent[-1] + DAY - now).total_seconds()))
        raise RateLimitedError(
            _("You have started %(count)d conversations in the last day, the most allowed: "
              "try again in %(seconds)d s, or write in a conversation you already have.")
            % {"count": cap, "seconds": retry_after},
            retry_after=retry_after,
        )


def message_send(*, sender: User, to: object, body: object, subject: object = "") -> Message:
    """Send ``body`` (sanitised HTML) from ``sender`` to the member named ``to``.

    Refused: bad text (400), an unknown member (404), oneself (400), a member who blocked
    the sender (403, saying no more), one the sender blocked (409), too many messages
    (429, per-minute rate) or too many new conversations today (429).
    """
    clean_body = rich_text(body, field="body", max_chars=settings.MESSAGING_MAX_BODY_CHARS)
    clean_subject = plain_text(subject if subject is not None else "", field="subject",
                               max_chars=SUBJECT_MAX_CHARS, required=False)
    recipient = member_get(to, field="to")
    if recipient.pk == sender.pk:
        raise ServiceError(_("You cannot send a message to yourself."), code="self_message",
                           field="to")
    check("message.send", sender.pk, _rate("MESSAGING_SEND_RATE"))
    if is_blocked(blocker=recipient, blocked=sender):
        raise ServiceError(_("This member does not accept messages from you."),
                           code="blocked", status_code=403)
    if is_blocked(blocker=sender, blocked=recipient):
        raise ServiceError(_("You have blocked this member: unblock them to write to them."),
                           code="you_blocked", status_code=409)
    with transaction.atomic():
        conversation = _conversation_for(sender, recipient, timezone.now())
        message = Message.objects.create(conversation=conversation, sender=sender,
                                         recipient=recipient, subject=clean_subject,
                                         body=clean_body, mode=Message.Mode.PLATFORM)
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=message.created_at)
        transaction.on_commit(lambda: _tell_recipient(message))
    return message


def _tell_recipient(message: Message) -> None:
    sender = message.sender
    notify(recipient=message.recipient, kind=KIND_MESSAGE,
           title=_("New message from %(name)s") % {"name": sender.username},
           body=message.subject,
           url=f"/messages/{message.conversation_id}/")


def conversation_mark_read(*, user: User, conversation: Conversation) -> int:
    """Mark every message to ``user`` in ``conversation`` read; how many were unread."""
    return Message.objects.filter(conversation=conversation, recipient=user,
                                  read_at__isnull=True).update(read_at=timezone.now())


def message_mark_read(*, user: User, message: Message) -> Message:
    """Only the recipient marks a message read (the sender sees it but may not)."""
    if message.recipient_id != user.pk:
        raise ServiceError(_("Only the recipient can mark a message read."),
                           code="permission_denied", status_code=403)
    if message.read_at is None:
        Message.objects.filter(pk=message.pk, read_at__isnull=True).update(
            read_at=timezone.now())
        message.refresh_from_db(fields=["read_at"])
    return message


def message_report(*, reporter: User, message: Message,
                   reason: object = "") -> tuple[MessageReport, bool]:
    """Report a message one received to the admins: (report, created). Reporting it again
    returns the first report."""
    if message.recipient_id != reporter.pk:
        raise ServiceError(_("Only the recipient can report a message."),
                           code="permission_denied", status_code=403)
    clean_reason = plain_text(reason if reason is not None else "", field="reason",
                              max_chars=REPORT_REASON_MAX_CHARS, required=False)
    existing = MessageReport.objects.filter(message=message, reporter=reporter).first()
    if existing is not None:
        return existing, False
    check("message.report", reporter.pk, _rate("MESSAGING_REPORT_RATE"))
    with transaction.atomic():
        report, created = MessageReport.objects.get_or_create(
            message=message, reporter=reporter, defaults={"reason": clean_reason})
        if created:
            audit_record(actor=reporter, action="message.report", target=report,
                         data={"message": str(message.pk), "sender": message.sender_id})
    return report, created


def member_block(*, blocker: User, username: object) -> tuple[Block, bool]:
    """Block the member named ``username``: (block, created). Blocking again is a no-op."""
    blocked = member_get(username, field="username")
    if blocked.pk == blocker.pk:
        raise ServiceError(_("You cannot block yourself."), code="self_block",
                           field="username")
    existing = Block.objects.filter(blocker=blocker, blocked=blocked).first()
    if existing is not None:
        return existing, False
    check("message.block", blocker.pk, _rate("MESSAGING_BLOCK_RATE"))
    with transaction.atomic():
        block, created = Block.objects.get_or_create(blocker=blocker, blocked=blocked)
        if created:
            audit_record(actor=blocker, action="member.block", target=block,
                         data={"blocked": blocked.pk})
    return block, created


def member_unblock(*, blocker: User, username: object) -> None:
    """Unblock; a member one has not blocked (or who does not exist) is a 404."""
    try:
        blocked = member_get(username, field="username")
    except ServiceError:
        raise ServiceError(_("You have not blocked this member."), code="not_found",
                           status_code=404) from None
    block = Block.objects.filter(blocker=blocker, blocked=blocked).first()
    if block is None:
        raise ServiceError(_("You have not blocked this member."), code="not_found",
                           status_code=404)
    with transaction.atomic():
        audit_record(actor=blocker, action="member.unblock", target=block,
                     data={"blocked": blocked.pk})
        block.delete()


# --- end-to-end encrypted messages between agents ------------------------------------------


def _refuse_if_blocked(*, sender: User, recipient: User) -> None:
    """The same refusal, and the same words, as ``message_send``'s."""
    if is_blocked(blocker=recipient, blocked=sender):
        raise ServiceError(_("This member does not accept messages from you."),
                           code="blocked", status_code=403)


def member_devices_for(*, caller: User, username: object) -> tuple[User, list[Device]]:
    """Where ``caller`` may seal a message to: the member named ``username`` and their
    devices that are not revoked (each with its live endpoint, if any). A member who
    blocked the caller answers as ``message_send`` does (403), so the list never helps
    a blocked sender around the block."""
    member = member_get(username, field="username")
    if member.pk == caller.pk:
        raise ServiceError(_("You cannot send a message to yourself."), code="self_message",
                           field="username")
    _refuse_if_blocked(sender=caller, recipient=member)
    return member, list(member_devices(member))


def _bad_envelope(message: str) -> ServiceError:
    return ServiceError(message, code="invalid_document", field="document")


def relayed_accept(*, sender: User, document: object) -> tuple[RelayedMessage, bool]:
    """Hold a sealed envelope for its recipient's device: (row, created).

    The envelope must be signed by one of the sender's own devices (not revoked), name the
    sender, and be sealed to a device (not revoked) of the member it names; a member who
    blocked the sender refuses it (403), one the sender blocked too (409). The same
    envelope again answers with the first row; another envelope under the same message id
    for the same device is a conflict (409). The first copy of a message counts against
    the sender's message rate; its other devices' copies do not. The recipient is told
    that a message is waiting, never what it says.
    """
    if not isinstance(document, str) or not document.isascii():
        raise _bad_envelope(_("The document is not a signed message."))
    if len(document) > DocumentKind.DIRECT_MESSAGE.max_token_bytes:
        raise ServiceError(_("The message is too large: at most %(count)d bytes.")
                           % {"count": DocumentKind.DIRECT_MESSAGE.max_token_bytes},
                           code="too_long", field="document")
    try:
        device_id = direct_message_signer(document)
    except LicensingError:
        raise _bad_envelope(_("The document is not a signed message.")) from None
    signer = Device.objects.filter(pk=device_id, user=sender, revoked_at__isnull=True).first()
    if signer is None:
        raise _bad_envelope(_("The message is not signed by one of your devices."))
    try:
        keys = DevicePublicKeys.from_b64url(signing=signer.signing_public,
                                            kem=signer.kem_public)
        envelope = read_direct_message(document, sender_device=keys,
                                       now=int(timezone.now().timestamp()))
    except LicensingError:
        raise _bad_envelope(_("The message's signature or contents do not verify.")) from None
    if envelope.sender != sender.username:
        raise _bad_envelope(_("The message names another sender than you."))
    recipient = member_get(envelope.recipient, field="document")
    if recipient.pk == sender.pk:
        raise ServiceError(_("You cannot send a message to yourself."), code="self_message",
                           field="document")
    target = Device.objects.filter(pk=envelope.recipient_device, user=recipient,
                                   revoked_at__isnull=True).first()
    if target is None:
        raise _bad_envelope(_("The message is sealed to a device that member does not use."))
    existing = RelayedMessage.objects.filter(recipient_device=target,
                                             message_id=envelope.message_id).first()
    if existing is not None:
        return _same_or_conflict(existing, document, sender)
    first_copy = not RelayedMessage.objects.filter(sender=sender,
                                                   message_id=envelope.message_id).exists()
    if first_copy:
        check("message.send", sender.pk, _rate("MESSAGING_SEND_RATE"))
    _refuse_if_blocked(sender=sender, recipient=recipient)
    if is_blocked(blocker=sender, blocked=recipient):
        raise ServiceError(_("You have blocked this member: unblock them to write to them."),
                           code="you_blocked", status_code=409)
    try:
        with transaction.atomic():
            relayed = RelayedMessage.objects.create(
                message_id=envelope.message_id, sender=sender, sender_device=signer,
                recipient=recipient, recipient_device=target, document=document,
                size=len(document))
            if first_copy:
                transaction.on_commit(lambda: _tell_sealed(relayed))
    except IntegrityError:
        # the same copy was stored by a concurrent request a moment ago
        existing = RelayedMessage.objects.filter(recipient_device=target,
                                                 message_id=envelope.message_id).first()
        if existing is None:
            raise
        return _same_or_conflict(existing, document, sender)
    return relayed, True


def _same_or_conflict(existing: RelayedMessage, document: str,
                      sender: User) -> tuple[RelayedMessage, bool]:
    if existing.document == document and existing.sender_id == sender.pk:
        return existing, False
    raise ServiceError(_("Another message with this id is already held for that device."),
                       code="replayed", status_code=409, field="document")


def _tell_sealed(relayed: RelayedMessage) -> None:
    notify(recipient=relayed.recipient, kind=KIND_MESSAGE,
           title=_("New encrypted message from %(name)s") % {"name": relayed.sender.username},
           body=_("Your agent fetches and opens it: run `peermark-agent messages`."), url="")


def relayed_acknowledge(*, user: User, relayed: RelayedMessage) -> None:
    """The recipient's agent has the message: the platform forgets it."""
    if relayed.recipient_id != user.pk:
        raise ServiceError(_("No such message."), code="not_found", status_code=404)
    RelayedMessage.objects.filter(pk=relayed.pk).delete()
