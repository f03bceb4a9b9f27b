"""Index credentials (peerindex/credentials.py): what the platform mints and the index
accepts, and every way a credential is refused. The expected tokens and keys were worked
out from the spec's formula with the standard library alone (``_signed``, and the
literals below), never by the code under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from peerindex.config import Config
from peerindex.credentials import (
    MAX_TOKEN_LENGTH,
    Claims,
    CredentialError,
    derive_key,
    mint,
    parse_key,
    verify,
)

KEY = bytes.fromhex("5e" * 32)
OTHER_KEY = bytes.fromhex("a7" * 32)
JTI = "0123456789abcdef0123456789abcdef"
# mint(KEY, user=7, device="dev-1", now=1000, ttl=60, jti=JTI), computed by hand:
# base64url of {"u":7,"d":"dev-1","exp":1060,"j":JTI} and of its HMAC-SHA256, unpadded.
TOKEN = ("pmi1.eyJ1Ijo3LCJkIjoiZGV2LTEiLCJleHAiOjEwNjAsImoiOiIwMTIzNDU2Nzg5YWJjZGVmMDEy"
         "MzQ1Njc4OWFiY2RlZiJ9.crpcsulvFG6sIhQIF-TJzfZYVNvWa2kytORj4mDy6n4")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed(claims: object, *, key: bytes = KEY, prefix: str = "pmi1",
            raw: bytes | None = None) -> str:
    """A token signed as the spec says, with any claims at all (or raw bytes)."""
    body = _b64(raw if raw is not None else json.dumps(claims).encode())
    signed = f"{prefix}.{body}"
    return f"{signed}.{_b64(hmac.new(key, signed.encode(), hashlib.sha256).digest())}"


def _refused(token: str, *, now: int = 1000, keys: tuple[bytes, ...] = (KEY,)) -> str:
    with pytest.raises(CredentialError) as refused:
        verify(keys, token, now=now)
    return refused.value.code


def _good_claims(**change: object) -> dict[str, object]:
    return {"u": 7, "d": "dev-1", "exp": 1060, "j": JTI, **change}


class TestMintAndVerify:
    def test_a_minted_credential_is_the_specs_format_to_the_byte(self) -> None:
        assert mint(KEY, user=7, device="dev-1", now=1000, ttl=60, jti=JTI) == TOKEN

    def test_its_claims_are_read_back(self) -> None:
        assert verify([KEY], TOKEN, now=1000) == Claims(user=7, device="dev-1", exp=1060,
                                                        jti=JTI)

    def test_a_fresh_credential_id_is_32_hex_digits_and_differs_each_time(self) -> None:
        first = verify([KEY], mint(KEY, user=1, device="d", now=0, ttl=10), now=0).jti
        second = verify([KEY], mint(KEY, user=1, device="d", now=0, ttl=10), now=0).jti
        assert len(first) == 32
        assert int(first, 16) >= 0
        assert first != second

    @pytest.mark.parametrize("device", ["", "a b", "dev/1", "é", "x" * 65])
    def test_no_credential_is_minted_for_a_malformed_device(self, device: str) -> None:
        with pytest.raises(ValueError, match="device"):
            mint(KEY, user=1, device=device, now=0, ttl=10)

    def test_valid_until_the_second_before_expiry(self) -> None:
        assert verify([KEY], TOKEN, now=1059).exp == 1060
        assert _refused(TOKEN, now=1060) == "credential_expired"
        assert _refused(TOKEN, now=10**9) == "credential_expired"

    def test_claims_the_format_does_not_name_are_ignored(self) -> None:
        token = _signed(_good_claims(extra="hello"))
        assert verify([KEY], token, now=1000).device == "dev-1"


class TestForgeries:
    def test_a_forged_mac(self) -> None:
        prefix, body, mac = TOKEN.split(".")
        forged = _b64(hmac.new(KEY, b"something else", hashlib.sha256).digest())
        assert _refused(f"{prefix}.{body}.{forged}") == "unauthenticated"
        flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
        assert _refused(f"{prefix}.{body}.{flipped}") == "unauthenticated"
        assert _refused(f"{prefix}.{body}.") == "unauthenticated"

    def test_a_tampered_claims_part(self) -> None:
        _, _, mac = TOKEN.split(".")
        richer = _b64(json.dumps(_good_claims(u=8), separators=(",", ":")).encode())
        assert _refused(f"pmi1.{richer}.{mac}") == "unauthenticated"
        later = _b64(json.dumps(_good_claims(exp=99999), separators=(",", ":")).encode())
        assert _refused(f"pmi1.{later}.{mac}") == "unauthenticated"

    def test_a_token_signed_with_another_key(self) -> None:
        token = mint(OTHER_KEY, user=7, device="dev-1", now=1000, ttl=60, jti=JTI)
        assert _refused(token) == "unauthenticated"

    def test_a_token_of_another_prefix_even_if_signed(self) -> None:
        for prefix in ("pmi0", "pmi2", "PMI1", ""):
            assert _refused(_signed(_good_claims(), prefix=prefix)) == "unauthenticated"

    def test_a_token_too_long_even_if_signed(self) -> None:
        # A genuine signature over padded claims: the length alone refuses it.
        padding = "x" * 400
        long_token = _signed(_good_claims(pad=padding))
        assert len(long_token) > MAX_TOKEN_LENGTH
        assert _refused(long_token) == "unauthenticated"
        short = _signed(_good_claims(pad="x" * 100))
        assert len(short) <= MAX_TOKEN_LENGTH
        assert verify([KEY], short, now=1000).user == 7
        assert _refused("pmi1." + "a" * MAX_TOKEN_LENGTH + ".b") == "unauthenticated"

    @pytest.mark.parametrize("token", ["", "pmi1", "pmi1.abc", "pmi1.a.b.c",
                                       TOKEN + ".x", TOKEN.replace(".", "", 1)])
    def test_not_three_parts(self, token: str) -> None:
        assert _refused(token) == "unauthenticated"

    @pytest.mark.parametrize("raw", [
        b"not json",
        b"[7, \"dev-1\", 1060]",
        b"\xff\xfe",
        json.dumps({"u": 7, "d": "dev-1", "exp": 1060}).encode(),  # no credential id
        json.dumps(_good_claims(u="7")).encode(),
        json.dumps(_good_claims(u=True)).encode(),
        json.dumps(_good_claims(u=7.0)).encode(),
        json.dumps(_good_claims(exp=1060.5)).encode(),
        json.dumps(_good_claims(exp="1060")).encode(),
        json.dumps(_good_claims(d="dev 1")).encode(),
        json.dumps(_good_claims(d="x" * 65)).encode(),
        json.dumps(_good_claims(d=5)).encode(),
        json.dumps(_good_claims(j="XYZ")).encode(),
        json.dumps(_good_claims(j=JTI.upper())).encode(),
        json.dumps(_good_claims(j=None)).encode(),
    ], ids=["not-json", "a-list", "not-utf8", "no-jti", "user-text", "user-bool",
            "user-float", "exp-float", "exp-text", "device-space", "device-long",
            "device-number", "jti-short", "jti-upper", "jti-null"])
    def test_malformed_claims_though_genuinely_signed(self, raw: bytes) -> None:
        with pytest.raises(CredentialError, match="malformed") as refused:
            verify([KEY], _signed(None, raw=raw), now=1000)
        assert refused.value.code == "unauthenticated"

    def test_a_claims_part_that_is_not_base64(self) -> None:
        # Signed, so only the decoding can refuse it.
        signed = "pmi1.@@@@"
        mac = _b64(hmac.new(KEY, signed.encode(), hashlib.sha256).digest())
        assert _refused(f"{signed}.{mac}") == "unauthenticated"


class TestKeys:
    def test_the_derived_key_is_an_hmac_of_the_platforms_secret(self) -> None:
        # HMAC-SHA256(key="platform-secret", msg="peermark index credential v1"), by hand.
        assert derive_key("platform-secret").hex() == (
            "4d10f937023f3f59bb6bc2291fff0320204bba838b638963fd284cb895d3d8f8")

    def test_a_key_is_hex_of_at_least_32_bytes(self) -> None:
        assert parse_key(" " + "5e" * 32 + "\n") == KEY
        with pytest.raises(ValueError, match="hex"):
            parse_key("zz" * 32)
        with pytest.raises(ValueError, match="32 bytes"):
            parse_key("5e" * 31)

    def test_the_previous_key_is_honoured_during_a_rotation(self) -> None:
        env = {"REDIS_URL": "redis://127.0.0.1:1/0", "PEERMARK_INDEX_SECRET": "a7" * 32,
               "PEERMARK_INDEX_PREVIOUS_SECRET": "5e" * 32}
        rotated = Config.from_env(env)
        assert rotated.keys == (OTHER_KEY, KEY)  # the current key first
        assert verify(rotated.keys, TOKEN, now=1000).user == 7  # minted with the old key
        fresh = mint(OTHER_KEY, user=9, device="d2", now=1000, ttl=60)
        assert verify(rotated.keys, fresh, now=1000).user == 9
        third = mint(bytes.fromhex("c3" * 32), user=9, device="d2", now=1000, ttl=60)
        assert _refused(third, keys=rotated.keys) == "unauthenticated"

    def test_once_the_previous_key_is_dropped_its_credentials_are_refused(self) -> None:
        env = {"REDIS_URL": "redis://127.0.0.1:1/0", "PEERMARK_INDEX_SECRET": "a7" * 32}
        assert _refused(TOKEN, keys=Config.from_env(env).keys) == "unauthenticated"

    def test_without_an_index_secret_the_platforms_secret_key_is_used(self) -> None:
        env = {"REDIS_URL": "redis://127.0.0.1:1/0", "PEERMARK_SECRET_KEY": "platform-secret"}
        assert Config.from_env(env).keys == (bytes.fromhex(
            "4d10f937023f3f59bb6bc2291fff0320204bba838b638963fd284cb895d3d8f8"),)

    @pytest.mark.parametrize(("env", "says"), [
        ({"PEERMARK_INDEX_SECRET": "5e" * 32}, "REDIS_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "PEERMARK_INDEX_SECRET"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0", "PEERMARK_INDEX_SECRET": "5e" * 8},
         "32 bytes"),
        ({"REDIS_URL": "redis://127.0.0.1:1/0", "PEERMARK_INDEX_SECRET": "5e" * 32,
          "PEERMARK_PEER_TIMEOUT_SECONDS": "4"}, "PEERMARK_PEER_TIMEOUT_SECONDS"),
    ], ids=["no-redis", "no-secret", "short-secret", "timeout-below-5"])
    def test_the_service_refuses_a_bad_environment(self, env: dict[str, str],
                                                   says: str) -> None:
        with pytest.raises(ValueError, match=says):
            Config.from_env(env)

    def test_the_announce_interval_is_a_third_of_the_peer_timeout(self) -> None:
        env = {"REDIS_URL": "redis://127.0.0.1:1/0", "PEERMARK_INDEX_SECRET": "5e" * 32,
               "PEERMARK_PEER_TIMEOUT_SECONDS": "5"}
        config = Config.from_env(env)
        assert (config.peer_timeout, config.announce_interval) == (5, 1)
        assert Config.from_env({**env, "PEERMARK_PEER_TIMEOUT_SECONDS": ""}).announce_interval \
            == 30
