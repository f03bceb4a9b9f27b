"""State changes on accounts: sign-up and API tokens."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone

from exchange.accounts.models import ApiToken, Role, User
from exchange.accounts.tokens import token_digest, token_generate

SELF_SERVICE_ROLES = (Role.RIGHTS_HOLDER, Role.BUYER)


def user_signup(*, username: str, email: str, password: str, role: str) -> User:
    """Create an account from the portal or API. Admins are made with createsuperuser only."""
    if role not in SELF_SERVICE_ROLES:
        raise ValueError(f"role must be one of {', '.join(SELF_SERVICE_ROLES)}")
    user = User(username=username, email=email, role=role)
    validate_password(password, user)
    user.set_password(password)
    with transaction.atomic():
        user.full_clean()
        user.save()
    return user


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str


def api_token_create(*, user: User, name: str) -> IssuedToken:
    raw = token_generate()
    token = ApiToken.objects.create(
        user=user, name=name[:100] or "agent", prefix=raw[:12], digest=token_digest(raw)
    )
    return IssuedToken(token=token, raw=raw)


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
