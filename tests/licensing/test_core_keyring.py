"""Platform keys: states, rotation, retirement, and the published JWKS."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from licensing.core import (
    DocumentKind,
    KeyRing,
    KeyState,
    KeyStateError,
    MalformedError,
    OversizedError,
    PlatformKey,
    RetiredKeyError,
    UnknownKeyError,
    may_activate,
    may_retire,
    read_licence,
)

from .core_support import DAY, NOW, Sale, build_sale

TOKEN_LIFETIME = 30 * DAY


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return build_sale(tmp_path_factory.mktemp("keyring"), master_size=70_000)


def test_tokens_signed_before_a_rotation_verify_until_the_old_key_is_retired(sale: Sale) -> None:
    old = sale.signing_key
    ring = KeyRing([old])
    before = sale.issue(keyring=ring, issued_at=NOW, expires_at=NOW + TOKEN_LIFETIME)

    # 1. Publish the new key, verify-only: the old key still signs.
    new = PlatformKey.generate()
    ring = ring.with_new_key(new)
    assert ring.active == old
    assert json.loads(json.dumps(ring.to_jwks()))["keys"][1]["kid"] == new.kid
    assert read_licence(before, keyring=ring, now=NOW).kid == old.kid

    # 2. Once every cached JWKS knows it, the new key becomes the signer.
    assert may_activate(now=NOW + DAY, published_at=NOW, jwks_max_age=DAY)
    ring = ring.activate(new.kid)
    assert ring.active is not None
    assert ring.active.kid == new.kid
    assert ring.get(old.kid).state is KeyState.VERIFY_ONLY
    after = sale.issue(keyring=ring, issued_at=NOW + DAY, expires_at=NOW + DAY + TOKEN_LIFETIME)
    assert read_licence(after, keyring=ring, now=NOW + DAY).kid == new.kid
    assert read_licence(before, keyring=ring, now=NOW + DAY).kid == old.kid

    # 3. The old key cannot retire while a token it signed may still be alive ...
    last_signed = NOW
    with pytest.raises(KeyStateError):
        ring.retire(
            old.kid,
            now=NOW + 2 * DAY,
            last_signed_at=last_signed,
            max_token_lifetime=TOKEN_LIFETIME,
        )
    # ... and retires once the longest-lived one has expired; then its tokens fail.
    retire_at = last_signed + TOKEN_LIFETIME + 61
    ring = ring.retire(
        old.kid, now=retire_at, last_signed_at=last_signed, max_token_lifetime=TOKEN_LIFETIME
    )
    with pytest.raises(RetiredKeyError):
        read_licence(before, keyring=ring, now=NOW)
    assert read_licence(after, keyring=ring, now=NOW + DAY).kid == new.kid

    # An agent that fetches the JWKS after retirement no longer knows the old key at all.
    agent = KeyRing.from_jwks(json.dumps(ring.to_jwks()))
    assert [k.kid for k in agent.keys] == [new.kid]
    with pytest.raises(UnknownKeyError):
        read_licence(before, keyring=agent, now=NOW)


def test_may_retire_waits_for_the_longest_lived_token_and_the_leeway() -> None:
    assert may_retire(now=NOW, last_signed_at=None, max_token_lifetime=TOKEN_LIFETIME)
    edge = NOW + TOKEN_LIFETIME + 60
    assert not may_retire(now=edge, last_signed_at=NOW, max_token_lifetime=TOKEN_LIFETIME)
    assert may_retire(now=edge + 1, last_signed_at=NOW, max_token_lifetime=TOKEN_LIFETIME)
    assert not may_retire(
        now=edge + 1, last_signed_at=NOW, max_token_lifetime=TOKEN_LIFETIME, leeway=3600
    )


def test_may_activate_waits_for_cached_jwks_to_expire() -> None:
    assert not may_activate(now=NOW + 3599, published_at=NOW, jwks_max_age=3600)
    assert may_activate(now=NOW + 3600, published_at=NOW, jwks_max_age=3600)


def test_a_ring_has_at_most_one_active_key() -> None:
    with pytest.raises(KeyStateError):
        KeyRing([PlatformKey.generate(state=KeyState.ACTIVE) for _ in range(2)])


def test_the_active_key_cannot_be_retired() -> None:
    key = PlatformKey.generate(state=KeyState.ACTIVE)
    with pytest.raises(KeyStateError):
        KeyRing([key]).retire(key.kid, now=NOW, last_signed_at=None, max_token_lifetime=1)


def test_a_new_key_must_be_published_verify_only_and_only_once() -> None:
    key = PlatformKey.generate(state=KeyState.ACTIVE)
    ring = KeyRing([key])
    with pytest.raises(KeyStateError):
        ring.with_new_key(PlatformKey.generate(state=KeyState.ACTIVE))
    with pytest.raises(KeyStateError):
        ring.with_new_key(key.with_state(KeyState.VERIFY_ONLY))


def test_only_a_verify_only_key_with_its_private_half_can_be_activated() -> None:
    signer = PlatformKey.generate(state=KeyState.ACTIVE)
    public_only = PlatformKey.from_public_jwk(
        PlatformKey.generate().public_jwk(), state=KeyState.VERIFY_ONLY
    )
    retired = PlatformKey.generate(state=KeyState.RETIRED)
    ring = KeyRing([signer, public_only, retired])
    for kid in (public_only.kid, retired.kid, signer.kid):
        with pytest.raises(KeyStateError):
            ring.activate(kid)
    with pytest.raises(UnknownKeyError):
        ring.activate("no-such-kid")


def test_a_ring_without_an_active_key_cannot_sign() -> None:
    ring = KeyRing.from_jwks(KeyRing([PlatformKey.generate(state=KeyState.ACTIVE)]).to_jwks())
    with pytest.raises(KeyStateError):
        ring.sign(DocumentKind.LICENCE, {"jti": "x"})


def test_a_ring_refuses_to_sign_device_documents() -> None:
    ring = KeyRing([PlatformKey.generate(state=KeyState.ACTIVE)])
    with pytest.raises(KeyStateError):
        ring.sign(DocumentKind.ORDER, {})


def test_the_kid_is_the_rfc_7638_thumbprint() -> None:
    key = PlatformKey.generate()
    assert key.kid == key.jwk.thumbprint()
    assert len(key.kid) == 43


def test_a_private_key_round_trips_through_its_raw_bytes() -> None:
    key = PlatformKey.generate()
    again = PlatformKey.from_private_bytes(key.private_bytes(), state=KeyState.ACTIVE)
    assert again.kid == key.kid
    assert again.state is KeyState.ACTIVE
    with pytest.raises(KeyStateError):
        PlatformKey.from_public_jwk(key.public_jwk(), state=KeyState.VERIFY_ONLY).private_bytes()
    with pytest.raises(MalformedError):
        PlatformKey.from_private_bytes(b"short", state=KeyState.ACTIVE)


def test_the_jwks_publishes_public_halves_of_live_keys_only() -> None:
    active = PlatformKey.generate(state=KeyState.ACTIVE)
    waiting = PlatformKey.generate()
    retired = PlatformKey.generate(state=KeyState.RETIRED)
    jwks = KeyRing([active, waiting, retired]).to_jwks()
    assert [k["kid"] for k in jwks["keys"]] == [active.kid, waiting.kid]
    for jwk in jwks["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
        assert jwk["alg"] == "Ed25519"
    assert all(k.state is KeyState.VERIFY_ONLY for k in KeyRing.from_jwks(jwks).keys)


def test_a_repr_never_shows_private_keys() -> None:
    key = PlatformKey.generate(state=KeyState.ACTIVE)
    secret = key.private_bytes().hex()
    assert secret not in repr(key)
    assert secret not in repr(KeyRing([key]))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda k: k.update(kid="not-the-thumbprint"),
        lambda k: k.update(d="A" * 43),
        lambda k: k.update(crv="X25519"),
        lambda k: k.update(kty="EC"),
        lambda k: k.update(alg="EdDSA"),
        lambda k: k.update(use="enc"),
        lambda k: k.update(x="A" * 42),
        lambda k: k.update(x5u="https://attacker.example/"),
        lambda k: k.pop("x"),
    ],
)
def test_a_jwks_with_a_bad_key_is_refused(mutate: Callable[[dict[str, str]], object]) -> None:
    jwks = KeyRing([PlatformKey.generate()]).to_jwks()
    mutate(jwks["keys"][0])
    with pytest.raises(MalformedError):
        KeyRing.from_jwks(jwks)


@pytest.mark.parametrize(
    "document", ["", "[]", '{"keys": {}}', '{"keys": [], "extra": 1}', '{"keys": [1]}', b"\xff"]
)
def test_a_malformed_jwks_is_refused(document: str | bytes) -> None:
    with pytest.raises(MalformedError):
        KeyRing.from_jwks(document)


def test_an_oversized_jwks_is_refused() -> None:
    with pytest.raises(OversizedError):
        KeyRing.from_jwks(" " * 70_000)


def test_a_jwks_listing_a_key_twice_is_refused() -> None:
    jwks = KeyRing([PlatformKey.generate()]).to_jwks()
    jwks["keys"].append(dict(jwks["keys"][0]))
    with pytest.raises(KeyStateError):
        KeyRing.from_jwks(jwks)
