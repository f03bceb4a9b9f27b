"""What `search` and `wallet` print, where the global options may go, `share` as the
old name of `serve`, and a data folder that is a file: against a written-down
platform (tests/agent/fake_platform.py), no server, no database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.cli import build_parser, main
from tests.agent.fake_platform import FakePlatform, logged_in_home, page

WORKS = [
    {"id": "w1", "title": "Harbour at dawn", "description": "", "media_type": "image",
     "content_type": "image/jpeg", "owner": "rita",
     "price": {"amount_minor": 1250, "currency": "EUR", "display": "€12.50"},
     "terms": {"allowed_uses": ["view", "download"], "licence_days": 365,
               "byte_allowance_multiple": 2, "byte_allowance": 4_823_448},
     "status": "ready", "size_bytes": 2_411_724, "preview_url": None,
     "created_at": "2030-01-01T00:00:00Z", "updated_at": "2030-01-01T00:00:00Z"},
    {"id": "w22", "title": "Night tram", "description": "", "media_type": "audio",
     "content_type": "audio/mpeg", "owner": "carol",
     "price": {"amount_minor": 3000, "currency": "KRW", "display": "₩3,000"},
     "terms": {"allowed_uses": ["stream"], "licence_days": 1,
               "byte_allowance_multiple": 1, "byte_allowance": 900},
     "status": "ready", "size_bytes": 900, "preview_url": None,
     "created_at": "2030-01-01T00:00:00Z", "updated_at": "2030-01-01T00:00:00Z"},
]


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch) -> FakePlatform:
    fake = FakePlatform()
    fake.install(monkeypatch)
    return fake


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "agent"
    logged_in_home(folder)
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# --- search ---------------------------------------------------------------------------------


def test_search_prints_a_header_and_each_work_s_licence_terms(platform, home, capsys) -> None:
    platform.on("GET", "/api/v1/works/", page(WORKS))
    code, out, _ = run(capsys, "--data-dir", str(home), "search", "harbour")
    assert code == 0
    assert out.splitlines() == [
        "WORK   PRICE  USES            LICENCE FOR     SIZE  TITLE",
        "w1    €12.50  view, download  365 days     2.3 MiB  Harbour at dawn (rita, image)",
        "w22   ₩3,000  stream          1 day          900 B  Night tram (carol, audio)",
    ]
    assert platform.requests[0].url.params["search"] == "harbour"


def test_search_with_no_results_says_so(platform, home, capsys) -> None:
    platform.on("GET", "/api/v1/works/", page([]))
    assert run(capsys, "--data-dir", str(home), "search", "nothing")[1] == "No works found.\n"


# --- global options -------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["--json", "--data-dir", "{home}", "search", "harbour"],
    ["search", "harbour", "--json", "--data-dir", "{home}"],
    ["--data-dir", "{home}", "search", "--json", "harbour"],
    ["--json", "search", "harbour", "--data-dir", "{home}"],
])
def test_global_options_go_before_or_after_the_command(platform, home, capsys,
                                                       args: list[str]) -> None:
    platform.on("GET", "/api/v1/works/", page(WORKS))
    code, out, _ = run(capsys, *[a.replace("{home}", str(home)) for a in args])
    assert code == 0
    assert [w["id"] for w in json.loads(out)] == ["w1", "w22"]


@pytest.mark.parametrize(("args", "data_dir", "as_json"), [
    (["status"], None, False),
    (["--json", "status"], None, True),
    (["status", "--json"], None, True),
    (["--data-dir", "/a", "status"], Path("/a"), False),
    (["status", "--data-dir", "/a"], Path("/a"), False),
    (["--data-dir", "/a", "status", "--data-dir", "/b"], Path("/b"), False),
])
def test_the_parser_takes_global_options_in_either_place(args: list[str], data_dir: Path | None,
                                                         as_json: bool) -> None:
    parsed = build_parser().parse_args(args)
    assert (parsed.data_dir, parsed.json) == (data_dir, as_json)


# --- serve / share ----------------------------------------------------------------------------


def test_share_is_the_old_name_of_serve_and_help_shows_one_command() -> None:
    parser = build_parser()
    listing = [line for line in parser.format_help().splitlines() if "share" in line
               and line.startswith("    ")]
    assert len(listing) == 1
    assert listing[0].split()[:2] == ["serve", "(share)"]
    old, new = parser.parse_args(["share", "--port", "7071"]), parser.parse_args(["serve"])
    assert old.handler is new.handler
    assert old.port == 7071


def test_serve_takes_how_often_to_log_its_status_line() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve"]).status_every == 60.0
    assert parser.parse_args(["serve", "--status-every", "5"]).status_every == 5.0
    assert parser.parse_args(["serve", "--status-every", "0"]).status_every == 0.0


@pytest.mark.parametrize("value", ["-1", "often", "nan", "90000", "0.5"])
def test_a_bad_status_interval_is_refused_by_the_parser(capsys, value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["serve", "--status-every", value])
    assert exit_info.value.code == 2
    assert "seconds" in capsys.readouterr().err


# --- a data folder that is a file ---------------------------------------------------------


@pytest.mark.parametrize("before", [True, False])
def test_a_data_dir_that_is_a_file_is_a_usage_error(tmp_path, capsys, before: bool) -> None:
    path = tmp_path / "agent"
    path.write_text("not a folder")
    args = ["--data-dir", str(path), "status"] if before else ["status", "--data-dir", str(path)]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"python -m agent: error: --data-dir {path} is a file, not a folder")
    assert path.read_text() == "not a folder"


def test_a_data_dir_inside_a_file_is_a_usage_error(tmp_path, capsys) -> None:
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["--data-dir", str(path / "agent"), "status"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"python -m agent: error: --data-dir {path / 'agent'} cannot be made: {path} is a "
        "file, not a folder")


def test_a_default_folder_that_is_a_file_names_itself(tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "home"
    path.write_text("")
    monkeypatch.setenv("PEERMARK_AGENT_HOME", str(path))
    with pytest.raises(SystemExit) as exit_info:
        main(["status"])
    assert exit_info.value.code == 2
    assert f"the agent's folder {path} is a file, not a folder" in capsys.readouterr().err


# --- wallet --------------------------------------------------------------------------------

BALANCES = {"balances": [
    {"kind": "earnings", "currency": "KWD", "balance_minor": 12345, "display": "KWD12.345"},
    {"kind": "seeding", "currency": "EUR", "balance_minor": 42, "display": "€0.42"},
    {"kind": "wallet", "currency": "EUR", "balance_minor": 2500, "display": "€25.00"},
]}


def topup(topup_id: str, amount: int, currency: str, state: str, reason: str = ""
          ) -> dict[str, Any]:
    return {"id": topup_id, "amount_minor": amount, "currency": currency, "display": "",
            "state": state, "failure_reason": reason, "created_at": "2030-01-01T00:00:00Z",
            "updated_at": "2030-01-01T00:00:00Z"}


def test_wallet_shows_pending_top_ups_beside_the_balance_not_in_it(platform, home,
                                                                   capsys) -> None:
    platform.on("GET", "/api/v1/wallet/", BALANCES)
    platform.on("GET", "/api/v1/wallet/topups/", page([
        topup("t5", 1000, "EUR", "pending"), topup("t4", 500, "EUR", "processing"),
        topup("t3", 50000, "KRW", "pending"), topup("t2", 700, "EUR", "failed", "declined"),
        topup("t1", 2500, "EUR", "succeeded")]))
    code, out, _ = run(capsys, "--data-dir", str(home), "wallet")
    assert code == 0
    assert out.splitlines() == [
        "ACCOUNT         CURRENCY    BALANCE  PENDING TOP-UPS",
        "wallet          EUR          €25.00           €15.00",
        "wallet          KRW              ₩0          ₩50,000",
        "earnings        KWD       KWD12.345",
        "seeding credit  EUR           €0.42",
        "Pending top-ups are not in the balance: they are credited when the payment "
        "provider confirms.",
    ]


def test_wallet_shows_compute_credit_by_its_name_beside_seeding_credit(platform, home,
                                                                       capsys) -> None:
    # As the platform lists them: by kind, so compute credit comes first there.
    platform.on("GET", "/api/v1/wallet/", {"balances": [
        {"kind": "compute", "currency": "EUR", "balance_minor": 1500, "display": "€15.00"},
        {"kind": "payout_pending", "currency": "EUR", "balance_minor": 1000,
         "display": "€10.00"},
        {"kind": "seeding", "currency": "EUR", "balance_minor": 42, "display": "€0.42"},
        {"kind": "wallet", "currency": "EUR", "balance_minor": 2500, "display": "€25.00"},
    ]})
    platform.on("GET", "/api/v1/wallet/topups/", page([]))
    code, out, _ = run(capsys, "--data-dir", str(home), "wallet")
    assert code == 0
    assert out.splitlines() == [
        "ACCOUNT             CURRENCY  BALANCE",
        "wallet              EUR        €25.00",
        "seeding credit      EUR         €0.42",
        "compute credit      EUR        €15.00",
        "payouts on the way  EUR        €10.00",
    ]


def test_wallet_json_keeps_balances_and_pending_top_ups_apart(platform, home, capsys) -> None:
    platform.on("GET", "/api/v1/wallet/", BALANCES)
    platform.on("GET", "/api/v1/wallet/topups/", page([topup("t1", 1000, "EUR", "pending")]))
    code, out, _ = run(capsys, "--data-dir", str(home), "wallet", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["balances"] == BALANCES["balances"]
    assert data["pending_topups"] == [
        {"currency": "EUR", "amount_minor": 1000, "count": 1, "display": "€10.00"}]


def test_wallet_reads_every_page_of_top_ups(platform, home, capsys) -> None:
    def topups(request: httpx.Request) -> dict[str, Any]:
        if request.url.params.get("page") == "2":
            return page([topup("t1", 300, "EUR", "pending")])
        return page([topup("t2", 200, "EUR", "pending")],
                    next_url="http://platform.test/api/v1/wallet/topups/?page=2")

    platform.on("GET", "/api/v1/wallet/", {"balances": []})
    platform.on("GET", "/api/v1/wallet/topups/", topups)
    data = json.loads(run(capsys, "--data-dir", str(home), "--json", "wallet")[1])
    assert data["pending_topups"][0]["amount_minor"] == 500


def test_an_empty_wallet_says_how_to_top_up(platform, home, capsys) -> None:
    platform.on("GET", "/api/v1/wallet/", {"balances": []})
    platform.on("GET", "/api/v1/wallet/topups/", page([]))
    assert run(capsys, "--data-dir", str(home), "wallet")[1] == (
        "Nothing yet: `wallet --topup 2500 EUR`.\n")


def test_a_top_up_credited_at_once_is_not_called_pending(platform, home, capsys) -> None:
    # The request's answer says "pending", but the provider confirmed right after (the
    # embedded default): the balance read next already holds it.
    platform.on("POST", "/api/v1/wallet/topups/", topup("t9", 1000, "EUR", "pending"))
    platform.on("GET", "/api/v1/wallet/", {"balances": [
        {"kind": "wallet", "currency": "EUR", "balance_minor": 3500, "display": "€35.00"}]})
    platform.on("GET", "/api/v1/wallet/topups/", page([topup("t9", 1000, "EUR", "succeeded")]))
    code, out, _ = run(capsys, "--data-dir", str(home), "wallet", "--topup", "1000", "eur")
    assert code == 0
    assert out.splitlines() == [
        "Top-up of €10.00 credited.",
        "ACCOUNT  CURRENCY  BALANCE",
        "wallet   EUR        €35.00",
    ]
    assert json.loads(platform.requests[0].content) == {"amount_minor": 1000, "currency": "EUR"}
    # The balance is read before the top-ups' states, never after (see cmd_wallet).
    assert platform.paths() == ["POST /api/v1/wallet/topups/", "GET /api/v1/wallet/",
                                "GET /api/v1/wallet/topups/"]


def test_a_top_up_still_pending_is_shown_apart_from_the_balance(platform, home, capsys) -> None:
    platform.on("POST", "/api/v1/wallet/topups/", topup("t9", 1000, "KWD", "pending"))
    platform.on("GET", "/api/v1/wallet/", {"balances": []})
    platform.on("GET", "/api/v1/wallet/topups/", page([topup("t9", 1000, "KWD", "processing")]))
    code, out, _ = run(capsys, "--data-dir", str(home), "wallet", "--topup", "1000", "KWD")
    assert code == 0
    assert out.splitlines() == [
        "Top-up of KWD1.000 requested (processing): it is credited when the payment "
        "provider confirms, and is not in the balance until then.",
        "ACCOUNT  CURRENCY   BALANCE  PENDING TOP-UPS",
        "wallet   KWD       KWD0.000         KWD1.000",
        "Pending top-ups are not in the balance: they are credited when the payment "
        "provider confirms.",
    ]


def test_a_declined_top_up_says_why_and_fails(platform, home, capsys) -> None:
    platform.on("POST", "/api/v1/wallet/topups/", topup("t9", 1000, "EUR", "pending"))
    platform.on("GET", "/api/v1/wallet/", {"balances": []})
    platform.on("GET", "/api/v1/wallet/topups/",
                page([topup("t9", 1000, "EUR", "failed", "The card was declined.")]))
    code, out, _ = run(capsys, "--data-dir", str(home), "wallet", "--topup", "1000", "EUR")
    assert code == 1
    assert out.splitlines()[0] == "Top-up of €10.00 failed: The card was declined."


@pytest.mark.parametrize(("amount", "message"), [
    ("12.50", "whole number of minor units"), ("0", "greater than zero"),
    ("-5", "greater than zero"),
])
def test_a_bad_top_up_amount_is_refused_before_asking_the_platform(
        platform, home, capsys, amount: str, message: str) -> None:
    code, _, err = run(capsys, "--data-dir", str(home), "wallet", "--topup", amount, "EUR")
    assert code == 1
    assert message in err
    assert platform.requests == []
