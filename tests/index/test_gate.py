"""The gate (peerindex/gate.py): credentials, revocations and per-second limits decided
in memory, with the clock given, so the windows are exact here (over HTTP,
test_service.py shows the same limits on a running service)."""

from __future__ import annotations

import pytest

from peerindex.credentials import CredentialError, mint
from peerindex.gate import Gate, LimitedError

KEY = bytes.fromhex("5e" * 32)
NOW = 1_700_000_000


def _header(*, user: int = 1, device: str = "dev-1", ttl: int = 600,
            jti: str | None = None) -> bytes:
    return b"Bearer " + mint(KEY, user=user, device=device, now=NOW, ttl=ttl,
                             jti=jti).encode()


def _code(gate: Gate, header: bytes | None, *, now: int = NOW,
          address: str = "127.0.0.1") -> str:
    with pytest.raises(CredentialError) as refused:
        gate.admit(header, address, now)
    return refused.value.code


def test_a_good_credential_is_admitted_and_remembered_until_it_expires() -> None:
    gate = Gate([KEY], per_address=0, per_credential=0)
    header = _header(ttl=10)
    assert gate.admit(header, "127.0.0.1", NOW).device == "dev-1"
    assert gate.admit(header, "127.0.0.1", NOW + 9).user == 1
    assert _code(gate, header, now=NOW + 10) == "credential_expired"
    assert _code(gate, header, now=NOW + 11) == "credential_expired"


@pytest.mark.parametrize("header", [None, b"", b"Basic dXNlcjpwYXNz", b"Bearer",
                                    b"bearer " + _header()[7:], b"Bearer pmi1.x.y"])
def test_no_or_a_malformed_authorization_is_unauthenticated(header: bytes | None) -> None:
    assert _code(Gate([KEY], per_address=0, per_credential=0), header) == "unauthenticated"


@pytest.mark.parametrize("member", ["d:dev-1", "u:7", "c:" + "ab" * 16])
def test_a_revoked_device_user_or_credential_is_refused(member: str) -> None:
    gate = Gate([KEY], per_address=0, per_credential=0)
    header = _header(user=7, device="dev-1", jti="ab" * 16)
    assert gate.admit(header, "127.0.0.1", NOW).user == 7  # remembered as good first
    gate.set_revoked([member])
    assert _code(gate, header) == "credential_revoked"
    other = _header(user=8, device="dev-2", jti="cd" * 16)
    assert gate.admit(other, "127.0.0.1", NOW).user == 8  # nobody else
    gate.set_revoked([])
    assert gate.admit(header, "127.0.0.1", NOW).user == 7


def test_the_per_credential_limit_counts_within_one_second() -> None:
    gate = Gate([KEY], per_address=0, per_credential=3)
    header = _header()
    for _ in range(3):
        gate.admit(header, "127.0.0.1", NOW)
    with pytest.raises(LimitedError) as limited:
        gate.admit(header, "127.0.0.1", NOW)
    assert limited.value.retry_after == 1
    gate.admit(_header(jti="ef" * 16), "127.0.0.1", NOW)  # another credential: its own count
    gate.admit(header, "127.0.0.1", NOW + 1)  # the next second starts again


def test_the_per_address_limit_counts_every_request_even_unauthenticated() -> None:
    gate = Gate([KEY], per_address=2, per_credential=0)
    assert _code(gate, None, address="192.0.2.1") == "unauthenticated"
    assert _code(gate, None, address="192.0.2.1") == "unauthenticated"
    with pytest.raises(LimitedError):
        gate.admit(_header(), "192.0.2.1", NOW)
    assert gate.admit(_header(), "192.0.2.2", NOW).device == "dev-1"
    assert gate.admit(_header(), "192.0.2.1", NOW + 1).device == "dev-1"


def test_the_per_address_limit_counts_an_ipv6_64_as_one_address() -> None:
    gate = Gate([KEY], per_address=2, per_credential=0)
    gate.admit(_header(), "2001:db8:1:2::a", NOW)
    gate.admit(_header(), "2001:db8:1:2:ffff:ffff:ffff:ffff", NOW)  # the same /64
    with pytest.raises(LimitedError):
        gate.admit(_header(), "2001:db8:1:2::1:b", NOW)
    assert gate.admit(_header(), "2001:db8:1:3::a", NOW).device == "dev-1"  # the next /64


def test_past_its_bound_the_gate_forgets_expired_credentials_first_then_the_oldest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("peerindex.gate.MAX_REMEMBERED", 4)
    gate = Gate([KEY], per_address=0, per_credential=0)
    short = [_header(device=f"short-{i}", ttl=10, jti=f"{i:032x}") for i in range(2)]
    long = [_header(device=f"long-{i}", ttl=600, jti=f"{i + 10:032x}") for i in range(4)]
    for header in short + long[:2]:
        gate.admit(header, "127.0.0.1", NOW)
    gate.admit(long[2], "127.0.0.1", NOW + 20)  # full: the two expired ones go
    assert sorted(c.device for c in gate._known.values()) == ["long-0", "long-1", "long-2"]
    gate.admit(long[3], "127.0.0.1", NOW + 20)  # four: not yet past the bound
    gate.admit(_header(device="new", jti="ab" * 16), "127.0.0.1", NOW + 20)  # oldest half go
    assert sorted(c.device for c in gate._known.values()) == ["long-2", "long-3", "new"]
    assert gate.admit(long[0], "127.0.0.1", NOW + 20).device == "long-0"  # checked again
