"""The demo command makes the demo's people and works, and is safe to run twice."""

from __future__ import annotations

import json
import stat

import pytest
from django.core.management import call_command

from exchange.accounts.models import Role, User
from exchange.catalogue.models import DeliveryMode, Work, WorkStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_creates_the_personas_and_ready_works_and_prints_the_logins(settings, capsys) -> None:
    call_command("demo_data")

    roles = dict(User.objects.values_list("username", "role"))
    assert roles == {"rita": Role.RIGHTS_HOLDER, "bob": Role.BUYER, "carol": Role.BUYER,
                     "admin": Role.ADMIN}
    assert User.objects.get(username="admin").is_staff
    works = Work.objects.all()
    assert works.count() >= 3
    assert {w.status for w in works} == {WorkStatus.READY}
    assert all(w.owner.username == "rita" for w in works)
    # Pictures are sealed by default, one is kept marked: the portal shows both modes.
    images = {w.title: w.delivery_mode for w in works.filter(media_type="image")}
    assert images.pop("Harbour at dawn") == DeliveryMode.MARKED
    assert set(images.values()) == {DeliveryMode.SEALED}
    assert {w.delivery_mode for w in works.filter(media_type="audio")} == {DeliveryMode.MARKED}

    logins_file = settings.DATA_DIR / "demo_logins.json"
    passwords = json.loads(logins_file.read_text())
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
    printed = capsys.readouterr().out
    for username, password in passwords.items():
        assert username in printed
        assert password in printed
        assert User.objects.get(username=username).check_password(password)


def test_bob_follows_rita_and_hears_of_her_works_and_carols_search_matches(settings
                                                                          ) -> None:
    from exchange.community.models import Follow, MemberProfile, Notification, SavedSearch

    call_command("demo_data", "--quiet")
    assert Follow.objects.filter(follower__username="bob",
                                 rights_holder__username="rita").count() == 1
    assert MemberProfile.objects.get(user__username="rita").display_name == \
        "Rita Park (박리타)"
    # every demo work was announced to Bob once; Carol's "night" matched the night ones
    works = Work.objects.count()
    assert Notification.objects.filter(recipient__username="bob", kind="new_work").count() \
        == works
    night = Work.objects.filter(title__icontains="night").count()
    assert night >= 1
    assert Notification.objects.filter(recipient__username="carol",
                                       kind="wishlist_match").count() == night
    call_command("demo_data", "--quiet")
    assert (Follow.objects.count(), SavedSearch.objects.count()) == (1, 1)
    assert Notification.objects.filter(recipient__username="bob").count() == works


def test_running_it_again_changes_nothing(settings) -> None:
    call_command("demo_data", "--quiet")
    before = (User.objects.count(), Work.objects.count())
    call_command("demo_data", "--quiet")
    assert (User.objects.count(), Work.objects.count()) == before


def test_it_makes_a_finished_compute_job_whose_tiles_are_the_picture(settings) -> None:
    """Bob's demo picture was computed for real by two members' devices: validated,
    paid, finished, its budget's rest returned, and its tiles put together into it."""
    import io

    from django.db.models import Sum
    from PIL import Image

    from compute.demo import assemble, tiles
    from exchange.compute_market.archives import demo_render_png
    from exchange.compute_market.models import (
        ComputeJob,
        Contributor,
        JobEarning,
        JobState,
        UnitState,
    )
    from exchange.compute_market.selectors import unit_output
    from exchange.ledger.models import Posting

    call_command("demo_data", "--quiet")

    job = ComputeJob.objects.get()
    assert (job.customer.username, job.state) == ("bob", JobState.COMPLETED)
    assert job.units.count() == 12
    assert set(job.units.values_list("state", flat=True)) == {UnitState.VALIDATED}
    devices = Contributor.objects.order_by("user__username")
    assert [(c.user.username, c.agreed, c.disagreed) for c in devices] == [
        ("carol", 12, 0), ("rita", 12, 0)]
    earned = dict(JobEarning.objects.filter(job=job, user__isnull=False)
                  .values_list("user__username", "paid_minor"))
    assert set(earned) == {"carol", "rita"}
    assert all(amount > 0 for amount in earned.values())
    assert 0 < job.refunded_minor < job.budget_minor
    assert Posting.objects.aggregate(total=Sum("amount"))["total"] == 0

    picture = demo_render_png(job)
    assert picture is not None
    expected = assemble(160, 120, ((tile, unit_output(job, seq))
                                   for seq, tile in enumerate(tiles(160, 120, 40, 40))))
    image = Image.open(io.BytesIO(picture))
    assert (image.format, image.size, image.mode) == ("PNG", (160, 120), "RGB")
    assert image.tobytes() == expected
    assert len(set(expected)) > 50  # a picture, not a blank


def test_running_it_again_makes_no_second_job_or_device(settings) -> None:
    from exchange.compute_market.models import ComputeJob, Contributor
    from exchange.licensing.models import Device

    call_command("demo_data", "--quiet")
    before = (ComputeJob.objects.count(), Device.objects.count(), Contributor.objects.count())
    call_command("demo_data", "--quiet")
    assert (ComputeJob.objects.count(), Device.objects.count(),
            Contributor.objects.count()) == before == (1, 2, 2)
