"""Input and output shapes of the messaging API. Text is checked by the services
(exchange/core/member_text.py), so the input fields here only insist on JSON strings."""

from __future__ import annotations

from rest_framework import serializers

from exchange.core.fields import StrictCharField
from exchange.messaging.models import Block, Conversation, Message, MessageReport


class MessageIn(serializers.Serializer):
    to = StrictCharField(max_length=150, help_text="The recipient's username.")
    subject = StrictCharField(required=False, allow_blank=True, trim_whitespace=False,
                              default="", help_text="Optional, at most 200 characters.")
    body = StrictCharField(allow_blank=True, trim_whitespace=False,
                           help_text="Text or a little HTML (b, i, em, strong, a, p, ul, ol, "
                                     "li, code, pre, blockquote, br); anything else is "
                                     "removed. At most PEERMARK_MESSAGING_MAX_BODY_CHARS "
                                     "characters (5000 by default).")


class MessageOut(serializers.ModelSerializer):
    sender = serializers.CharField(source="sender.username")
    recipient = serializers.CharField(source="recipient.username")
    body = serializers.CharField(help_text="Sanitised HTML, safe to show as HTML.")

    class Meta:
        model = Message
        fields = ["id", "conversation", "sender", "recipient", "mode", "subject", "body",
                  "created_at", "read_at"]
        read_only_fields = fields


class ConversationOut(serializers.ModelSerializer):
    member = serializers.CharField(source="other_username",
                                   help_text="The other member's username.")
    unread = serializers.IntegerField(help_text="Messages to you not yet read.")

    class Meta:
        model = Conversation
        fields = ["id", "member", "unread", "created_at", "last_message_at"]
        read_only_fields = fields


class UnreadOut(serializers.Serializer):
    unread = serializers.IntegerField()


class MessageReportIn(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, trim_whitespace=False,
                             default="", help_text="Optional, at most 1000 characters.")


class MessageReportOut(serializers.ModelSerializer):
    class Meta:
        model = MessageReport
        fields = ["id", "message", "reason", "created_at"]
        read_only_fields = fields


class BlockIn(serializers.Serializer):
    username = StrictCharField(max_length=150)


class BlockOut(serializers.ModelSerializer):
    username = serializers.CharField(source="blocked.username")

    class Meta:
        model = Block
        fields = ["username", "created_at"]
        read_only_fields = fields
