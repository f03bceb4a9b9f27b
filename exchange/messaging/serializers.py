"""Input and output shapes of the messaging API. Text is checked by the services
(exchange/core/member_text.py), so the input fields here only insist on JSON strings."""

from __future__ import annotations

from rest_framework import serializers

from exchange.core.fields import StrictCharField
from exchange.licensing.models import Device
from exchange.messaging.models import Block, Conversation, Message, MessageReport, RelayedMessage


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


class MemberDeviceOut(serializers.ModelSerializer):
    signing_key = serializers.CharField(source="signing_public",
                                        help_text="Ed25519 public key, base64url: checks "
                                                  "the device's signatures.")
    kem_key = serializers.CharField(source="kem_public",
                                    help_text="X25519 public key, base64url: seal a message "
                                              "to it with HPKE.")
    endpoint = serializers.SerializerMethodField(
        help_text="The device's peer server, when its agent is live now; else null.")

    class Meta:
        model = Device
        fields = ["device_id", "signing_key", "kem_key", "endpoint"]
        read_only_fields = fields

    def get_endpoint(self, device: Device) -> str | None:
        host, port = getattr(device, "live_host", None), getattr(device, "live_port", None)
        if not host or not port:
            return None
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class MemberDevicesOut(serializers.Serializer):
    username = serializers.CharField()
    devices = MemberDeviceOut(many=True)


class RelayedIn(serializers.Serializer):
    document = StrictCharField(trim_whitespace=False,
                               help_text="The envelope (typ pm-direct-message+jwt) signed by "
                                         "one of your devices, its text sealed to one device "
                                         "of the recipient (docs/PROTOCOL.md).")


class RelayedOut(serializers.ModelSerializer):
    mode = serializers.SerializerMethodField()
    sender = serializers.CharField(source="sender.username")
    recipient = serializers.CharField(source="recipient.username")
    sender_device = serializers.CharField(source="sender_device_id")
    recipient_device = serializers.CharField(source="recipient_device_id")

    class Meta:
        model = RelayedMessage
        fields = ["id", "mode", "message_id", "sender", "sender_device", "recipient",
                  "recipient_device", "size", "created_at", "document"]
        read_only_fields = fields

    def get_mode(self, _relayed: RelayedMessage) -> str:
        return RelayedMessage.MODE
