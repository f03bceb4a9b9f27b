"""The package boundaries in pyproject.toml hold, and a deliberate breach of each fails.

`lint-imports` runs in scripts/test on the real tree; here it also runs on a copy with one
bad import per contract, to show the contracts are not vacuous.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("exchange", "licensing", "watermark", "agent", "compute", "peerindex")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

BREACHES = {
    # file in the copy -> (its text, added at its end, and the contract it breaks)
    "watermark/breach.py": ("import django\n",
                            "The pure packages import no Django and nothing of the platform"),
    "agent/breach.py": ("from exchange.ledger import services\n",
                        "The pure packages import no Django and nothing of the platform"),
    "compute/breach.py": ("from exchange.ledger import services\n",
                          "The pure packages import no Django and nothing of the platform"),
    "peerindex/breach.py": ("from exchange.peers import models\n",
                            "The pure packages import no Django and nothing of the platform"),
    "exchange/peers/breach.py": ("from peerindex.link import Link\n",
                                 "The platform reaches the index only through its store"),
    "agent/breach_index.py": ("from peerindex import credentials\n",
                              "Agents speak to the index over HTTP only"),
    "exchange/tracing/breach.py": ("from agent import deliver\n",
                                   "The platform never imports the desktop agent"),
    "exchange/core/breach.py": ("from exchange.ledger import selectors\n",
                                "The bottom package imports no app"),
    "exchange/ledger/breach.py": ("from exchange.purchases import api_views\n",
                                  "Apps do not import each other's views"),
    "exchange/payments/serializers.py": (
        "from exchange.payments.providers.testpay.provider import OPTIONS\n",
        "Only the payment provider registry imports the test provider"),
    "exchange/portal/breach.py": ("from exchange.payments.providers.testpay import tasks\n",
                                  "Only the payment provider registry imports the test provider"),
}


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_real_tree_keeps_every_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("breach", BREACHES)
def test_a_deliberate_breach_is_caught(tmp_path: Path, breach: str) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "migrations", "static"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    text, contract = BREACHES[breach]
    target = tmp_path / breach
    target.write_text((target.read_text() if target.exists() else "") + text)

    result = _lint(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout
