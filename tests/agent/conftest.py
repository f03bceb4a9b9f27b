"""Fixtures of the peer wire tests: one packaged sale per test (no Django, no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.licensing.core_support import Sale, build_sale


@pytest.fixture
def sale(tmp_path: Path) -> Sale:
    """Rita's work (13 pieces of 256 KiB, the last one short), Bob's licence and device."""
    folder = tmp_path / "platform"
    folder.mkdir()
    return build_sale(folder)
