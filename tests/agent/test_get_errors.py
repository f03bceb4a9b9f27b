"""What `get` says when a download stops: the reason it stopped, and how to resume,
even when the disk is too full to keep the served-bytes tally."""

from __future__ import annotations

import errno
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from agent import workflow
from agent.context import AgentError
from agent.download import DownloadError, DownloadResult, Source


def test_a_full_disk_does_not_hide_why_the_download_stopped(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    def stopped(*_args: Any, **_kwargs: Any) -> None:
        raise DownloadError("cannot store the download: disk full: cannot save the bitfield "
                            "of w (No space left on device)", DownloadResult())

    def disk_full(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(workflow, "platform_sources",
                        lambda *_args: ([Source(peer_id="p", url="http://127.0.0.1:9")], []))
    monkeypatch.setattr(workflow, "fetch", stopped)
    monkeypatch.setattr(workflow, "add_served", disk_full)
    owned = SimpleNamespace(work_id="w", licence_id=str(uuid.uuid4()), token="t")
    work = SimpleNamespace(manifest=SimpleNamespace(piece_count=4, ciphertext_size=4096))
    with pytest.raises(AgentError) as stopped_error:
        workflow.download(SimpleNamespace(device=None), owned, work,  # type: ignore[arg-type]
                          licence=None, online=True, rate_limit_bps=None,  # type: ignore[arg-type]
                          listener=workflow.GetListener())
    message = str(stopped_error.value)
    assert "disk full" in message
    assert "Run `get` again to resume" in message
