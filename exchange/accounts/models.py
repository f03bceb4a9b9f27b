"""Users, their role on the exchange, and the API tokens agents authenticate with."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    RIGHTS_HOLDER = "rights_holder", _("Rights holder")
    BUYER = "buyer", _("Buyer / peer")
    ADMIN = "admin", _("Platform admin")


class User(AbstractUser):
    """A person on the exchange. Every role may buy and seed; only rights holders sell."""

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.BUYER)

    @property
    def is_rights_holder(self) -> bool:
        return self.role == Role.RIGHTS_HOLDER

    @property
    def is_platform_admin(self) -> bool:
        return self.role == Role.ADMIN and self.is_staff


class ApiToken(models.Model):
    """A bearer token for the agent or scripts; only its SHA-256 is stored.

    Tokens are per user and named (one per agent install, say), so that one can be
    revoked without logging the others out. The raw value is shown once, at creation.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart.")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "revoked_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


def authenticated_user(request: object) -> User:
    """The request's user, typed; for views whose permission class already demanded a login.

    Raises rather than returning an anonymous user, so a view wired without its
    permission class fails closed.
    """
    from rest_framework.exceptions import NotAuthenticated

    user = getattr(request, "user", None)
    if not isinstance(user, User) or not user.is_authenticated:
        raise NotAuthenticated()
    return user
