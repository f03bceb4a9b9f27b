"""``follow`` and the notification lines of ``status``, against a live platform; and
``status`` offline, which must print what it printed before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache

from exchange.community.models import Follow, Notification
from tests.agent.conftest import run_cli

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


def test_follow_list_and_unfollow(bob_home: Path, capsys: Any, rita: Any, rob: Any) -> None:
    code, followed, err = run_cli(bob_home, capsys, "follow", "rita")
    assert code == 0, err
    assert followed["username"] == "rita"
    assert run_cli(bob_home, capsys, "follow", "rita")[0] == 0  # again: no error, one follow
    run_cli(bob_home, capsys, "follow", "rob")
    assert Follow.objects.filter(follower__username="bob").count() == 2
    code, text, _ = run_cli(bob_home, capsys, "follow", "--list", json_out=False)
    assert code == 0
    assert text == "You follow:\n  rob\n  rita\n"
    code, _data, _ = run_cli(bob_home, capsys, "follow", "--remove", "rita")
    assert code == 0
    assert list(Follow.objects.values_list("rights_holder__username", flat=True)) == ["rob"]


@pytest.mark.parametrize(("name", "message"), [
    ("nobody", "No member named nobody."),
    ("bob", "You cannot follow yourself."),
    ("carol", "carol sells no works: only rights holders can be followed."),
])
def test_follow_refusals_are_one_clear_line(bob_home: Path, capsys: Any, carol: Any,
                                            name: str, message: str) -> None:
    code, _data, err = run_cli(bob_home, capsys, "follow", name)
    assert code != 0
    assert message in err
    assert not Follow.objects.exists()


def test_status_shows_unread_notifications_sent_to_the_agent(bob_home: Path, capsys: Any,
                                                             bob: Any) -> None:
    Notification.objects.create(recipient=bob, kind="new_work", title="New from rita: Dawn")
    Notification.objects.create(recipient=bob, kind="message", title="Portal only",
                                in_agent=False)
    Notification.objects.create(recipient=bob, kind="message",
                                title="Sneaky \x1b[2J title")
    code, data, _ = run_cli(bob_home, capsys, "status")
    assert code == 0
    assert data["notifications_unread"] == 2
    assert sorted(n["title"] for n in data["notifications"]) == [
        "New from rita: Dawn", "Sneaky \x1b[2J title"]
    code, text, _ = run_cli(bob_home, capsys, "status", json_out=False)
    assert "notifications: 2 unread" in text
    assert "  New from rita: Dawn · just now [new]" in text
    assert "\x1b" not in text  # another member's text cannot drive the terminal
    assert "Portal only" not in text


def test_status_offline_prints_what_it_did_before(tmp_path: Path, capsys: Any) -> None:
    home = tmp_path / "agent"
    run_cli(home, capsys, "init", "--platform", "http://127.0.0.1:9")  # nothing listens there
    code, data, _ = run_cli(home, capsys, "status")
    assert code == 0
    assert data["platform_reachable"] is False
    assert "notifications_unread" not in data
