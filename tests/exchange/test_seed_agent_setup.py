"""The seed agent's platform half: its account and an owner-only token file, safely run
again at every start; the agent takes the token with `login --token-file`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from exchange.accounts.models import ApiToken, User

pytestmark = pytest.mark.django_db


def test_setup_writes_an_owner_only_token_and_running_it_again_keeps_it(
        tmp_path: Path) -> None:
    path = tmp_path / "seed" / "platform-token"
    call_command("seed_agent_setup", token_file=path)
    token = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    seeder = User.objects.get(username="platform-seeder")
    assert not seeder.has_usable_password()
    assert ApiToken.objects.filter(user=seeder, revoked_at__isnull=True).count() == 1

    call_command("seed_agent_setup", token_file=path)

    assert path.read_text().strip() == token
    assert ApiToken.objects.filter(user=seeder).count() == 1


def test_a_revoked_or_foreign_token_in_the_file_is_replaced(tmp_path: Path) -> None:
    from django.utils import timezone

    path = tmp_path / "platform-token"
    call_command("seed_agent_setup", token_file=path)
    first = path.read_text().strip()
    ApiToken.objects.update(revoked_at=timezone.now())
    call_command("seed_agent_setup", token_file=path)
    second = path.read_text().strip()
    assert second != first
    path.write_text("pmk_somebody_elses\n")
    call_command("seed_agent_setup", token_file=path)
    assert path.read_text().strip() not in {second, "pmk_somebody_elses"}


def test_a_folder_as_the_token_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is a folder"):
        call_command("seed_agent_setup", token_file=tmp_path)
    assert not User.objects.filter(username="platform-seeder").exists()


def test_a_loose_token_file_is_made_owner_only_again(tmp_path: Path) -> None:
    path = tmp_path / "platform-token"
    call_command("seed_agent_setup", token_file=path)
    path.chmod(0o644)
    (tmp_path / "platform-token.partial").write_text("left over")
    (tmp_path / "platform-token.partial").chmod(0o666)

    call_command("seed_agent_setup", token_file=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    ApiToken.objects.update(revoked_at="2026-01-01T00:00:00Z")
    call_command("seed_agent_setup", token_file=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
