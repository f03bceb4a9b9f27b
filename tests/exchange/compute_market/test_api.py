"""The compute market's API, from the customer's and the contributors' side, and from
an attacker's: other members' jobs, forged, replayed, late and mis-addressed results."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
from collections.abc import Callable
from typing import Any

import pytest
import wasmtime
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from compute.demo import RENDER_WASM
from compute.profile import runtime_profile
from exchange.accounts.models import User
from exchange.compute_market.models import Assignment, AssignmentState, Contributor
from exchange.ledger.models import Account, AccountKind
from licensing.core import ComputeStop, DeviceKeys, sign_compute_result
from tests.exchange.compute_market.support import EMPTY_COMMAND

pytestmark = pytest.mark.django_db(transaction=True)
Client = Any


def _upload(client: Client, wasm: bytes) -> Any:
    return client.post("/api/v1/compute/modules/",
                       {"module": SimpleUploadedFile("job.wasm", wasm)}, format="multipart")


def _job_body(module: str, *, units: int = 2, fuel: int = 10**9, price: int = 100_000,
              currency: str = "EUR", **extra: Any) -> dict[str, Any]:
    return {"name": "api job", "module": module, "currency": currency,
            "price_per_tfuel_minor": price,
            "units": [{"input": base64.b64encode(b"%d" % i).decode(), "fuel": fuel}
                      for i in range(units)], **extra}


def _submit(client: Client, body: dict[str, Any], key: str = "job-1") -> Any:
    return client.post("/api/v1/compute/jobs/", body, format="json",
                       HTTP_IDEMPOTENCY_KEY=key)


@pytest.fixture
def world(api: Callable[[User | None], Client], rob: User, bob: User, carol: User,
          fund: Callable[..., None], device_of: Callable[..., Any]) -> dict[str, Any]:
    fund(rob, 10_000)
    customer = api(rob)
    module = _upload(customer, EMPTY_COMMAND).json()["sha256"]
    job = _submit(customer, _job_body(module)).json()
    found: dict[str, Any] = {"customer": customer, "job": job, "module": module}
    for user in (bob, carol):
        keys, _ = device_of(user)
        client = api(user)
        enrolled = client.post("/api/v1/compute/contributors/", {
            "device": keys.device_id, "runtime": runtime_profile(), "cores": 2,
            "memory_bytes": 512 * 2**20}, format="json")
        assert enrolled.status_code == 200, enrolled.content
        found[user.username] = (client, keys)
    return found


def _dispatch(client: Client, keys: DeviceKeys, key: str, n: int = 10) -> Any:
    return client.post("/api/v1/compute/dispatch/", {"device": keys.device_id, "max_units": n},
                       format="json", HTTP_IDEMPOTENCY_KEY=key)


def _result(keys: DeviceKeys, a: dict[str, Any], output: bytes, *, fuel: int = 5 * 10**8,
            **override: Any) -> dict[str, Any]:
    claims = {"job_id": a["job"], "unit_id": a["unit"],
              "output_sha256": hashlib.sha256(output).digest(), "output_size": len(output),
              "stop": ComputeStop.EXIT, "exit_status": 0, "fuel": fuel,
              "runtime": a["runtime"], "issued_at": int(time.time()), **override}
    return {"assignment": a["assignment"], "token": sign_compute_result(keys, **claims),
            "output": base64.b64encode(output).decode()}


def _send(client: Client, keys: DeviceKeys, results: list[dict[str, Any]]) -> Any:
    return client.post("/api/v1/compute/results/", {"device": keys.device_id,
                                                    "results": results}, format="json")


def test_a_job_through_the_api_from_submission_to_results(world: dict[str, Any],
                                                          rob: User) -> None:
    job = world["job"]
    # 2 units x 10^9 fuel x 2 x 100,000 per 10^12 = 400, fee 40.
    assert (job["budget_minor"], job["state"], job["progress"]["units"]["pending"]) == (
        440, "running", 2)
    for name in ("bob", "carol"):
        client, keys = world[name]
        given = _dispatch(client, keys, f"d-{name}").json()["assignments"]
        assert [a["unit"] for a in given] == ["0", "1"]
        assert base64.b64decode(given[1]["input"]) == b"1"
        answer = _send(client, keys, [_result(keys, a, b"out-" + a["unit"].encode())
                                      for a in given]).json()
        assert (answer["accepted"], answer["rejected"]) == (2, 0)
    customer = world["customer"]
    detail = customer.get(f"/api/v1/compute/jobs/{job['id']}/").json()
    # 2 units x 5 x 10^8 fuel: 50 per device per unit, 100 each, fee 20.
    assert detail["state"] == "completed"
    assert detail["progress"]["spent_minor"] == 220
    assert detail["refunded_minor"] == 440 - 220
    assert customer.get(f"/api/v1/compute/jobs/{job['id']}/units/1/output/").content == b"out-1"
    archive = customer.get(f"/api/v1/compute/jobs/{job['id']}/results.zip")
    assert archive["Content-Type"] == "application/zip"
    units = customer.get(f"/api/v1/compute/jobs/{job['id']}/units/").json()["results"]
    assert [(u["state"], u["fuel"], u["replicas"]) for u in units] == [
        ("validated", 5 * 10**8, 2), ("validated", 5 * 10**8, 2)]
    wallet = Account.objects.get(owner=rob, kind=AccountKind.WALLET, currency="EUR")
    assert wallet.balance == 10_000 - 220


def test_dispatch_replayed_with_its_key_gives_the_same_units(world: dict[str, Any]) -> None:
    client, keys = world["bob"]
    first = _dispatch(client, keys, "same").json()
    again = _dispatch(client, keys, "same")
    assert again.json() == first
    assert again["Idempotent-Replayed"] == "true"
    assert Assignment.objects.filter(device_id=keys.device_id).count() == 2


def test_results_from_the_wrong_device_or_for_anothers_assignment_are_refused(
        world: dict[str, Any]) -> None:
    bob, bob_keys = world["bob"]
    carol, carol_keys = world["carol"]
    mine = _dispatch(bob, bob_keys, "b").json()["assignments"]
    # Carol signs a result for Bob's assignment and sends it as her device's.
    answer = _send(carol, carol_keys, [_result(carol_keys, mine[0], b"x")]).json()
    assert answer["results"][0]["reason"] == "unknown_assignment"
    # Bob sends a result Carol's device signed.
    answer = _send(bob, bob_keys, [_result(carol_keys, mine[0], b"x")]).json()
    assert answer["results"][0]["reason"] == "wrong_device"
    # Bob names Carol's device in his request: not his device.
    refused = _send(bob, carol_keys, [_result(bob_keys, mine[0], b"x")])
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "unknown_device")
    assert Assignment.objects.filter(state=AssignmentState.RETURNED).count() == 0


def test_replayed_forged_and_mismatched_results_are_refused(world: dict[str, Any]) -> None:
    client, keys = world["bob"]
    given = _dispatch(client, keys, "b").json()["assignments"]
    first = _result(keys, given[0], b"x")
    assert _send(client, keys, [first]).json()["accepted"] == 1
    # The same signed result again: a duplicate, counted once.
    assert _send(client, keys, [first]).json()["results"][0]["status"] == "duplicate"
    # Another result for an assignment already answered.
    assert _send(client, keys, [_result(keys, given[0], b"y")]).json()["results"][0][
        "reason"] == "already_returned"
    # The first result's token replayed for the other assignment.
    replay = {**first, "assignment": given[1]["assignment"]}
    assert _send(client, keys, [replay]).json()["results"][0]["reason"] == "mismatch"
    over = _result(keys, given[1], b"x", fuel=10**9 + 1)
    assert _send(client, keys, [over]).json()["results"][0]["reason"] == "fuel_over_cap"
    swapped = {**_result(keys, given[1], b"x"), "output": base64.b64encode(b"z").decode()}
    assert _send(client, keys, [swapped]).json()["results"][0]["reason"] == "output_mismatch"
    other_runtime = _result(keys, given[1], b"x", runtime="wasmtime-0.0.0+pm-sandbox-0")
    assert _send(client, keys, [other_runtime]).json()["results"][0]["reason"] == (
        "wrong_runtime")
    garbage = {**_result(keys, given[1], b"x"), "token": "not.a.token"}
    assert _send(client, keys, [garbage]).json()["results"][0]["status"] == "rejected"
    bad_b64 = {**_result(keys, given[1], b"x"), "output": "***"}
    assert _send(client, keys, [bad_b64]).status_code == 400
    assert Assignment.objects.get(pk=given[1]["assignment"]).state == AssignmentState.ISSUED


def test_a_late_result_is_refused_and_the_unit_goes_to_someone_else(
        world: dict[str, Any], rita: User, api: Callable[[User | None], Client],
        device_of: Callable[..., Any]) -> None:
    client, keys = world["bob"]
    given = _dispatch(client, keys, "b").json()["assignments"]
    Assignment.objects.filter(pk=given[0]["assignment"]).update(
        deadline=timezone.now() - dt.timedelta(seconds=1))
    from exchange.compute_market.dispatch import assignments_reclaim_overdue

    assert assignments_reclaim_overdue() == 1
    answer = _send(client, keys, [_result(keys, given[0], b"x")]).json()
    assert answer["results"][0]["reason"] == "late"
    assert Contributor.objects.get(device_id=keys.device_id).expired == 1
    # Bob's expired assignment no longer counts as his: the unit may come back to him.
    again = _dispatch(client, keys, "b2").json()["assignments"]
    assert [a["unit"] for a in again] == ["0"]


def test_bad_modules_are_refused_with_the_reason(world: dict[str, Any]) -> None:
    customer = world["customer"]
    not_wasm = _upload(customer, b"MZ\x90\x00 not a module")
    assert (not_wasm.status_code, not_wasm.json()["error"]["code"]) == (400, "module_rejected")
    clock = wasmtime.wat2wasm(
        '(module (import "wasi_snapshot_preview1" "clock_time_get"'
        ' (func (param i32 i64 i32) (result i32)))'
        ' (memory (export "memory") 1) (func (export "_start")))')
    refused = _upload(customer, bytes(clock))
    assert refused.status_code == 400
    assert "clock_time_get" in refused.json()["error"]["message"]
    huge = customer.post("/api/v1/compute/modules/",
                         {"module": SimpleUploadedFile("big.wasm", b"\0asm" + b"\0" * 9 * 2**20)},
                         format="multipart")
    assert huge.status_code == 413
    assert _upload(customer, RENDER_WASM.read_bytes()).status_code == 201


def test_bad_jobs_are_refused_and_move_no_money(world: dict[str, Any], rob: User,
                                                api: Callable[[User | None], Client],
                                                carol: User) -> None:
    customer, module = world["customer"], world["module"]
    wallet = Account.objects.get(owner=rob, kind=AccountKind.WALLET, currency="EUR")
    before = wallet.balance
    cases = [
        (_job_body("0" * 64), 404, "unknown_module"),
        (_job_body(module, price=10**11, fuel=10**12), 402, "insufficient_funds"),
        (_job_body(module, currency="KRW"), 409, "currency_mismatch"),
        (_job_body(module, replication=1), 400, "invalid"),
        (_job_body(module, units=0), 400, "invalid"),
        ({**_job_body(module), "price_per_tfuel_minor": 1.5}, 400, "invalid"),
        ({**_job_body(module), "deadline": "2001-01-01T00:00:00Z"}, 400, "invalid"),
    ]
    for index, (body, status, code) in enumerate(cases):
        answer = _submit(customer, body, key=f"bad-{index}")
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), body
    no_key = customer.post("/api/v1/compute/jobs/", _job_body(module), format="json")
    assert no_key.status_code == 400
    wallet.refresh_from_db()
    assert wallet.balance == before
    # A member with no wallet at all.
    empty = _submit(api(carol), _job_body(module), key="carol")
    assert empty.status_code == 402


def test_other_members_jobs_and_modules_are_not_theirs_to_see(
        world: dict[str, Any], api: Callable[[User | None], Client], carol: User,
        rita: User) -> None:
    job = world["job"]["id"]
    stranger = api(rita)
    for path in (f"/api/v1/compute/jobs/{job}/", f"/api/v1/compute/jobs/{job}/units/",
                 f"/api/v1/compute/jobs/{job}/units/0/output/",
                 f"/api/v1/compute/jobs/{job}/results.zip",
                 f"/api/v1/compute/modules/{world['module']}/"):
        assert stranger.get(path).status_code == 404, path
    assert stranger.post(f"/api/v1/compute/jobs/{job}/cancel/").status_code == 404
    # A contributor given one of its units may fetch the module.
    client, keys = world["carol"]
    _dispatch(client, keys, "c")
    module = client.get(f"/api/v1/compute/modules/{world['module']}/")
    assert (module.status_code, module.content) == (200, EMPTY_COMMAND)
    assert client.get(f"/api/v1/compute/modules/{world['module']}x/").status_code == 404
    assert api(None).get(f"/api/v1/compute/jobs/{job}/").status_code == 401


def test_a_device_not_opted_in_or_suspended_gets_no_work(
        world: dict[str, Any], api: Callable[[User | None], Client], rita: User,
        device_of: Callable[..., Any]) -> None:
    keys, _ = device_of(rita)
    client = api(rita)
    answer = _dispatch(client, keys, "r")
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "not_contributing")
    bob, bob_keys = world["bob"]
    Contributor.objects.filter(device_id=bob_keys.device_id).update(
        suspended_at=timezone.now(), suspended_reason="6 of its 7 checked results disagreed.")
    answer = _dispatch(bob, bob_keys, "b")
    assert (answer.status_code, answer.json()["error"]["code"]) == (403,
                                                                    "contributor_suspended")
