"""Device slots under concurrency, on PostgreSQL: real threads, real row locks."""

from __future__ import annotations

from collections import Counter

import pytest

from exchange.catalogue.models import Work
from exchange.licensing.models import Licence
from exchange.purchases.services import purchase_create
from tests.support.races import race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_reissues_never_pass_the_device_limit(rita, bob, make_work, fund,
                                                         device_of, api) -> None:
    work = make_work(rita, price_minor=1000)
    Work.objects.filter(pk=work.pk).update(device_limit=2)
    fund(bob, 5000)
    _keys, laptop = device_of(bob, "laptop")
    others = [device_of(bob, f"device {n}")[1] for n in range(4)]
    licence = purchase_create(buyer=bob, work_id=work.pk, device_id=laptop.device_id).licence
    assert licence is not None
    clients = [api(bob) for _ in others]

    def reissue(index: int) -> int:
        return int(clients[index].post(
            f"/api/v1/licences/{licence.pk}/devices/", {"device": others[index].device_id},
            format="json", HTTP_IDEMPOTENCY_KEY=f"re-{index}").status_code)

    statuses = Counter(race(len(others), reissue))
    assert statuses == {201: 1, 409: 3}, statuses
    assert Licence.objects.filter(buyer=bob, revoked_at__isnull=True).count() == 2


def test_two_moves_of_one_licence_at_once_move_it_once(rita, bob, make_work, fund,
                                                       device_of, api) -> None:
    work = make_work(rita, price_minor=1000)
    fund(bob, 5000)
    _keys, laptop = device_of(bob, "laptop")
    targets = [device_of(bob, f"device {n}")[1] for n in range(2)]
    licence = purchase_create(buyer=bob, work_id=work.pk, device_id=laptop.device_id).licence
    assert licence is not None
    clients = [api(bob) for _ in targets]

    def move(index: int) -> int:
        return int(clients[index].post(
            f"/api/v1/licences/{licence.pk}/move/", {"to_device": targets[index].device_id},
            format="json", HTTP_IDEMPOTENCY_KEY=f"mv-{index}").status_code)

    statuses = Counter(race(2, move))
    assert statuses == {201: 1, 409: 1}, statuses
    live = Licence.objects.filter(buyer=bob, revoked_at__isnull=True)
    assert live.count() == 1
    assert live.get().device_id in {t.device_id for t in targets}
