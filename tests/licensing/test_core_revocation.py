"""The revocation list: signed, versioned, fresh; the store refuses rollback and freeze."""

from __future__ import annotations

from typing import Any

import pytest

from licensing.core import (
    BadSignatureError,
    EquivocationError,
    ExpiredError,
    MalformedError,
    MismatchError,
    RevocationStore,
    RevokedError,
    RollbackError,
    read_revocation_list,
)
from licensing.core.revocation import equivocating_pair

from .core_support import DAY, NOW, Sale, build_sale


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return build_sale(tmp_path_factory.mktemp("revocation"), master_size=70_000)


def test_a_revocation_list_names_licences_and_devices_by_id(sale: Sale) -> None:
    token = sale.revocation_list(version=3, licences=["licence-bob-1", "l-2"], devices=["d-1"])
    revocations = read_revocation_list(token, keyring=sale.agent_ring, now=NOW)
    assert revocations.version == 3
    assert revocations.is_licence_revoked("licence-bob-1")
    assert revocations.is_device_revoked("d-1")
    assert not revocations.is_device_revoked(sale.bob.device_id)
    with pytest.raises(RevokedError):
        revocations.check_licence(sale.licence)


def test_a_device_revocation_revokes_its_licences(sale: Sale) -> None:
    token = sale.revocation_list(devices=[sale.bob.device_id])
    with pytest.raises(RevokedError):
        read_revocation_list(token, keyring=sale.ring, now=NOW).check_licence(sale.licence)


def test_the_store_takes_newer_lists_and_keeps_its_own_on_an_equal_version(sale: Sale) -> None:
    store = RevocationStore()
    first = sale.revocation_list(version=1)
    assert store.offer(first, keyring=sale.ring, now=NOW)
    assert store.token == first
    assert not store.offer(first, keyring=sale.ring, now=NOW)  # fetched again: kept
    same_content = sale.revocation_list(version=1, issued_at=NOW - 30)
    assert not store.offer(same_content, keyring=sale.ring, now=NOW)
    assert store.token == first
    newer = sale.revocation_list(version=2, licences=["licence-bob-1"])
    assert store.offer(newer, keyring=sale.ring, now=NOW)
    assert store.current(now=NOW).is_licence_revoked("licence-bob-1")
    assert store.version == 2


def test_a_different_list_under_the_held_version_is_equivocation(sale: Sale) -> None:
    store = RevocationStore()
    first = sale.revocation_list(version=4)
    store.offer(first, keyring=sale.ring, now=NOW)
    second = sale.revocation_list(version=4, licences=["licence-bob-1"])
    with pytest.raises(EquivocationError, match="version 4") as raised:
        store.offer(second, keyring=sale.ring, now=NOW)
    assert (raised.value.first, raised.value.second) == (first, second)  # the evidence
    assert store.token == first  # the first is kept
    assert not store.current(now=NOW).is_licence_revoked("licence-bob-1")


def test_a_pair_of_lists_proves_an_equivocation_only_if_it_is_one(sale: Sale) -> None:
    first = sale.revocation_list(version=5)
    second = sale.revocation_list(version=5, devices=["d-9"])
    assert equivocating_pair(first, second, keyring=sale.agent_ring) == 5
    # evidence stays evidence after the lists expire
    old = sale.revocation_list(version=6, issued_at=NOW - 30 * DAY, next_update=NOW - 29 * DAY)
    old_other = sale.revocation_list(version=6, issued_at=NOW - 30 * DAY,
                                     next_update=NOW - 29 * DAY, licences=["l-1"])
    assert equivocating_pair(old, old_other, keyring=sale.agent_ring) == 6
    with pytest.raises(MismatchError, match="same licences"):
        equivocating_pair(first, sale.revocation_list(version=5, issued_at=NOW - 5),
                          keyring=sale.agent_ring)
    with pytest.raises(MismatchError, match="different versions"):
        equivocating_pair(first, sale.revocation_list(version=7, devices=["d-9"]),
                          keyring=sale.agent_ring)
    head, payload, _ = second.split(".")
    with pytest.raises(BadSignatureError):
        equivocating_pair(first, f"{head}.{payload}.{'A' * 86}", keyring=sale.agent_ring)


def test_the_store_refuses_a_rollback(sale: Sale) -> None:
    store = RevocationStore()
    store.offer(sale.revocation_list(version=5), keyring=sale.ring, now=NOW)
    with pytest.raises(RollbackError):
        store.offer(sale.revocation_list(version=4), keyring=sale.ring, now=NOW)
    assert store.version == 5


def test_a_persisted_floor_refuses_a_rollback_after_a_restart(sale: Sale) -> None:
    store = RevocationStore(min_version=5)
    with pytest.raises(RollbackError):
        store.offer(sale.revocation_list(version=4), keyring=sale.ring, now=NOW)
    assert store.offer(sale.revocation_list(version=5), keyring=sale.ring, now=NOW)


def test_the_store_refuses_a_frozen_list(sale: Sale) -> None:
    stale = sale.revocation_list(version=9, issued_at=NOW - 2 * DAY, next_update=NOW - DAY)
    store = RevocationStore()
    with pytest.raises(ExpiredError):
        store.offer(stale, keyring=sale.ring, now=NOW)
    assert store.version == 0


def test_a_held_list_past_its_next_update_is_no_longer_served(sale: Sale) -> None:
    store = RevocationStore()
    store.offer(sale.revocation_list(next_update=NOW + 3600), keyring=sale.ring, now=NOW)
    assert store.current(now=NOW + 3600).version == 1
    with pytest.raises(ExpiredError):
        store.current(now=NOW + 3600 + 61)
    with pytest.raises(ExpiredError):
        RevocationStore().current(now=NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 0},
        {"next_update": NOW - 60},
        {"licences": ["has space"]},
        {"devices": [""]},
    ],
)
def test_a_malformed_revocation_list_is_not_signed(sale: Sale, changes: dict[str, Any]) -> None:
    with pytest.raises(MalformedError):
        sale.revocation_list(**changes)
