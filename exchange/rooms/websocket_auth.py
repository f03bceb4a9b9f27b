"""Who is on the other end of a room's socket: a portal session (browsers) or an API
bearer token (agents and other programs).

Browsers always send ``Origin`` on a WebSocket handshake, so a handshake carrying one
must come from one of our hosts before its session cookie counts (another site's page
cannot ride a member's session). A handshake without ``Origin`` is not a browser's: its
cookies are ignored and only an ``Authorization: Bearer`` header can sign it in, which
no web page can set on a WebSocket.
"""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser

from exchange.accounts.models import ApiToken, User
from exchange.accounts.tokens import TOKEN_PREFIX, token_digest

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None


@database_sync_to_async
def _token_user(header: str) -> User | AnonymousUser:
    parts = header.split()
    if (len(parts) != 2 or parts[0].lower() != "bearer" or not parts[1].startswith(TOKEN_PREFIX)
            or len(parts[1]) > 200):
        return AnonymousUser()
    token = (ApiToken.objects.select_related("user")
             .filter(digest=token_digest(parts[1]), revoked_at__isnull=True).first())
    if token is None or not token.user.is_active:
        return AnonymousUser()
    return token.user


class _BearerOnly:
    """No Origin: cookies are dropped; a bearer token signs in, or nobody does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        header = _header(scope, b"authorization")
        user = await _token_user(header.decode("latin-1")) if header else AnonymousUser()
        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"cookie"]
        return await self.inner({**scope, "headers": headers, "user": user}, receive, send)


class RoomsAuth:
    """Session (same-origin browsers) or bearer token (no Origin), never both."""

    def __init__(self, inner: Any) -> None:
        self.browser = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))
        self.program = _BearerOnly(inner)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if _header(scope, b"origin") is None:
            return await self.program(scope, receive, send)
        return await self.browser(scope, receive, send)
