"""The compute market's portal pages: a customer's jobs (submit, watch, download, cancel)
and a contributor's page, in English and Korean, each job its customer's alone.

The finished demo job here has tiles of known pixels (signed by real device keys, but
not rendered: tests/compute covers the renderer), so the picture the portal serves is
checked against ``compute.demo.assemble`` of exactly those tiles.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from compute.demo import assemble, tiles
from exchange.accounts.models import User
from exchange.compute_market.contributors import contributor_enroll
from exchange.compute_market.demo_jobs import demo_module, demo_render_spec
from exchange.compute_market.models import (
    ComputeJob,
    ComputeModule,
    Contributor,
    JobState,
    UnitState,
    WorkUnit,
)
from exchange.compute_market.submission import job_submit
from exchange.ledger.models import Account, AccountKind
from tests.exchange.compute_market.support import EMPTY_COMMAND, Member, enroll, send, signed, take

pytestmark = pytest.mark.django_db

WIDTH, HEIGHT, TILE = 48, 32, 16  # six tiles


def _wallet(user: User, currency: str = "EUR") -> int:
    account = Account.objects.filter(owner=user, kind=AccountKind.WALLET, currency=currency,
                                     reference="").first()
    return account.balance if account else 0


def _once(page: str) -> str:
    match = re.search(r'name="once" value="([^"]+)"', page)
    assert match, "no form key on the page"
    return match.group(1)


@pytest.fixture
def funded_bob(bob: User, fund: Callable[..., None]) -> User:
    fund(bob, 5_000)
    return bob


@pytest.fixture
def members(carol: User, rita: User, device_of: Callable[..., Any]) -> list[Member]:
    found = []
    for user in (carol, rita):
        keys, device = device_of(user, f"{user.username}'s tower")
        member = Member(user, keys, device)
        enroll(member)
        found.append(member)
    return found


def _demo_job(customer: User) -> ComputeJob:
    return job_submit(customer=customer, spec=demo_render_spec(
        module=demo_module(customer), width=WIDTH, height=HEIGHT, tile=TILE, samples=1,
        currency="EUR", price_per_tfuel_minor=100_000, name="Spheres"))


@pytest.fixture
def finished(funded_bob: User, members: list[Member],
             django_capture_on_commit_callbacks: Any) -> tuple[ComputeJob, dict[int, bytes]]:
    """Bob's demo job, every tile returned alike by Carol's and Rita's devices."""
    job = _demo_job(funded_bob)
    rng = random.Random(7)
    outputs = {seq: rng.randbytes(tile.width * tile.height * 3)
               for seq, tile in enumerate(tiles(WIDTH, HEIGHT, TILE, TILE))}
    with django_capture_on_commit_callbacks(execute=True):
        for member in members:
            given = take(member)
            send(member, [signed(member, d, outputs[d.unit.seq], fuel=1_000_000 + d.unit.seq)
                          for d in given])
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    return job, outputs


# --- pages, languages, access -------------------------------------------------------------

PAGES = ["/compute/", "/compute/render/", "/compute/upload/", "/compute/contribute/", "job"]


@pytest.mark.parametrize(("language", "says"), [
    ("en", {"/compute/": ["Compute jobs", "Spheres", "6 of 6", "Render a picture"],
            "/compute/render/": ["Render a picture", "Price per trillion fuel", "Tile size"],
            "/compute/upload/": ["Upload a job", "The units file", "input_base64"],
            "/compute/contribute/": ["Start contributing", "peermark-agent contribute"],
            "job": ["Units validated", "Cost so far", "Download all results (ZIP)",
                    "The rendered picture, 48 by 32 pixels"]}),
    ("ko", {"/compute/": ["컴퓨팅 작업", "Spheres", "6개 중 6개", "그림 렌더링"],
            "/compute/render/": ["그림 렌더링", "1조 연료당 가격", "타일 크기"],
            "/compute/upload/": ["작업 업로드", "작업 단위 파일", "input_base64"],
            "/compute/contribute/": ["기여 시작하기", "peermark-agent contribute"],
            "job": ["검증된 작업 단위", "지금까지의 비용", "모든 결과 다운로드(ZIP)",
                    "렌더링된 그림, 48 \u00d7 32 픽셀"]}),
])
def test_every_page_renders_in_english_and_korean(client, finished, language, says) -> None:
    job, _outputs = finished
    client.force_login(job.customer)
    client.cookies["django_language"] = language
    for path in PAGES:
        url = f"/compute/jobs/{job.pk}/" if path == "job" else path
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert f'<html lang="{language}">' in page
        for text in says[path]:
            assert text in page, (url, text)
        navigation = re.search(r"<nav\b[^>]*>(.*?)</nav>", page, re.DOTALL)
        assert navigation is not None
        assert ("컴퓨팅" if language == "ko" else "Compute") in navigation.group(1)


