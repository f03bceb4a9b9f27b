"""Fixtures of the agent's tests: one packaged sale per test for the peer wire tests (no
Django, no database), and the CLI run in-process against a live server for the command
tests."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.licensing.core_support import Sale, build_sale


@pytest.fixture
def sale(tmp_path: Path) -> Sale:
    """Rita's work (13 pieces of 256 KiB, the last one short), Bob's licence and device."""
    folder = tmp_path / "platform"
    folder.mkdir()
    return build_sale(folder)


def run_cli(home: Path, capsys: pytest.CaptureFixture[str], *args: str,
            json_out: bool = True) -> tuple[int, Any, str]:
    """``peermark-agent --data-dir HOME [--json] ARGS``, in-process: (exit code, what it
    printed (parsed when JSON), stderr)."""
    from agent.cli import main

    code = main(["--data-dir", str(home), *(["--json"] if json_out else []), *args])
    out, err = capsys.readouterr()
    try:
        data = json.loads(out) if json_out and out.strip() else out
    except ValueError:
        data = out
    return code, data, err


@pytest.fixture
def bob_home(live_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch, bob: Any) -> Path:
    """Bob's agent folder: keys made, logged in to the live server."""
    from tests.conftest import PASSWORD

    home = tmp_path / "bob-agent"
    run_cli(home, capsys, "init", "--platform", live_server.url)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, _data, err = run_cli(home, capsys, "login", "--username", "bob",
                               "--password-stdin")
    assert code == 0, err
    return home
