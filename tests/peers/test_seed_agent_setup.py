"""The platform's seed agent is set up by one command, safely run again at every start."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agent.config import AgentHome
from licensing.models import Device

pytestmark = pytest.mark.django_db


def test_setup_makes_a_logged_in_agent_and_running_it_again_changes_nothing(
        tmp_path: Path) -> None:
    call_command("seed_agent_setup", data_dir=tmp_path, port=7710)
    config = AgentHome(tmp_path).load_config()
    assert config.token
    assert config.listen_port == 7710
    assert Device.objects.count() == 1
    call_command("seed_agent_setup", data_dir=tmp_path, port=7710)
    assert AgentHome(tmp_path).load_config().token == config.token
    assert Device.objects.count() == 1


def test_a_port_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="--port must be 1 to 65535"):
        call_command("seed_agent_setup", data_dir=tmp_path, port=99999)
    assert not AgentHome(tmp_path).device_key_path.exists()


def test_a_revoked_seed_device_is_a_clear_error(tmp_path: Path) -> None:
    from django.utils import timezone

    call_command("seed_agent_setup", data_dir=tmp_path)
    Device.objects.update(revoked_at=timezone.now())
    with pytest.raises(CommandError, match="revoked"):
        call_command("seed_agent_setup", data_dir=tmp_path)
