"""The published OpenAPI schema tells the truth: schemathesis fuzzes the live API with it.

A real platform (gunicorn, migrated, the demo data) is fuzzed from its own
``/api/v1/schema/`` as each demo role (a buyer, a rights holder, the admin) and
anonymously, with every check schemathesis has: no server error; only documented
statuses, content types and headers; bodies that match their schemas; input the schema
forbids refused, and input it allows not refused without a documented reason (the
settings are in ``schemathesis.toml`` beside this file). Money moves for real, in the
platform's own throwaway database.

Bounded (cases per operation, a time budget per role) and deterministic, so a failure in
CI comes back the same on a laptop. A failure shows schemathesis's report, with a curl
command that reproduces each finding.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.platform import Platform, platform
from tests.support.processes import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")
#: generated cases per operation in the fuzzing phase (the coverage phase adds its own
#: boundary cases, the stateful phase its sequences)
CASES_PER_OPERATION = 5
#: seconds one role's run may take; at the end it is stopped and judged on what it did
ROLE_BUDGET = 90

LOGIN = "POST /api/v1/auth/tokens/"
REVOKE_TOKEN = "DELETE /api/v1/auth/tokens/{token_id}/"

#: the demo's roles (exchange/catalogue/management/commands/demo_data.py), and nobody:
#: the phases of schemathesis each runs, and the operations each leaves to another run.
#: The coverage phase (every boundary and every wrong type of every input, some 1,500
#: cases) runs once, as the rights holder, who reaches the most; the others fuzz. Logging
#: in is anonymous, and every try hashes a password (slow by design), so only the
#: anonymous run tries it; revoking tokens may revoke the run's own, so it runs last.
RUNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "anonymous": ("fuzzing,stateful", (REVOKE_TOKEN,)),
    "bob": ("fuzzing,stateful", (LOGIN, REVOKE_TOKEN)),
    "rita": ("coverage,fuzzing,stateful", (LOGIN, REVOKE_TOKEN)),
    "admin": ("fuzzing,stateful", (LOGIN, REVOKE_TOKEN)),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def _fuzz(site: Platform, report: Path, who: str, *, phases: str,
          exclude: tuple[str, ...] = (), include: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run schemathesis against ``site`` as ``who``; its JSON report when it found nothing."""
    args = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
            f"{site.url}/api/v1/schema/?format=json", "--no-color", "--workers", "1",
            "--phases", phases, "--max-examples", str(CASES_PER_OPERATION),
            "--report", "json", "--report-json-path", str(report)]
    if who != "anonymous":
        with site.api(who) as client:
            args += ["--header", f"Authorization: {client.headers['Authorization']}"]
    for name in exclude:
        args += ["--exclude-name", name]
    for name in include:
        args += ["--include-name", name]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=ROLE_BUDGET)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # schemathesis stops and reports what it did
        output, _ = process.communicate(timeout=60)
        warnings.warn(f"the fuzzing budget of {ROLE_BUDGET} s ran out for {who}: the "
                      "operations it had not reached were not fuzzed", stacklevel=2)
    assert report.exists(), output[-10_000:]
    result: dict[str, Any] = json.loads(report.read_text())
    found = result["test_cases"]["with_failures"] or result["errors"] or result["failures"]
    assert not found, output[-30_000:]
    assert result["test_cases"]["generated"] > 0, output[-10_000:]
    return result


@pytest.mark.parametrize("who", list(RUNS))
def test_the_api_answers_as_its_schema_says(site: Platform, tmp_path: Path, who: str) -> None:
    phases, leave_out = RUNS[who]
    _fuzz(site, tmp_path / "report.json", who, phases=phases, exclude=leave_out)


def test_revoking_tokens_answers_as_the_schema_says(site: Platform, tmp_path: Path) -> None:
    _fuzz(site, tmp_path / "report.json", "bob", phases="coverage,fuzzing",
          include=(REVOKE_TOKEN,))
