"""Metering and settlement end to end: real platform on PostgreSQL, real Celery worker and
beat on Redis, real agents. After a sale served by three peers, the ledger pays exactly
the royalty, fee and per-peer credit implied by the bytes each peer served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exchange.catalogue.management.commands.demo_data import DEMO_FUNDS
from exchange.money.splits import sale_split
from tests.e2e.test_sale import _register, _seed
from tests.support.agents import AgentProcess
from tests.support.platform import Platform, platform
from tests.support.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

PRICE = 2000


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platform(tmp_path_factory.mktemp("settle"), celery=True,
                  extra_env={"PEERMARK_METERING_GRACE_SECONDS": "12"}) as running:
        yield running


def _ledger(site: Platform) -> dict[str, Any]:
    return dict(site.query(
        "import json\n"
        "from django.db.models import Sum\n"
        "from exchange.ledger.models import Account, Posting, JournalEntry\n"
        "balances = {f'{a.kind}:{a.owner.username if a.owner else \"platform\"}:{a.currency}'"
        " + (f':{a.reference}' if a.reference else ''): "
        "a.balance for a in Account.objects.select_related('owner') if a.guarded}\n"
        # the fees of sales (the demo's compute job pays the platform a fee of its own)
        "fees = Posting.objects.filter(account__kind='fees', entry__kind='settlement')"
        ".aggregate(t=Sum('amount'))['t']\n"
        "total = Posting.objects.aggregate(t=Sum('amount'))['t']\n"
        "unbalanced = [e.pk for e in JournalEntry.objects.all() "
        "if sum(e.postings.values_list('amount', flat=True)) != 0]\n"
        "print(json.dumps({'balances': balances, 'fees': fees, 'total': total, "
        "'unbalanced': unbalanced}))"
    ))


def test_a_sale_served_by_three_peers_settles_exactly(site: Platform, tmp_path: Path) -> None:
    work = _register(site, "Metered noise", width=1200, height=900, price_minor=PRICE)
    count = -(-httpx.get(f"{site.url}/api/v1/works/{work['id']}/").json()["size_bytes"]
              // (256 * 1024))
    people = {"carol": "p1", "admin": "p2", "rita": "p3"}
    seeders = {user: AgentProcess(tmp_path, name, site.url) for user, name in people.items()}
    devices = {user: agent.setup(user, site.logins[user]) for user, agent in seeders.items()}
    third = count // 3
    _seed(seeders["carol"], site, work["id"], set(range(third)))
    _seed(seeders["admin"], site, work["id"], set(range(third, 2 * third)))
    _seed(seeders["rita"], site, work["id"], set(range(2 * third, count)))
    buyer = AgentProcess(tmp_path, "bob", site.url)
    buyer.setup("bob", site.logins["bob"])
    buyer.run("wallet", "--topup", "10000", "EUR")
    # The demo's own top-up and this one, less what Bob's demo render job cost him.
    with site.api("bob") as api:
        jobs = api.get("/api/v1/compute/jobs/").json()["results"]
    spent = sum(job["budget_minor"] - job["refunded_minor"] for job in jobs
                if job["currency"] == "EUR" and job["state"] != "running")
    assert len(jobs) == sum(job["state"] != "running" for job in jobs)
    funds = 10000 + dict(DEMO_FUNDS)["EUR"] - spent
    wait_until(lambda: any(b["kind"] == "wallet" and b["currency"] == "EUR"
                           and b["balance_minor"] == funds
                           for b in buyer.run("wallet")["balances"]),
               timeout=60, what="the top-up webhook (sent by the worker) to credit the wallet",
               log=site.logs / "worker.log")

    with seeders["carol"].serving(), seeders["admin"].serving(), seeders["rita"].serving():
        result = buyer.run("get", work["id"])
        assert result["receipt"] == "sent"
        served_by_device = result["served"]
        assert set(served_by_device) == set(devices.values())
        with site.api("bob") as bob:
            purchase = bob.get("/api/v1/purchases/").json()["results"][0]
            wait_until(lambda: bob.get(f"/api/v1/purchases/{purchase['id']}/").json()["state"]
                       == "settled", timeout=90, what="the beat and worker to settle the sale",
                       log=site.logs / "worker.log")

    user_of = {device: user for user, device in devices.items()}
    served = {user_of[device]: count for device, count in served_by_device.items()}
    size = int(site.query(
        "import json\nfrom exchange.licensing.models import WorkPackage\n"
        f"print(json.dumps(WorkPackage.objects.get(work_id='{work['id']}').ciphertext_size))"))
    ids = site.query("import json\nfrom exchange.accounts.models import User\n"
                     "print(json.dumps({u.username: u.pk for u in User.objects.all()}))")
    expected = sale_split(PRICE, fee_bps=1000, seeding_bps=1000,
                          peer_bytes={ids[u]: b for u, b in served.items()}, size=size)
    ledger = _ledger(site)
    balances = ledger["balances"]
    assert balances["earnings:rita:EUR"] == expected.royalty
    assert ledger["fees"] == expected.fee
    for user in ("carol", "admin", "rita"):
        assert balances[f"seeding:{user}:EUR"] == expected.peers[ids[user]], user
    assert balances["escrow:bob:EUR"] == 0
    assert balances["wallet:bob:EUR"] == funds - PRICE
    assert ledger["total"] == 0
    assert ledger["unbalanced"] == []
    review = site.query("import json\nfrom exchange.metering.models import Receipt\n"
                        "print(json.dumps([r.needs_review for r in Receipt.objects.all()]))")
    assert review == [False]  # the receipt agreed with the orders the peers submitted

    # The platform makes the buyer's marked copy itself: the real agent's output, as its
    # receipt reports it, is exactly that copy.
    verdicts = site.query(
        "import json\nfrom exchange.tracing.marking_checks import receipt_marking_check\n"
        "from exchange.metering.models import Receipt\n"
        "print(json.dumps([[r.marked, receipt_marking_check(receipt=r).verdict]"
        " for r in Receipt.objects.all()]))")
    assert verdicts == [[True, "matches"]]