@pytest.mark.parametrize("path", ["/compute/", "/compute/render/", "/compute/upload/",
                                  "/compute/contribute/", "job", "job/picture.png",
                                  "job/results.zip", "job/units/0/output"])
def test_anonymous_visitors_are_sent_to_log_in(client, finished, path) -> None:
    job, _outputs = finished
    url = path.replace("job", f"/compute/jobs/{job.pk}") if path.startswith("job") else path
    url += "/" if path == "job" else ""
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("suffix", ["/", "/picture.png", "/results.zip", "/units/0/output"])
def test_another_members_job_is_not_found_as_if_it_did_not_exist(client, finished, carol,
                                                                  suffix) -> None:
    job, _outputs = finished
    client.force_login(carol)  # a contributor to it, but not its customer
    theirs = client.get(f"/compute/jobs/{job.pk}{suffix}")
    missing = client.get(f"/compute/jobs/00000000-0000-4000-8000-000000000000{suffix}")
    malformed = client.get(f"/compute/jobs/not-a-job{suffix}")
    assert theirs.status_code == missing.status_code == malformed.status_code == 404
    # The same page but for the path in it (the language switcher's) and the form token.
    same = re.compile(r'value="[^"]*"')
    assert same.sub("", theirs.content.decode()) == same.sub("", missing.content.decode())


def test_another_member_cannot_cancel_a_job(client, funded_bob, carol) -> None:
    job = _demo_job(funded_bob)
    client.force_login(carol)
    assert client.post(f"/compute/jobs/{job.pk}/cancel/").status_code == 404
    job.refresh_from_db()
    assert (job.state, job.cancel_requested_at) == (JobState.RUNNING, None)


# --- the render form ----------------------------------------------------------------------

def _render_form(client, **changes: str) -> dict[str, str]:
    form = {"once": _once(client.get("/compute/render/").content.decode()), "name": "",
            "width": "64", "height": "48", "tile": "16", "samples": "2", "price": "1000.00",
            "currency": "EUR", "replication": "2"}
    form.update(changes)
    return form


def test_the_render_form_submits_a_demo_job_once(client, funded_bob) -> None:
    client.force_login(funded_bob)
    form = _render_form(client, name="My spheres")
    first = client.post("/compute/render/", form)
    job = ComputeJob.objects.get()
    assert first.status_code == 302
    assert first["Location"] == f"/compute/jobs/{job.pk}/"
    assert (job.name, job.unit_count, job.replication, job.currency) == (
        "My spheres", 12, 2, "EUR")
    assert job.price_per_tfuel_minor == 100_000  # €1,000.00 per trillion fuel
    assert job.presentation["render"]["width"] == 64
    assert _wallet(funded_bob) == 5_000 - job.budget_minor

    again = client.post("/compute/render/", form)  # a double click, a reload
    assert again.status_code == 302
    assert again["Location"] == "/compute/"
    assert ComputeJob.objects.count() == 1
    page = client.get(first["Location"]).content.decode()
    assert "My spheres" in page
    assert "is submitted" in page


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"replication": "7"}, "replication", "less than or equal to 5"),
    ({"replication": "1"}, "replication", "greater than or equal to 2"),
    ({"width": "0"}, "width", "greater than or equal to 8"),
    ({"price": "abc"}, "price", "Enter an amount in EUR"),
    ({"price": "0.001"}, "price", "EUR has 2 decimals"),
    ({"currency": "USD"}, "currency", "Select a valid choice"),  # the wallet holds no USD
    ({"width": "1920", "height": "1920", "tile": "8"}, "tile", "at most 10,000 units"),
])
def test_the_render_form_refuses_bad_input_keeping_what_was_typed(
        client, funded_bob, changes, field, message) -> None:
    client.force_login(funded_bob)
    form = _render_form(client, name="Kept name", **changes)
    response = client.post("/compute/render/", form)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field]), errors
    assert 'value="Kept name"' in response.content.decode()
    assert not ComputeJob.objects.exists()
    assert _wallet(funded_bob) == 5_000


def test_a_budget_above_the_wallet_is_shown_on_the_form_and_nothing_moves(
        client, bob, fund) -> None:
    fund(bob, 100)  # €1.00
    client.force_login(bob)
    form = _render_form(client, width="640", height="480", tile="32", samples="64")
    response = client.post("/compute/render/", form)
    assert response.status_code == 402
    page = response.content.decode()
    assert "Not enough money" in page
    assert 'value="640"' in page
    assert f'value="{form["once"]}"' in page
    assert not ComputeJob.objects.exists()
    assert not ComputeModule.objects.exists()  # the module stored with it was rolled back
    assert _wallet(bob) == 100
    # The refused submission released its key: the same form goes through once funded.
    fund(bob, 900_000)
    assert client.post("/compute/render/", form).status_code == 302
    assert ComputeJob.objects.count() == 1


