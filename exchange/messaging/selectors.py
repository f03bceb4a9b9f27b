"""What a member may see of messages: only conversations they are part of. Every view
reaches messages through these, so another member's thread answers as a missing one."""

from __future__ import annotations

import uuid

from django.db.models import Case, CharField, Count, F, Q, QuerySet, When
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.core.errors import ServiceError
from exchange.licensing.models import Device
from exchange.messaging.models import Block, Conversation, Message, RelayedMessage
from exchange.peers.selectors import live_endpoints


def _not_found(thing: str) -> ServiceError:
    return ServiceError(thing, code="not_found", status_code=404)


def member_get(username: object, *, field: str | None = None) -> User:
    """An active member by username, or a 404 that says nothing more (inactive accounts
    answer as unknown ones)."""
    if not isinstance(username, str) or not username or len(username) > 150:
        raise ServiceError(_("No such member."), code="not_found", status_code=404, field=field)
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ServiceError(_("No such member."), code="not_found", status_code=404, field=field)
    return user


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def conversations_for(user: User) -> QuerySet[Conversation]:
    """The member's conversations, latest first, each with ``other_username`` and
    ``unread`` (messages to this member not yet read)."""
    return (
        Conversation.objects.filter(Q(first=user) | Q(second=user))
        .annotate(
            other_username=Case(When(first=user, then=F("second__username")),
                                default=F("first__username"), output_field=CharField()),
            unread=Count("messages", filter=Q(messages__recipient=user,
                                              messages__read_at__isnull=True)),
        )
        .order_by("-last_message_at", "-id")
    )


def conversation_get_for_member(*, user: User, conversation_id: object) -> Conversation:
    """The conversation if ``user`` is in it; otherwise a 404 like a missing one."""
    key = _uuid(conversation_id)
    found = conversations_for(user).filter(pk=key).first() if key else None
    if found is None:
        raise _not_found(_("No such conversation."))
    return found


def conversation_between(a: User, b: User) -> Conversation | None:
    first, second = sorted((a.pk, b.pk))
    return Conversation.objects.filter(first_id=first, second_id=second).first()


def messages_for(user: User) -> QuerySet[Message]:
    """Every message to or from ``user``, newest first."""
    return (Message.objects.filter(Q(sender=user) | Q(recipient=user))
            .select_related("sender", "recipient").order_by("-created_at", "-id"))


def thread_messages(conversation: Conversation) -> QuerySet[Message]:
    return (Message.objects.filter(conversation=conversation)
            .select_related("sender", "recipient").order_by("-created_at", "-id"))


def message_get_for_member(*, user: User, message_id: object) -> Message:
    """A message ``user`` sent or received; otherwise a 404 like a missing one."""
    key = _uuid(message_id)
    found = messages_for(user).filter(pk=key).first() if key else None
    if found is None:
        raise _not_found(_("No such message."))
    return found


def unread_count(user: User) -> int:
    """Messages to ``user`` not yet read: the nav's badge and ``GET messages/unread/``."""
    return Message.objects.filter(recipient=user, read_at__isnull=True).count()


def blocks_of(user: User) -> QuerySet[Block]:
    return Block.objects.filter(blocker=user).select_related("blocked").order_by("-created_at")


def is_blocked(*, blocker: User, blocked: User) -> bool:
    return Block.objects.filter(blocker=blocker, blocked=blocked).exists()


def member_devices(member: User) -> list[Device]:
    """A member's devices that are not revoked, each with ``live_host`` and ``live_port``
    (its peer server's address) when its agent has been heard from within the peer
    timeout, else None."""
    devices = list(Device.objects.filter(user=member, revoked_at__isnull=True)
                   .order_by("created_at", "device_id"))
    endpoints = live_endpoints([d.device_id for d in devices])
    for device in devices:
        host, port = endpoints.get(device.device_id, (None, None))
        setattr(device, "live_host", host)  # noqa: B010 (read by the serializer)
        setattr(device, "live_port", port)  # noqa: B010
    return devices


def relayed_for(user: User, *, device_id: str | None = None) -> QuerySet[RelayedMessage]:
    """Sealed messages held for ``user`` (optionally for one of their devices), oldest
    first: nobody else's, whatever they ask for."""
    found = RelayedMessage.objects.filter(recipient=user).select_related("sender")
    if device_id is not None:
        found = found.filter(recipient_device_id=device_id)
    return found.order_by("created_at", "id")


def relayed_get_for_recipient(*, user: User, relayed_id: object) -> RelayedMessage:
    """A sealed message held for ``user``; another member's answers as a missing one."""
    key = _uuid(relayed_id)
    found = relayed_for(user).filter(pk=key).first() if key else None
    if found is None:
        raise _not_found(_("No such message."))
    return found
