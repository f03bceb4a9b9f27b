"""Two members chat in a room in real browsers (Debian's chromium), through the static
client (exchange/rooms/static/rooms/room.js) and a real ASGI server (uvicorn on
loopback, the in-memory channel layer of the embedded demo, one process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_portal import STEP_MS, People
from tests.support.platform import Platform, platform

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def site(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("rooms-browser"), asgi=True) as running:
        yield running


@pytest.fixture(scope="module")
def people(site: Platform, chromium: Browser) -> People:
    return People(site, chromium)


def _live(page: Page) -> None:
    page.locator("#room-say").wait_for(state="visible")


def test_two_members_chat_in_a_work_room(site: Platform, people: People,
                                         screenshots: Path) -> None:
    work_id = site.query(
        "import json; from exchange.catalogue.models import Work; "
        "print(json.dumps(str(Work.objects.get(title='Harbour at dawn').pk)))")
    path = f"/rooms/work/{work_id}/"
    with people.page("bob") as bob, people.page("carol") as carol:
        people.go(bob, path)
        people.go(carol, path)
        _live(bob)
        _live(carol)
        bob.fill("#room-text", "안녕하세요, is the harbour print in A3? <b>bold?</b>")
        bob.click("#room-say button[type=submit]")
        line = carol.locator("#room-lines li", has_text="is the harbour print in A3?")
        line.wait_for(timeout=STEP_MS)
        assert line.locator(".author").inner_text() == "bob"
        # shown as typed, never as markup
        assert line.locator(".text").inner_text() == \
            "안녕하세요, is the harbour print in A3? <b>bold?</b>"
        assert carol.locator("#room-lines b").count() == 0
        assert bob.input_value("#room-text") == ""  # acknowledged
        carol.fill("#room-text", "Ask Rita — she moderates here.")
        carol.press("#room-text", "Enter")
        bob.locator("#room-lines li", has_text="she moderates here").wait_for(timeout=STEP_MS)
        assert carol.locator("#room-status").inner_text() == "Live"
        carol.screenshot(path=screenshots / "room-chat.png", full_page=True)
        # Rita moderates her work's room: she removes Carol, whose page says so at once
        with people.page("rita") as rita:
            people.go(rita, path)
            _live(rita)
            carols_line = rita.locator("#room-lines li", has_text="she moderates here")
            carols_line.get_by_role("button", name="Kick 60 min").click()
            carol.locator("#room-say").wait_for(state="hidden", timeout=STEP_MS)
            assert "removed from this room" in carol.locator("#room-status").inner_text()
            bob.locator("#room-lines li.notice", has_text="carol was removed.").wait_for(
                timeout=STEP_MS)
    # the lines were stored: a visitor without JavaScript reads them on the page
    with people.page() as visitor:
        visitor.context.set_extra_http_headers({})
        people.go(visitor, path)
        text = visitor.locator("#room-lines").inner_text()
        assert "is the harbour print in A3?" in text
        assert "she moderates here" in text
