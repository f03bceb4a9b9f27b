"""The agent's trust store keeps the first of two different revocation lists signed under
one version, and the evidence of both until the platform has it."""

from __future__ import annotations

import json
from pathlib import Path

from agent.trust import EQUIVOCATION_FILE, TrustStore
from tests.licensing.core_support import NOW, Sale


def test_an_equivocating_list_is_refused_and_its_evidence_kept(sale: Sale, tmp_path: Path) -> None:
    trust = TrustStore(tmp_path, clock=lambda: NOW)
    trust.update_keys(json.dumps(sale.ring.to_jwks()).encode())
    first = sale.revocation_list(version=9)
    second = sale.revocation_list(version=9, licences=[sale.licence.licence_id])
    assert trust.offer_revocations(first)
    assert not trust.offer_revocations(second)  # refused, and no error for the caller
    trust.revocations().check_licence(sale.licence)  # the first list is the one in force
    evidence = trust.equivocation()
    assert evidence == {"version": 9, "first": first, "second": second, "reported": False}
    assert (tmp_path / EQUIVOCATION_FILE).stat().st_mode & 0o077 == 0  # owner-only

    trust.equivocation_reported()
    again = TrustStore(tmp_path, clock=lambda: NOW)  # after a restart
    assert again.revocations_version == 9
    assert again.equivocation() == {**evidence, "reported": True}
    third = sale.revocation_list(version=9, devices=["another-device"])
    assert not again.offer_revocations(third)
    assert again.equivocation() == {**evidence, "reported": True}  # the first evidence stays
