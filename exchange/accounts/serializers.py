from rest_framework import serializers

from exchange.accounts.models import ApiToken, User
from exchange.core.fields import StrictCharField


class MeOut(serializers.ModelSerializer):
    is_rights_holder = serializers.BooleanField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "is_rights_holder", "date_joined"]
        read_only_fields = fields


class TokenCreateIn(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=256, trim_whitespace=False)
    name = StrictCharField(max_length=100, required=False, default="agent")


class TokenOut(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class TokenCreatedOut(TokenOut):
    token = serializers.CharField(help_text="The bearer token. Shown once; store it safely.")

    class Meta(TokenOut.Meta):
        fields = [*TokenOut.Meta.fields, "token"]
        read_only_fields = fields
