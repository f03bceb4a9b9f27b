"""One real browser for the portal's tests: Debian's chromium, driven by Playwright.

Nothing is downloaded: Playwright (pinned in requirements-dev.txt) drives the chromium
that Debian packages, which `.ci/run` installs where it is missing. Without either, these
tests are skipped with the reason, except in CI (CI=true), where that is a failure.

Screenshots (full pages, PNG) go to the folder PEERMARK_SCREENSHOTS names, else to a
temporary folder of pytest's; the run's summary says where.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import _skip_or_fail

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")

# Headless, and quiet: this machine's closed network refuses the connections a browser
# makes by itself (updates, sync, QUIC probes), which would otherwise stall or log.
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

_written_to: list[Path] = []


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, for the whole module (one browser, many contexts)."""
    if not CHROMIUM.exists():
        _skip_or_fail(f"needs Debian's chromium at {CHROMIUM}: "
                      "apt-get install -y --no-install-recommends chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("needs Playwright: .venv/bin/pip install -r requirements-dev.txt")
        raise  # not reached: the line above skips or fails
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS, timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save their screenshots: $PEERMARK_SCREENSHOTS or a temporary folder."""
    named = os.environ.get("PEERMARK_SCREENSHOTS", "").strip()
    folder = Path(named).resolve() if named else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    if folder not in _written_to:
        _written_to.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for folder in _written_to:
        shots = sorted(path.name for path in folder.glob("*.png"))
        terminalreporter.write_line(
            f"Browser screenshots in {folder}: {', '.join(shots) or 'none'}")
