"""The demo command makes the demo's people and works, and is safe to run twice."""

from __future__ import annotations

import json
import stat

import pytest
from django.core.management import call_command

from exchange.accounts.models import Role, User
from exchange.catalogue.models import Work, WorkStatus

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

    logins_file = settings.DATA_DIR / "demo_logins.json"
    passwords = json.loads(logins_file.read_text())
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
    printed = capsys.readouterr().out
    for username, password in passwords.items():
        assert username in printed
        assert password in printed
        assert User.objects.get(username=username).check_password(password)


def test_running_it_again_changes_nothing(settings) -> None:
    call_command("demo_data", "--quiet")
    before = (User.objects.count(), Work.objects.count())
    call_command("demo_data", "--quiet")
    assert (User.objects.count(), Work.objects.count()) == before
