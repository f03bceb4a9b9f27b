"""Private messages over the API: send (once per Idempotency-Key), conversations with
unread counts, a thread (reading it marks it read), reports and blocks."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from exchange.accounts.models import authenticated_user
from exchange.core.idempotency import idempotent
from exchange.core.openapi import errors
from exchange.core.pagination import PAGE_PARAMETERS, page_of, paginated_response
from exchange.messaging import services
from exchange.messaging.selectors import (
    blocks_of,
    conversation_get_for_member,
    conversations_for,
    message_get_for_member,
    messages_for,
    relayed_for,
    relayed_get_for_recipient,
    thread_messages,
    unread_count,
)
from exchange.messaging.serializers import (
    BlockIn,
    BlockOut,
    ConversationOut,
    MemberDeviceOut,
    MemberDevicesOut,
    MessageIn,
    MessageOut,
    MessageReportIn,
    MessageReportOut,
    RelayedIn,
    RelayedOut,
    UnreadOut,
)

#: a thread: one page of its messages, and the conversation (named apart from the page of
#: ``GET messages/``, which has the same items)
THREAD_PAGE = inline_serializer(name="ConversationThread", fields={
    "count": serializers.IntegerField(),
    "next": serializers.URLField(allow_null=True),
    "previous": serializers.URLField(allow_null=True),
    "results": MessageOut(many=True),
    "conversation": ConversationOut(),
})


class MessageListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(MessageOut), operation_id="messages_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        """Every message to or from you, newest first (listing does not mark them read)."""
        return paginated_response(request, self, messages_for(authenticated_user(request)),
                                  MessageOut)

    @extend_schema(request=MessageIn,
                   responses={201: MessageOut, **errors(403, 404, 409, 429)})
    @idempotent(required=True)
    def post(self, request: Request) -> Response:
        """Send a message to a member (the conversation between you is made if new)."""
        data = MessageIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        message = services.message_send(sender=authenticated_user(request), to=fields["to"],
                                        body=fields["body"], subject=fields["subject"])
        return Response(MessageOut(message).data, status=status.HTTP_201_CREATED)


class ConversationListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=page_of(ConversationOut), operation_id="messages_conversations_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        """Your conversations, latest first, each with its unread count."""
        return paginated_response(request, self,
                                  conversations_for(authenticated_user(request)),
                                  ConversationOut)


class ConversationDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=THREAD_PAGE, operation_id="messages_conversation_read",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request, conversation_id: str) -> Response:
        """A thread's messages, newest first. Reading it marks the messages to you read
        (``conversation.unread`` is the count before this read)."""
        user = authenticated_user(request)
        conversation = conversation_get_for_member(user=user, conversation_id=conversation_id)
        response = paginated_response(request, self, thread_messages(conversation), MessageOut)
        services.conversation_mark_read(user=user, conversation=conversation)
        response.data["conversation"] = ConversationOut(conversation).data
        return response


class MessageReadView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: MessageOut, **errors(403)})
    @idempotent(required=False)
    def post(self, request: Request, message_id: str) -> Response:
        """Mark one message to you read."""
        user = authenticated_user(request)
        message = message_get_for_member(user=user, message_id=message_id)
        return Response(MessageOut(services.message_mark_read(user=user, message=message)).data)


class MessageReportView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=MessageReportIn,
                   responses={201: MessageReportOut, 200: MessageReportOut, **errors(403, 429)})
    @idempotent(required=False)
    def post(self, request: Request, message_id: str) -> Response:
        """Report a message you received to the platform's admins (once; again answers
        200 with the first report)."""
        user = authenticated_user(request)
        message = message_get_for_member(user=user, message_id=message_id)
        data = MessageReportIn(data=request.data)
        data.is_valid(raise_exception=True)
        report, created = services.message_report(reporter=user, message=message,
                                                   reason=data.validated_data["reason"])
        return Response(MessageReportOut(report).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class UnreadView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=UnreadOut, operation_id="messages_unread")
    def get(self, request: Request) -> Response:
        """How many messages to you are unread (the nav's badge)."""
        return Response({"unread": unread_count(authenticated_user(request))})


class BlockListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(BlockOut), operation_id="blocks_list",
                   parameters=PAGE_PARAMETERS)
    def get(self, request: Request) -> Response:
        """The members you have blocked."""
        return paginated_response(request, self, blocks_of(authenticated_user(request)),
                                  BlockOut)

    @extend_schema(request=BlockIn,
                   responses={201: BlockOut, 200: BlockOut, **errors(404, 429)})
    @idempotent(required=False)
    def post(self, request: Request) -> Response:
        """Block a member: their messages to you are refused (they are told only that you
        do not accept their messages). Blocking again answers 200."""
        data = BlockIn(data=request.data)
        data.is_valid(raise_exception=True)
        block, created = services.member_block(blocker=authenticated_user(request),
                                               username=data.validated_data["username"])
        return Response(BlockOut(block).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class BlockDeleteView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request: Request, username: str) -> Response:
        """Unblock a member."""
        services.member_unblock(blocker=authenticated_user(request), username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberDevicesView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: MemberDevicesOut, **errors(400, 403, 404)},
                   operation_id="members_devices_list")
    def get(self, request: Request, username: str) -> Response:
        """A member's devices to seal an end-to-end encrypted message to: each device's
        keys and, when its agent is live now, its peer server's endpoint. Refused (403)
        when the member does not accept messages from you."""
        member, devices = services.member_devices_for(caller=authenticated_user(request),
                                                      username=username)
        return Response({"username": member.username,
                         "devices": MemberDeviceOut(devices, many=True).data})


#: ``GET messages/relayed/?device=``: only the copies sealed to that device of yours
DEVICE_PARAMETER = OpenApiParameter(
    "device", str, required=False,
    description="Only the messages sealed to this device of yours (its device id).")


class RelayedListCreateView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses=page_of(RelayedOut), operation_id="messages_relayed_list",
                   parameters=[*PAGE_PARAMETERS, DEVICE_PARAMETER])
    def get(self, request: Request) -> Response:
        """Sealed messages the platform holds for you until your agent fetches them,
        oldest first. Only the device they are sealed to can open them."""
        device = request.query_params.get("device")
        return paginated_response(
            request, self, relayed_for(authenticated_user(request), device_id=device or None),
            RelayedOut)

    @extend_schema(request=RelayedIn,
                   responses={201: RelayedOut, 200: RelayedOut, **errors(403, 404, 409, 429)})
    @idempotent(required=True)
    def post(self, request: Request) -> Response:
        """Have the platform hold a sealed message for a recipient device that is offline
        (mode ``relayed``): it checks the envelope's signature, the members, devices and
        blocks, and stores the ciphertext, which it cannot read. The same envelope again
        answers 200 with the first copy."""
        data = RelayedIn(data=request.data)
        data.is_valid(raise_exception=True)
        relayed, created = services.relayed_accept(sender=authenticated_user(request),
                                                   document=data.validated_data["document"])
        return Response(RelayedOut(relayed).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class RelayedDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None, **errors(404)}, operation_id="messages_relayed_ack")
    def delete(self, request: Request, relayed_id: str) -> Response:
        """Acknowledge a sealed message your agent has stored: the platform deletes it
        (again, or someone else's, answers 404)."""
        user = authenticated_user(request)
        relayed = relayed_get_for_recipient(user=user, relayed_id=relayed_id)
        services.relayed_acknowledge(user=user, relayed=relayed)
        return Response(status=status.HTTP_204_NO_CONTENT)
