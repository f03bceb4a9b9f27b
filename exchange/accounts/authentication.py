"""``Authorization: Bearer pmk_…`` authentication for the API."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from exchange.accounts.models import ApiToken, User
from exchange.accounts.tokens import TOKEN_PREFIX, token_digest

_TOKEN_FIELDS = ("user", "last_used_at", "revoked_at",
                 *(f"user__{f.name}" for f in User._meta.concrete_fields))

# Writing last_used_at on every request would make each API call a write.
_LAST_USED_GRANULARITY = timedelta(minutes=5)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2 or not parts[1].startswith(TOKEN_PREFIX) or len(parts[1]) > 200:
            raise exceptions.AuthenticationFailed(_("Malformed bearer token."))
        # Read on every API call: the user comes in the same query.
        token = (ApiToken.objects.select_related("user").only(*_TOKEN_FIELDS)
                 .filter(digest=token_digest(parts[1]), revoked_at__isnull=True).first())
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked token."))
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("This account is disabled."))
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > _LAST_USED_GRANULARITY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "BearerTokenAuthentication()"
