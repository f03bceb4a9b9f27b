"""Small input and output serializers of the community API."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from exchange.catalogue.models import MediaType
from exchange.community import notifications
from exchange.community.models import Channel, Follow, MemberProfile, Notification, SavedSearch
from exchange.core.fields import StrictBooleanField, StrictCharField, StrictIntegerField
from exchange.money.fields import CurrencyField


class FollowIn(serializers.Serializer[Any]):
    username = StrictCharField(max_length=150)


class FollowOut(serializers.ModelSerializer[Follow]):
    username = serializers.CharField(source="rights_holder.username")

    class Meta:
        model = Follow
        fields = ["username", "created_at"]
        read_only_fields = fields


class NotificationOut(serializers.ModelSerializer[Notification]):
    title = serializers.SerializerMethodField(help_text="In the request's language where "
                                              "the kind allows it.")

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "url", "created_at", "read_at"]
        read_only_fields = fields

    def get_title(self, notification: Notification) -> str:
        return notifications.title_of(notification)


class UnreadCountOut(serializers.Serializer[Any]):
    unread = serializers.IntegerField()


class MarkReadIn(serializers.Serializer[Any]):
    """Either ``ids`` (some of one's notifications) or ``all: true``."""

    ids = serializers.ListField(child=StrictIntegerField(min_value=1), required=False,
                                max_length=500)
    all = StrictBooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("ids" in attrs) == bool(attrs.get("all")):
            raise serializers.ValidationError(_("Give either ids or all: true."))
        return attrs


class MarkReadOut(serializers.Serializer[Any]):
    marked = serializers.IntegerField(help_text="How many were unread and are read now.")
    unread = serializers.IntegerField(help_text="How many are still unread.")


_CHANNELS_SCHEMA = {
    "type": "object",
    "properties": {str(channel): {"type": "boolean"} for channel in Channel},
    "additionalProperties": False,
}
SWITCHES_SCHEMA = {
    "type": "object",
    "properties": dict.fromkeys(sorted(notifications.KIND_NAMES), _CHANNELS_SCHEMA),
    "additionalProperties": False,
}


@extend_schema_field(SWITCHES_SCHEMA)
class SwitchesField(serializers.DictField):
    """``{kind: {channel: on}}``; unknown kinds, channels or non-booleans are refused."""

    def to_internal_value(self, data: object) -> dict[str, dict[str, bool]]:
        if not isinstance(data, dict):
            raise serializers.ValidationError(_("Expected an object {kind: {channel: true}}."))
        out: dict[str, dict[str, bool]] = {}
        for kind, channels in data.items():
            if kind not in notifications.KIND_NAMES:
                raise serializers.ValidationError({kind: [_("Unknown notification kind.")]})
            if not isinstance(channels, dict):
                raise serializers.ValidationError({kind: [_("Expected {channel: true|false}.")]})
            for channel, enabled in channels.items():
                if channel not in Channel.values or not isinstance(enabled, bool):
                    raise serializers.ValidationError({kind: [
                        _("%(channel)s: the channels are portal, email and agent, each true "
                          "or false.") % {"channel": channel}]})
            out[kind] = dict(channels)
        return out


class SwitchesIn(serializers.Serializer[Any]):
    switches = SwitchesField()


class SwitchesOut(serializers.Serializer[Any]):
    switches = SwitchesField()


class SavedSearchIn(serializers.Serializer[Any]):
    query = StrictCharField(max_length=200, trim_whitespace=False)
    media_type = serializers.ChoiceField(choices=MediaType.choices, required=False)
    currency = CurrencyField(required=False)
    max_price_minor = StrictIntegerField(min_value=1, required=False)


class SavedSearchOut(serializers.ModelSerializer[SavedSearch]):
    class Meta:
        model = SavedSearch
        fields = ["id", "query", "media_type", "currency", "max_price_minor", "created_at"]
        read_only_fields = fields


class ProfileIn(serializers.Serializer[Any]):
    """What a member may change; the service checks the text and the links."""

    display_name = StrictCharField(max_length=80, allow_blank=True, required=False,
                                   trim_whitespace=False)
    bio = StrictCharField(max_length=1000, allow_blank=True, required=False,
                          trim_whitespace=False)
    links = serializers.ListField(child=StrictCharField(max_length=300, trim_whitespace=False),
                                  required=False, max_length=5)
    collection_public = StrictBooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # a typo ("links_" for "links") must not look like a successful save
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: [_("Unknown field.")] for name in unknown})
        return attrs


class ProfileOut(serializers.ModelSerializer[MemberProfile]):
    class Meta:
        model = MemberProfile
        fields = ["display_name", "bio", "links", "collection_public"]
        read_only_fields = fields


class MemberOut(serializers.Serializer[Any]):
    """A member's public page: a storefront if they sell."""

    username = serializers.CharField()
    display_name = serializers.CharField()
    bio = serializers.CharField()
    links = serializers.ListField(child=serializers.CharField())
    is_rights_holder = serializers.BooleanField()
    follower_count = serializers.IntegerField()
    works_on_sale = serializers.IntegerField()
    collection_public = serializers.BooleanField()
    following = serializers.BooleanField(
        allow_null=True, help_text="Whether you follow this member (null when anonymous).")
