"""Orders: what a serving peer checks, offline, before it sends a piece."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from licensing.core import (
    BadSignatureError,
    ExpiredError,
    LicensingError,
    MalformedError,
    MismatchError,
    NotYetValidError,
    OrderVerifier,
    PieceOutOfRangeError,
    ReplayCache,
    ReplayedError,
    RevokedError,
    WrongDeviceError,
    WrongPeerError,
    WrongTypeError,
    read_licence,
    read_order,
    read_revocation_list,
    sign_order,
)
from licensing.core.orders import DEFAULT_ORDER_WINDOW

from .core_support import (
    NOW,
    SERVING_PEER,
    Sale,
    build_sale,
    counter_random,
    decode_part,
    forge,
)


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return build_sale(tmp_path_factory.mktemp("orders"), master_size=4 * (1 << 18) + 5)


@pytest.fixture
def verifier(sale: Sale) -> OrderVerifier:
    return OrderVerifier(keyring=sale.agent_ring, peer_id=SERVING_PEER)


def order(sale: Sale, **changes: Any) -> str:
    fields: dict[str, Any] = {
        "licence_id": "licence-bob-1",
        "peer_id": SERVING_PEER,
        "piece": 1,
        "byte_count": sale.manifest.piece_length(1),
        "issued_at": NOW,
    }
    fields.update(changes)
    device = fields.pop("device", sale.bob)
    return sign_order(device, **fields)


def verify(verifier: OrderVerifier, sale: Sale, token: str, **changes: Any) -> object:
    arguments: dict[str, Any] = {
        "manifest": sale.manifest,
        "revocations": sale.revocations,
        "now": NOW,
    }
    arguments.update(changes)
    licence = arguments.pop("licence", sale.licence_token)
    return verifier.verify(token, licence, **arguments)


def test_a_good_order_verifies_offline(verifier: OrderVerifier, sale: Sale) -> None:
    verified = verify(verifier, sale, order(sale))
    assert verified.piece == 1  # type: ignore[attr-defined]
    assert verified.byte_count == sale.manifest.piece_length(1)  # type: ignore[attr-defined]
    assert verified.device_id == sale.bob.device_id  # type: ignore[attr-defined]
    assert verified.licence_id == "licence-bob-1"  # type: ignore[attr-defined]


def test_the_last_piece_is_ordered_by_its_own_length(verifier: OrderVerifier, sale: Sale) -> None:
    last = sale.manifest.piece_count - 1
    token = order(sale, piece=last, byte_count=sale.manifest.piece_length(last))
    assert verify(verifier, sale, token).byte_count == 5 + 16  # type: ignore[attr-defined]


def test_it_verifies_a_licence_once_for_a_stream_of_orders(
    verifier: OrderVerifier, sale: Sale
) -> None:
    verify(verifier, sale, order(sale))
    cached = verifier.licence("licence-bob-1", sale.licence_token, now=NOW)
    verify(verifier, sale, order(sale, piece=2, byte_count=sale.manifest.piece_length(2)))
    assert verifier.licence("licence-bob-1", sale.licence_token, now=NOW) is cached


def test_a_forged_licence_reusing_a_cached_jti_is_verified_from_scratch(
    verifier: OrderVerifier, sale: Sale
) -> None:
    verify(verifier, sale, order(sale))  # caches licence-bob-1
    head, payload, signature = sale.licence_token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BA'}"
    with pytest.raises(LicensingError):
        verify(verifier, sale, order(sale), licence=forged)


def test_it_rejects_a_replayed_order_nonce(verifier: OrderVerifier, sale: Sale) -> None:
    token = order(sale)
    verify(verifier, sale, token)
    with pytest.raises(ReplayedError):
        verify(verifier, sale, token)
    with pytest.raises(ReplayedError):  # still refused later in its window
        verify(verifier, sale, token, now=NOW + DEFAULT_ORDER_WINDOW)


def test_the_same_nonce_under_two_licences_is_two_orders(
    verifier: OrderVerifier, sale: Sale
) -> None:
    second = sale.issue(licence_id="licence-bob-2")
    nonce_source = counter_random(7)
    verify(verifier, sale, order(sale, random=nonce_source))
    verify(
        verifier,
        sale,
        order(sale, licence_id="licence-bob-2", random=counter_random(7)),
        licence=second,
    )


def test_it_rejects_an_order_signed_by_another_device(verifier: OrderVerifier, sale: Sale) -> None:
    with pytest.raises(WrongDeviceError):
        verify(verifier, sale, order(sale, device=sale.carol))


def test_it_rejects_an_order_naming_the_licensed_device_but_signed_by_another(
    verifier: OrderVerifier, sale: Sale
) -> None:
    genuine = order(sale)
    # Carol signs with her own device key but names Bob's device as the signer.
    forged = forge(decode_part(genuine, 0), decode_part(genuine, 1), sale.carol_signing_key)
    with pytest.raises(BadSignatureError):
        verify(verifier, sale, forged)


def test_it_rejects_an_order_addressed_to_another_peer(verifier: OrderVerifier, sale: Sale) -> None:
    with pytest.raises(WrongPeerError):
        verify(verifier, sale, order(sale, peer_id="peer-elsewhere"))


@pytest.mark.parametrize("piece", [5, 6, 1_000_000])
def test_it_rejects_a_piece_index_outside_the_manifest(
    verifier: OrderVerifier, sale: Sale, piece: int
) -> None:
    assert sale.manifest.piece_count == 5
    with pytest.raises(PieceOutOfRangeError):
        verify(verifier, sale, order(sale, piece=piece, byte_count=16))


def test_it_rejects_a_byte_count_other_than_the_pieces_length(
    verifier: OrderVerifier, sale: Sale
) -> None:
    for count in (0, sale.manifest.piece_length(1) - 1, sale.manifest.piece_length(1) + 1):
        with pytest.raises(MismatchError):
            verify(verifier, sale, order(sale, byte_count=count))


def test_it_rejects_an_order_outside_its_time_window(verifier: OrderVerifier, sale: Sale) -> None:
    verify(verifier, sale, order(sale, issued_at=NOW - DEFAULT_ORDER_WINDOW))
    verify(verifier, sale, order(sale, issued_at=NOW + DEFAULT_ORDER_WINDOW))
    with pytest.raises(ExpiredError):
        verify(verifier, sale, order(sale, issued_at=NOW - DEFAULT_ORDER_WINDOW - 1))
    with pytest.raises(NotYetValidError):
        verify(verifier, sale, order(sale, issued_at=NOW + DEFAULT_ORDER_WINDOW + 1))


def test_it_rejects_an_order_under_an_expired_licence_even_when_cached(
    verifier: OrderVerifier, sale: Sale
) -> None:
    verify(verifier, sale, order(sale))
    later = sale.licence.expires_at + 3600
    revocations = read_revocation_list(
        sale.revocation_list(version=2, issued_at=later - 60, next_update=later + 3600),
        keyring=sale.ring,
        now=later,
    )
    with pytest.raises(ExpiredError):
        verify(verifier, sale, order(sale, issued_at=later), now=later, revocations=revocations)


def test_it_rejects_an_order_under_a_revoked_licence(verifier: OrderVerifier, sale: Sale) -> None:
    verify(verifier, sale, order(sale))  # cached before the revocation arrives
    revoked = read_revocation_list(
        sale.revocation_list(version=2, licences=["licence-bob-1"]), keyring=sale.ring, now=NOW
    )
    with pytest.raises(RevokedError):
        verify(verifier, sale, order(sale), revocations=revoked)


def test_it_rejects_an_order_from_a_revoked_device(verifier: OrderVerifier, sale: Sale) -> None:
    revoked = read_revocation_list(
        sale.revocation_list(version=2, devices=[sale.bob.device_id]), keyring=sale.ring, now=NOW
    )
    with pytest.raises(RevokedError):
        verify(verifier, sale, order(sale), revocations=revoked)


def test_it_refuses_to_work_from_a_stale_revocation_list(
    verifier: OrderVerifier, sale: Sale
) -> None:
    later = sale.revocations.next_update + 3600
    with pytest.raises(ExpiredError):
        verify(verifier, sale, order(sale, issued_at=later), now=later)


def test_it_rejects_a_licence_for_another_manifest(verifier: OrderVerifier, sale: Sale) -> None:
    other = dataclasses.replace(sale.manifest, work_id="another-work")
    with pytest.raises(MismatchError):
        verify(verifier, sale, order(sale), manifest=other)


def test_it_rejects_an_order_under_another_licence(verifier: OrderVerifier, sale: Sale) -> None:
    with pytest.raises(MismatchError):
        verify(verifier, sale, order(sale, licence_id="licence-bob-2"))


def test_it_rejects_a_licence_token_in_place_of_an_order(
    verifier: OrderVerifier, sale: Sale
) -> None:
    with pytest.raises(WrongTypeError):
        verify(verifier, sale, sale.licence_token)


def test_a_nonce_must_be_16_canonical_bytes(verifier: OrderVerifier, sale: Sale) -> None:
    genuine = order(sale)
    claims = {**decode_part(genuine, 1), "nonce": "short"}
    token = forge(decode_part(genuine, 0), claims, sale.bob_signing_key)
    with pytest.raises(MalformedError):
        verify(verifier, sale, token)


def test_the_platform_reads_submitted_orders_without_a_time_window(sale: Sale) -> None:
    old = order(sale, issued_at=NOW - 10 * 86_400)
    licence = read_licence(sale.licence_token, keyring=sale.ring, now=NOW)
    assert read_order(old, licence=licence).issued_at == NOW - 10 * 86_400
    with pytest.raises(WrongDeviceError):
        read_order(order(sale, device=sale.carol), licence=licence)
    with pytest.raises(MismatchError):
        read_order(order(sale, licence_id="licence-bob-9"), licence=licence)


# --- the replay cache --------------------------------------------------------------------


def test_the_replay_cache_forgets_an_entry_once_its_window_has_passed() -> None:
    cache = ReplayCache(max_entries=10)
    cache.check_and_add(("l", "n"), expires_at=NOW + 10, now=NOW)
    with pytest.raises(ReplayedError):
        cache.check_and_add(("l", "n"), expires_at=NOW + 10, now=NOW + 9)
    cache.check_and_add(("l", "other"), expires_at=NOW + 20, now=NOW + 10)
    assert len(cache) == 1


def test_the_replay_cache_stays_bounded_and_never_lets_a_replay_through() -> None:
    cache = ReplayCache(max_entries=3)
    for i in range(10):
        cache.check_and_add(("l", f"n{i}"), expires_at=NOW + 100 + i, now=NOW)
        assert len(cache) <= 3
    # Every nonce ever accepted is still refused: evicted ones by the raised floor.
    for i in range(10):
        with pytest.raises(ReplayedError):
            cache.check_and_add(("l", f"n{i}"), expires_at=NOW + 100 + i, now=NOW)
    # A fresh order expiring after the floor still gets in.
    cache.check_and_add(("l", "fresh"), expires_at=NOW + 200, now=NOW)


def test_an_order_verifier_with_a_small_replay_cache_still_refuses_replays(sale: Sale) -> None:
    verifier = OrderVerifier(
        keyring=sale.ring, peer_id=SERVING_PEER, replay_cache=ReplayCache(max_entries=2)
    )
    tokens = [order(sale, issued_at=NOW - 50 + i) for i in range(5)]
    for token in tokens:
        verify(verifier, sale, token)
    for token in tokens:
        with pytest.raises(ReplayedError):
            verify(verifier, sale, token)
