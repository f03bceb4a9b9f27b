"""The platform key ring, as stored: loading, caching, first key, rotation.

Private halves are stored wrapped at rest under the key-encryption key (KEK) from
``PEERMARK_KEY_ENCRYPTION_KEY`` (base64 of 32 bytes, or ``_FILE``); the embedded
default generates one into the data folder with owner-only permissions. Losing the KEK
loses the signing keys (agents would need a new JWKS) and every work's content key:
back it up apart from the database.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import threading
import time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from exchange.env import env_str, secret_in_data_dir
from exchange.licensing.models import Licence, PlatformKey
from licensing.core.at_rest import KEK_BYTES, unwrap_at_rest, wrap_at_rest
from licensing.core.errors import KeyStateError
from licensing.core.keyring import KeyRing, KeyState, may_activate, may_retire
from licensing.core.keyring import PlatformKey as CorePlatformKey

# The ring is read on every signature; keys change rarely and a rotation step leaves the
# old signer valid for much longer than this, so a short per-process cache is safe.
_CACHE_SECONDS = 30.0


class _RingCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.loaded_at = 0.0
        self.ring: KeyRing | None = None


_cache = _RingCache()


def _make_kek() -> str:
    return base64.b64encode(os.urandom(KEK_BYTES)).decode()


_keks: dict[tuple[str | None, str], bytes] = {}


def key_encryption_key() -> bytes:
    """The key that wraps every private key and content key at rest.

    Read once per source (the environment's value, or the data folder's file), not on
    every licence issued: each sale unwraps the work's keys under it.
    """
    configured = env_str("PEERMARK_KEY_ENCRYPTION_KEY")
    source = (configured, str(settings.DATA_DIR))
    kek = _keks.get(source)
    if kek is None:
        kek = _keks[source] = _kek_from(configured or secret_in_data_dir(
            settings.DATA_DIR / "key_encryption_key", _make_kek))
    return kek


def _kek_from(text: str) -> bytes:
    try:
        kek = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ImproperlyConfigured("PEERMARK_KEY_ENCRYPTION_KEY is not base64") from exc
    if len(kek) != KEK_BYTES:
        raise ImproperlyConfigured("PEERMARK_KEY_ENCRYPTION_KEY must be 32 bytes, base64")
    return kek


def _aad(kid: str) -> bytes:
    return b"platform-signing-key:" + kid.encode()


def _core_key(row: PlatformKey, kek: bytes) -> CorePlatformKey:
    raw = unwrap_at_rest(kek, bytes(row.private_wrapped), _aad(row.kid))
    return CorePlatformKey.from_private_bytes(raw, state=KeyState(row.state))


def keyring_load() -> KeyRing:
    """The ring from the database, uncached (private halves unwrapped)."""
    kek = key_encryption_key()
    return KeyRing(_core_key(row, kek) for row in PlatformKey.objects.all())


def keyring_clear_cache() -> None:
    with _cache.lock:
        _cache.ring = None


def platform_keyring() -> KeyRing:
    """The ring to sign and verify with; makes the first key on first use."""
    with _cache.lock:
        if _cache.ring is not None and time.monotonic() - _cache.loaded_at < _CACHE_SECONDS:
            return _cache.ring
    ring = keyring_load()
    if ring.active is None and not PlatformKey.objects.exists():
        key_publish(activate=True)
        ring = keyring_load()
    with _cache.lock:
        _cache.ring, _cache.loaded_at = ring, time.monotonic()
    return ring


def key_publish(*, activate: bool = False) -> PlatformKey:
    """Step one of a rotation: a new key, verify-only (or active, for the very first)."""
    core = CorePlatformKey.generate(state=KeyState.VERIFY_ONLY)
    now = timezone.now()
    state = KeyState.ACTIVE if activate else KeyState.VERIFY_ONLY
    try:
        with transaction.atomic():
            row = PlatformKey.objects.create(
                kid=core.kid,
                state=state.value,
                public_jwk=core.public_jwk(),
                private_wrapped=wrap_at_rest(
                    key_encryption_key(), core.private_bytes(), _aad(core.kid)
                ),
                activated_at=now if activate else None,
            )
    except IntegrityError:
        # Another process made the first active key at the same moment: keep theirs.
        row = PlatformKey.objects.get(state=KeyState.ACTIVE.value)
    keyring_clear_cache()
    return row


def key_activate(*, kid: str, now: dt.datetime | None = None, force: bool = False) -> PlatformKey:
    """Step two: the published key signs from now on; the old signer verifies only.

    Refused until every agent's cached JWKS (max-age ``JWKS_MAX_AGE``) has had time to
    expire since the key was published, so no verifier meets a token from a key it
    does not know yet.
    """
    now = now or timezone.now()
    with transaction.atomic():
        row = PlatformKey.objects.select_for_update().get(kid=kid)
        if row.state != KeyState.VERIFY_ONLY:
            raise KeyStateError(f"only a verify-only key can become active, not {row.state}")
        published = int(row.published_at.timestamp())
        if not force and not may_activate(
            now=int(now.timestamp()), published_at=published, jwks_max_age=settings.JWKS_MAX_AGE
        ):
            raise KeyStateError(
                f"key {kid} was published less than {settings.JWKS_MAX_AGE}s ago; agents "
                "may not know it yet"
            )
        PlatformKey.objects.filter(state=KeyState.ACTIVE).update(
            state=KeyState.VERIFY_ONLY, deactivated_at=now
        )
        row.state = KeyState.ACTIVE
        row.activated_at = now
        row.save(update_fields=["state", "activated_at"])
    keyring_clear_cache()
    return row


def key_live_until(row: PlatformKey) -> dt.datetime | None:
    """When the last token this key can have signed expires (None: it never signed)."""
    if row.activated_at is None:
        return None
    stopped = row.deactivated_at or timezone.now()
    short_lived = stopped + dt.timedelta(
        seconds=max(settings.MANIFEST_TOKEN_SECONDS, settings.REVOCATION_LIST_SECONDS)
    )
    longest_licence = Licence.objects.filter(kid=row.kid).aggregate(last=Max("expires_at"))["last"]
    return max(short_lived, longest_licence) if longest_licence else short_lived


def key_retire(*, kid: str, now: dt.datetime | None = None) -> PlatformKey:
    """Step three: the key verifies nothing more — only after all its tokens expired."""
    now = now or timezone.now()
    with transaction.atomic():
        row = PlatformKey.objects.select_for_update().get(kid=kid)
        if row.state == KeyState.ACTIVE:
            raise KeyStateError("activate another key before retiring the active one")
        if row.state == KeyState.RETIRED:
            return row
        live_until = key_live_until(row)
        stopped = row.deactivated_at
        if (
            live_until is not None
            and stopped is not None
            and not may_retire(
                now=int(now.timestamp()),
                last_signed_at=int(stopped.timestamp()),
                max_token_lifetime=int((live_until - stopped).total_seconds()),
            )
        ):
            raise KeyStateError(f"key {kid} has tokens alive until {live_until.isoformat()}")
        row.state = KeyState.RETIRED
        row.retired_at = now
        row.save(update_fields=["state", "retired_at"])
    keyring_clear_cache()
    return row
