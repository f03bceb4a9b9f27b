"""The environment readers refuse what they cannot understand instead of guessing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from exchange.env import env_bool, env_int, env_list, env_str, secret_in_data_dir


def test_it_reads_true_and_false_in_the_usual_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    for text, expected in [("true", True), ("1", True), ("Yes", True), ("off", False)]:
        monkeypatch.setenv("PM_FLAG", text)
        assert env_bool("PM_FLAG", default=not expected) is expected


def test_it_refuses_a_boolean_that_is_neither(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_FLAG", "treu")
    with pytest.raises(ImproperlyConfigured, match="PM_FLAG must be true or false"):
        env_bool("PM_FLAG", default=False)


def test_it_uses_the_default_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PM_FLAG", raising=False)
    assert env_bool("PM_FLAG", default=True) is True
    assert env_int("PM_NUMBER", default=7) == 7
    assert env_list("PM_LIST", default=["a"]) == ["a"]


def test_it_reads_a_secret_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("PM_SECRET_FILE", str(secret))
    assert env_str("PM_SECRET") == "s3cret"


def test_it_refuses_both_a_variable_and_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PM_SECRET", "a")
    monkeypatch.setenv("PM_SECRET_FILE", str(tmp_path / "x"))
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env_str("PM_SECRET")


def test_it_refuses_an_integer_below_its_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PM_NUMBER", "3")
    with pytest.raises(ImproperlyConfigured, match="at least 24"):
        env_int("PM_NUMBER", default=48, minimum=24)
    monkeypatch.setenv("PM_NUMBER", "many")
    with pytest.raises(ImproperlyConfigured, match="must be an integer"):
        env_int("PM_NUMBER", default=48)


def test_the_generated_secret_is_stable_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret_key"
    first = secret_in_data_dir(path)
    assert secret_in_data_dir(path) == first
    assert len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_it_refuses_a_secret_other_users_can_read(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    secret_in_data_dir(path)
    path.chmod(0o644)
    with pytest.raises(ImproperlyConfigured, match="chmod 600"):
        secret_in_data_dir(path)


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import exchange.settings as s; "
         "print(s.DATABASES['default']['OPTIONS']['prepare_threshold'])"],
        env={**os.environ, "DATABASE_URL": "postgres://peermark@db.example:5432/pm", **env},
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_preparing_can_be_turned_off_for_a_pooler() -> None:
    assert _settings_in_a_fresh_process().stdout.strip() == "5"
    off = _settings_in_a_fresh_process(PEERMARK_DB_PREPARE_THRESHOLD="0")
    assert off.stdout.strip() == "None"
    bad = _settings_in_a_fresh_process(PEERMARK_DB_PREPARE_THRESHOLD="-1")
    assert bad.returncode != 0
    assert "PEERMARK_DB_PREPARE_THRESHOLD" in bad.stderr


@pytest.mark.parametrize("name", ["PEERMARK_INDEX_SECRET", "PEERMARK_INDEX_PREVIOUS_SECRET"])
@pytest.mark.parametrize("value", ["not-hex", "ab" * 16])  # not hex; hex, but 16 bytes
def test_an_index_key_that_is_not_32_bytes_of_hex_is_refused(name: str, value: str) -> None:
    bad = _settings_in_a_fresh_process(**{name: value})
    assert bad.returncode != 0
    assert f"{name} is hex, 32 bytes or more" in bad.stderr
    assert _settings_in_a_fresh_process(**{name: "ab" * 32}).returncode == 0