def test_a_member_with_an_empty_wallet_is_asked_to_top_up(client, bob) -> None:
    client.force_login(bob)
    for path in ("/compute/render/", "/compute/upload/"):
        page = client.get(path).content.decode()
        assert "Top up your wallet" in page
        assert 'name="once"' not in page


# --- the upload form ----------------------------------------------------------------------

def _upload(client, *, module: bytes = EMPTY_COMMAND, units: bytes, name: str = "units.jsonl",
            **changes: str) -> Any:
    page = client.get("/compute/upload/").content.decode()
    form: dict[str, Any] = {
        "once": _once(page), "name": "Batch", "fuel": "2000000", "price": "1500",
        "currency": "EUR", "replication": "3", "deadline_days": "2",
        "module": SimpleUploadedFile("job.wasm", module, content_type="application/wasm"),
        "units": SimpleUploadedFile(name, units)}
    form.update(changes)
    return client.post("/compute/upload/", form)


def test_the_upload_form_submits_a_module_and_json_lines_units(client, funded_bob) -> None:
    client.force_login(funded_bob)
    lines = [json.dumps({"input": "first\n", "label": "a"}), "",
             json.dumps({"input_base64": base64.b64encode(b"\x00\x01\x02").decode(),
                         "fuel": 5_000_000}),
             json.dumps({"input": "third", "label": "c"})]
    response = _upload(client, units="\n".join(lines).encode())
    assert response.status_code == 302, response.context["form"].errors
    job = ComputeJob.objects.get()
    assert (job.name, job.replication) == ("Batch", 3)
    assert job.module_id == ComputeModule.objects.get().pk
    units = list(WorkUnit.objects.filter(job=job).order_by("seq")
                 .values_list("input", "label", "fuel_cap"))
    assert [(bytes(i), label, fuel) for i, label, fuel in units] == [
        (b"first\n", "a", 2_000_000), (b"\x00\x01\x02", "", 5_000_000), (b"third", "c", 2_000_000)]
    assert 1 <= (job.deadline - job.created_at).total_seconds() / 86_400 <= 2.01


def test_the_upload_form_takes_a_zip_of_inputs_in_name_order(client, funded_bob) -> None:
    client.force_login(funded_bob)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("b.txt", b"second")
        archive.writestr("a.txt", b"first")
        archive.writestr("folder/", b"")
    response = _upload(client, units=buffer.getvalue(), name="inputs.zip")
    assert response.status_code == 302, response.context["form"].errors
    units = list(WorkUnit.objects.order_by("seq").values_list("input", "label"))
    assert [(bytes(i), label) for i, label in units] == [(b"first", "a.txt"), (b"second", "b.txt")]


@pytest.mark.parametrize(("units", "message"), [
    (b'{"input": "ok"}\n[1, 2]\n', "Line 2 is not a JSON object."),
    (b'{"input": "x", "input_base64": "eA=="}\n', "not both"),
    (b'{"input_base64": "***"}\n', "is not base64"),
    (b'{"input": "x", "fuel": 0}\n', '"fuel" is a whole number'),
    (b"\n\n", "describes no unit"),
    (b"PK\x03\x04 broken", "could not be read"),
])
def test_a_bad_units_file_is_refused_on_its_field(client, funded_bob, units, message) -> None:
    client.force_login(funded_bob)
    response = _upload(client, units=units)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["units"])
    assert not ComputeJob.objects.exists()


def test_a_refused_module_is_shown_on_the_form_and_nothing_is_stored(client, funded_bob) -> None:
    client.force_login(funded_bob)
    response = _upload(client, module=b"\x00asm not really", units=b'{"input": "x"}\n')
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "The module was refused" in " ".join(errors["module"]), errors
    assert 'value="Batch"' in response.content.decode()
    assert not ComputeJob.objects.exists()
    assert not ComputeModule.objects.exists()
    assert _wallet(funded_bob) == 5_000


# --- one job: progress, picture, results, cancel ------------------------------------------

def test_the_job_page_shows_progress_cost_and_the_chart(client, finished) -> None:
    job, _outputs = finished
    client.force_login(job.customer)
    response = client.get(f"/compute/jobs/{job.pk}/")
    page = response.content.decode()
    progress = response.context["progress"]
    assert progress.units[UnitState.VALIDATED] == 6
    assert progress.agreed == 12
    assert progress.spent_minor > 0
    assert job.refunded_minor == job.budget_minor - progress.spent_minor
    assert 'id="job-progress"' in page  # the chart's figures, for Chart.js
    chart = response.context["chart"]
    assert chart.rows[-1][-1] == "6"
    assert f'/compute/jobs/{job.pk}/picture.png' in page
    assert f'/compute/jobs/{job.pk}/units/5/output' in page
    assert "Cancel the job" not in page  # it has ended


