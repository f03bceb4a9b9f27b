"""Choosing the viewer for `view`: the user's command, read as a shell would, or a clear error."""

from __future__ import annotations

import pytest

from agent.commands_transfer import _viewer
from agent.context import AgentError


def test_the_command_given_wins_and_is_split_as_a_shell_would(monkeypatch) -> None:
    monkeypatch.setenv("PEERMARK_VIEWER", "feh --fullscreen")
    assert _viewer("display -resize '50%'") == ["display", "-resize", "50%"]
    assert _viewer(None) == ["feh", "--fullscreen"]


def test_a_badly_quoted_command_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("PEERMARK_VIEWER", raising=False)
    with pytest.raises(AgentError, match="Cannot read the viewer command"):
        _viewer("sh -c 'unterminated")


def test_without_any_viewer_it_says_how_to_choose_one(monkeypatch) -> None:
    monkeypatch.delenv("PEERMARK_VIEWER", raising=False)
    monkeypatch.setattr("shutil.which", lambda _name: None)
    with pytest.raises(AgentError, match="pass --with COMMAND or set PEERMARK_VIEWER"):
        _viewer("  ")
