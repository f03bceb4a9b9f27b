"""The agent's command line against a live platform: what a user types, what they see,
and clear errors for what goes wrong."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _agent(home: Path, capsys: pytest.CaptureFixture[str], *args: str,
           stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None
           ) -> tuple[int, Any, str]:
    if stdin is not None and monkeypatch is not None:
        import io

        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--data-dir", str(home), "--json", *args])
    out, err = capsys.readouterr()
    try:
        data = json.loads(out) if out.strip() else None
    except ValueError:
        data = out
    return code, data, err


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "agent"


def test_init_makes_owner_only_keys_and_config(live_server, home, capsys) -> None:
    code, data, _ = _agent(home, capsys, "init", "--platform", live_server.url)
    assert code == 0
    assert data["created"] is True
    assert stat.S_IMODE((home / "device.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "config.json").stat().st_mode) == 0o600
    code, again, _ = _agent(home, capsys, "init")
    assert again["device_id"] == data["device_id"]
    assert again["created"] is False


def test_login_registers_the_device_and_a_wrong_password_is_a_clear_error(
    live_server, home, capsys, monkeypatch, bob
) -> None:
    _agent(home, capsys, "init", "--platform", live_server.url)
    code, _, err = _agent(home, capsys, "login", "--username", "bob", "--password-stdin",
                          stdin="wrong\n", monkeypatch=monkeypatch)
    assert code == 1
    assert "Wrong username or password" in err
    code, _, _ = _agent(home, capsys, "login", "--username", "bob", "--password-stdin",
                        stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
    assert code == 0
    assert bob.devices.count() == 1
    code, status, _ = _agent(home, capsys, "status")
    assert status["logged_in_as"] == "bob"
    assert status["platform_reachable"] is True


def test_a_first_login_without_init_makes_and_registers_the_device(
    live_server, home, capsys, monkeypatch, bob
) -> None:
    code, data, _ = _agent(home, capsys, "login", "--platform", live_server.url, "--username",
                           "bob", "--password-stdin", stdin=PASSWORD + "\n",
                           monkeypatch=monkeypatch)
    assert code == 0
    assert data["device_created"] is True
    assert stat.S_IMODE((home / "device.key").stat().st_mode) == 0o600
    assert list(bob.devices.values_list("device_id", flat=True)) == [data["device_id"]]
    code, again, _ = _agent(home, capsys, "login", "--username", "bob", "--password-stdin",
                            stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
    assert (again["device_created"], again["device_id"]) == (False, data["device_id"])
    assert bob.devices.count() == 1


def test_search_buy_and_the_clear_errors_of_buying(
    live_server, home, capsys, monkeypatch, bob, rita, make_work
) -> None:
    work = make_work(rita, title="Harbour at dawn", price_minor=1250)
    _agent(home, capsys, "init", "--platform", live_server.url)
    _agent(home, capsys, "login", "--username", "bob", "--password-stdin",
           stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
    code, found, _ = _agent(home, capsys, "search", "harbour")
    assert [w["id"] for w in found] == [str(work.pk)]
    code, _, err = _agent(home, capsys, "buy", str(work.pk))
    assert code == 1
    assert "insufficient_funds" in err
    code, _, err = _agent(home, capsys, "buy", "not-a-work")
    assert code == 1
    assert "error" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("wallet", "--topup", "12.50", "EUR"), "whole number of minor units"),
        (("get", "00000000-0000-0000-0000-000000000000", "--no-buy"), "no licence"),
        (("buy", "00000000-0000-0000-0000-000000000000"), "Not logged in"),
        (("view", "00000000-0000-0000-0000-000000000000"), "no licence for this work"),
    ],
)
def test_commands_say_what_is_wrong(live_server, home, capsys, args, message) -> None:
    _agent(home, capsys, "init", "--platform", live_server.url)
    code, _, err = _agent(home, capsys, *args)
    assert code == 1
    assert message in err


def test_a_command_before_init_says_to_run_init(home, capsys) -> None:
    code, _, err = _agent(home, capsys, "get", "00000000-0000-0000-0000-000000000000")
    assert code == 1
    assert "init" in err


def test_a_damaged_config_is_a_clear_error(home, capsys) -> None:
    home.mkdir(parents=True)
    (home / "config.json").write_text("{not json")
    code, _, err = _agent(home, capsys, "status")
    assert code == 1
    assert "config.json" in err


def test_an_unreachable_platform_is_a_clear_error(home, capsys, monkeypatch) -> None:
    _agent(home, capsys, "init", "--platform", "http://127.0.0.1:9")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("pw\n"))
    code, _, err = _agent(home, capsys, "login", "--username", "bob", "--password-stdin")
    assert code == 1
    assert "cannot reach the platform" in err


def test_a_bad_rate_is_refused_by_the_parser(home, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(home), "get", "x", "--limit-rate", "fast"])
    assert exit_info.value.code == 2
    assert "not a rate" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["init", "--port", "99999"], "a port is 0 to 65535"),
    (["serve", "--port", "http"], "not a port number"),
    (["get", "x", "--limit-rate", "inf"], "not a rate"),
    (["get", "x", "--limit-rate", "1e400"], "not a rate"),
])
def test_ports_and_rates_out_of_range_are_refused_by_the_parser(home, capsys, args,
                                                                message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(home), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_login_with_an_issued_token_file_registers_the_device(live_server, home, capsys,
                                                               tmp_path) -> None:
    from django.core.management import call_command

    from exchange.licensing.models import Device

    token_file = tmp_path / "platform-token"
    call_command("seed_agent_setup", token_file=token_file)
    capsys.readouterr()

    code, data, _ = _agent(home, capsys, "login", "--platform", live_server.url,
                           "--token-file", str(token_file))
    assert code == 0
    assert (data["username"], data["device_created"]) == ("platform-seeder", True)
    code, _, _ = _agent(home, capsys, "init", "--port", "7710")

    assert code == 0
    assert Device.objects.filter(user__username="platform-seeder").count() == 1
    assert json.loads((home / "config.json").read_text())["listen_port"] == 7710


def test_a_replaced_seed_token_is_taken_before_the_old_one_is_used(live_server, home, capsys,
                                                                   tmp_path) -> None:
    # As scripts/run does at every start: the platform's half, then login, then init.
    from django.core.management import call_command
    from django.utils import timezone

    from exchange.accounts.models import ApiToken

    token_file = tmp_path / "platform-token"
    for revoke_first in (False, True):
        if revoke_first:  # the operator revoked the seed agent's token since
            ApiToken.objects.update(revoked_at=timezone.now())
        call_command("seed_agent_setup", token_file=token_file)
        assert _agent(home, capsys, "login", "--platform", live_server.url,
                      "--token-file", str(token_file))[0] == 0
        assert _agent(home, capsys, "init", "--port", "7710")[0] == 0
    assert json.loads((home / "config.json").read_text())["token"] == (
        token_file.read_text().strip())


@pytest.mark.parametrize("content", ["", "two words\n", None])
def test_a_bad_token_file_is_a_clear_error(live_server, home, capsys, tmp_path,
                                           content: str | None) -> None:
    _agent(home, capsys, "init", "--platform", live_server.url)
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)

    code, _, err = _agent(home, capsys, "login", "--token-file", str(token_file))

    assert code != 0
    assert "token file" in err or "does not hold an API token" in err


def test_a_top_up_confirmed_at_once_is_shown_credited_not_pending(
    live_server, home, capsys, monkeypatch, bob
) -> None:
    # The embedded test provider confirms inside the request's commit, after the answer
    # was serialized as "pending": the agent reads the state again after the balance.
    _agent(home, capsys, "init", "--platform", live_server.url)
    _agent(home, capsys, "login", "--username", "bob", "--password-stdin",
           stdin=PASSWORD + "\n", monkeypatch=monkeypatch)
    assert main(["--data-dir", str(home), "wallet", "--topup", "2500", "eur"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Top-up of €25.00 credited.",
        "ACCOUNT  CURRENCY  BALANCE",
        "wallet   EUR        €25.00",
    ]
    code, wallet, _ = _agent(home, capsys, "wallet")
    assert code == 0
    assert wallet["pending_topups"] == []
    assert [(b["kind"], b["balance_minor"]) for b in wallet["balances"]] == [("wallet", 2500)]


def test_search_shows_the_licence_terms_the_catalogue_gives(
    live_server, home, capsys, rita, make_work
) -> None:
    work = make_work(rita, title="Harbour at dawn", price_minor=1250)
    _agent(home, capsys, "init", "--platform", live_server.url)
    assert main(["--data-dir", str(home), "search", "harbour"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["WORK", "PRICE", "USES", "LICENCE", "FOR", "SIZE", "TITLE"]
    assert row.startswith(f"{work.pk}  €12.50  ")
    assert f"  {', '.join(work.allowed_uses)}  {work.licence_days} days  " in row