def test_the_picture_is_the_tiles_put_together(client, finished) -> None:
    job, outputs = finished
    client.force_login(job.customer)
    response = client.get(f"/compute/jobs/{job.pk}/picture.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert (image.format, image.size, image.mode) == ("PNG", (WIDTH, HEIGHT), "RGB")
    expected = assemble(WIDTH, HEIGHT, ((tile, outputs[seq]) for seq, tile
                                        in enumerate(tiles(WIDTH, HEIGHT, TILE, TILE))))
    assert image.tobytes() == expected


def test_an_unfinished_picture_is_not_served_yet(client, funded_bob) -> None:
    job = _demo_job(funded_bob)
    client.force_login(funded_bob)
    assert client.get(f"/compute/jobs/{job.pk}/picture.png").status_code == 404
    assert client.get(f"/compute/jobs/{job.pk}/units/0/output").status_code == 404
    page = client.get(f"/compute/jobs/{job.pk}/").content.decode()
    assert "The picture is put together when every tile is validated." in page
    assert "Cancel the job" in page


def test_the_results_zip_and_each_units_download_hold_the_outputs(client, finished) -> None:
    job, outputs = finished
    client.force_login(job.customer)
    response = client.get(f"/compute/jobs/{job.pk}/results.zip")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        for seq, data in outputs.items():
            assert archive.read(f"unit-{seq:05d}.out") == data
        manifest = json.loads(archive.read("manifest.json"))
    assert [unit["state"] for unit in manifest["units"]] == ["validated"] * 6
    one = client.get(f"/compute/jobs/{job.pk}/units/3/output")
    assert one.status_code == 200
    assert one.content == outputs[3]
    assert client.get(f"/compute/jobs/{job.pk}/units/99/output").status_code == 404


def test_cancel_stops_the_job_and_returns_its_budget(client, funded_bob) -> None:
    job = _demo_job(funded_bob)
    assert _wallet(funded_bob) == 5_000 - job.budget_minor
    client.force_login(funded_bob)
    response = client.post(f"/compute/jobs/{job.pk}/cancel/")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert job.refunded_minor == job.budget_minor
    assert _wallet(funded_bob) == 5_000
    assert set(WorkUnit.objects.filter(job=job).values_list("state", flat=True)) == {
        UnitState.CANCELLED}
    # Twice is once.
    assert client.post(f"/compute/jobs/{job.pk}/cancel/").status_code == 302
    assert _wallet(funded_bob) == 5_000
    assert client.get(f"/compute/jobs/{job.pk}/cancel/").status_code == 405


def test_the_job_list_shows_state_units_done_and_cost(client, finished) -> None:
    job, _outputs = finished
    client.force_login(job.customer)
    response = client.get("/compute/")
    (row,) = response.context["rows"]
    assert (row.job.pk, row.done, row.status) == (job.pk, 6, "succeeded")
    assert row.spent_minor == response.context["rows"][0].spent_minor > 0
    assert "Completed" in response.content.decode()


# --- contributing -------------------------------------------------------------------------

def test_the_contribute_page_shows_devices_standing_earnings_and_commands(
        client, finished, members) -> None:
    job, _outputs = finished
    carol = members[0]
    client.force_login(carol.user)
    page = client.get("/compute/contribute/").content.decode()
    assert "carol&#x27;s tower" in page
    assert re.search(r'<td class="num">6</td>', page)  # six results agreed
    assert "Spheres" in page  # the job it earned on (no link: not Carol's job)
    assert f"/compute/jobs/{job.pk}/" not in page
    assert "peermark-agent init --platform http://testserver" in page
    assert "peermark-agent login --username carol" in page
    assert "peermark-agent contribute --cores" in page
    assert "--only-when-idle" in page


def test_a_suspended_device_says_so_and_why(client, carol, device_of) -> None:
    from compute.profile import runtime_profile

    keys, _device = device_of(carol)
    contributor_enroll(user=carol, device_id=keys.device_id, runtime=runtime_profile(), cores=1,
                       memory_bytes=2**26)
    Contributor.objects.filter(user=carol).update(
        suspended_at="2026-01-01T00:00:00Z", disagreed=9,
        suspended_reason="9 of its 10 checked results disagreed with the quorum.")
    client.force_login(carol)
    page = client.get("/compute/contribute/").content.decode()
    assert "suspended" in page
    assert "9 of its 10 checked results disagreed with the quorum." in page
    assert "Nothing earned yet" in page
