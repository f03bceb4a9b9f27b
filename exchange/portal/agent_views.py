"""Get the agent: the page that says how, and the package itself.

The platform serves the desktop agent as the wheel that ``manage.py build_agent_package``
builds from this repository's own sources into ``DATA_DIR/agent/`` (docs/OPERATIONS.md,
"The agent's package"). A buyer installs it with pip straight from the download URL, so
the page gives the three commands with this platform's own address filled in.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

# Only what the build command writes: peermark_agent-<version>-py3-none-any.whl. Any other
# name, and so any path, is not served.
WHEEL_NAME = re.compile(r"peermark_agent-[0-9][0-9A-Za-z.+]*-py3-none-any\.whl")


@dataclass(frozen=True)
class AgentPackage:
    """The wheel on offer, as the page shows it."""

    name: str
    size: int
    sha256: str


def agent_package_files() -> dict[str, Path]:
    """The wheels in DATA_DIR/agent/ by name: the only files the download serves. Listed,
    not joined from the request, so no name can reach outside the folder."""
    try:
        entries = list(os.scandir(Path(settings.DATA_DIR) / "agent"))
    except FileNotFoundError:
        return {}
    return {entry.name: Path(entry.path) for entry in entries
            if WHEEL_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)}


def agent_package_current() -> AgentPackage | None:
    """The newest wheel (the build leaves one), or None while none is built. A wheel that
    a rebuild removes between listing and reading is passed over."""
    files = agent_package_files()
    for name, path in sorted(files.items(), key=_newest_first):
        try:
            with path.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
                size = os.fstat(handle.fileno()).st_size
        except FileNotFoundError:
            continue
        return AgentPackage(name=name, size=size, sha256=digest)
    return None


def _newest_first(item: tuple[str, Path]) -> float:
    try:
        return -item[1].stat().st_mtime
    except FileNotFoundError:
        return 0.0


@require_safe
def agent_page(request: HttpRequest) -> HttpResponse:
    """What the agent does, the wheel to download and its SHA-256, and the commands to
    start, with this platform's address (as the visitor reached it) filled in."""
    package = agent_package_current()
    platform_url = request.build_absolute_uri("/").rstrip("/")
    download_url = (request.build_absolute_uri(reverse("portal:agent-download",
                                                       args=[package.name]))
                    if package else "")
    return render(request, "portal/agent.html", {
        "package": package, "platform_url": platform_url, "download_url": download_url,
    })


@require_safe
def agent_download(request: HttpRequest, filename: str) -> HttpResponseBase:
    """Exactly a built wheel, as an attachment; anything else is the portal's 404."""
    path = agent_package_files().get(filename)
    if path is None:
        return render(request, "portal/not_found.html", status=404)
    try:
        handle = path.open("rb")
    except FileNotFoundError:  # replaced by a rebuild since the listing
        return render(request, "portal/not_found.html", status=404)
    return FileResponse(handle, as_attachment=True, filename=filename,
                        content_type="application/octet-stream")
