"""Build the desktop agent's wheel from this repository's own sources into
DATA_DIR/agent/, where the portal's "Get the agent" page serves it (docs/OPERATIONS.md,
"The agent's package"). Safe to run at every start: when a wheel of the same version and
the same sources is there already, it only prints its path.

The wheel is built by pip with the standard setuptools backend from a temporary folder
holding the agent, licensing.core and watermark and the pyproject rendered from
packaging/agent/; the sources' hash is the version's local label, so the file name says
which sources it holds and a rebuild of changed sources is a new version."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

# What goes into the wheel, relative to the repository: the agent and the three pure
# packages it imports (compute for `contribute`). Only the core of licensing: its Django
# half is the platform's.
SOURCES = ("agent/**/*.py", "licensing/__init__.py", "licensing/core/**/*.py",
           "watermark/**/*.py", "compute/**/*.py")
DISTRIBUTION = "peermark_agent"  # the wheel's file-name form of "peermark-agent"
# setuptools builds wheels by itself (bdist_wheel without the `wheel` package) from 70.1.
SETUPTOOLS_MINIMUM = (70, 1)
PIN = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>\S+)")


def _canonical(name: str) -> str:
    """PEP 503's normal form, so that `Pillow` in one file finds `pillow` in another."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: Path) -> dict[str, str]:
    """Every exact pin in requirements.txt, by canonical name, as written there."""
    pins = {}
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        match = PIN.fullmatch(line)
        if match:
            pins[_canonical(match["name"])] = f"{match['name']}=={match['version']}"
    return pins


def agent_dependencies(base_dir: Path) -> list[str]:
    """packaging/agent/dependencies.txt's names, pinned as requirements.txt pins them: the
    buyer's machine installs what the platform's tests ran against."""
    pins = _pins(base_dir / "requirements.txt")
    names = [line.split("#", 1)[0].strip()
             for line in (base_dir / "packaging" / "agent" / "dependencies.txt").read_text()
             .splitlines()]
    missing = [name for name in names if name and _canonical(name) not in pins]
    if missing:
        raise CommandError(f"requirements.txt pins no exact version of {', '.join(missing)}, "
                           "which the agent needs (packaging/agent/dependencies.txt)")
    return sorted(pins[_canonical(name)] for name in names if name)


def _sources(base_dir: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for pattern in SOURCES:
        for path in sorted(base_dir.glob(pattern)):
            if path.is_file():
                files[path.relative_to(base_dir).as_posix()] = path.read_bytes()
    return files


def _render(template: str, *, version: str, dependencies: list[str]) -> str:
    listed = "\n".join(f'    "{pin}",' for pin in dependencies)
    return string.Template(template).substitute(version=version, dependencies=listed)


def _source_hash(files: dict[str, bytes]) -> str:
    """One hash over every file's name and content, in a fixed order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def _check_backend() -> None:
    try:
        found = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        found = ""
    numbers = tuple(int(part) for part in re.findall(r"\d+", found)[:2])
    if numbers < SETUPTOOLS_MINIMUM:
        raise CommandError(
            "building the agent's package needs setuptools "
            f"{'.'.join(map(str, SETUPTOOLS_MINIMUM))} or newer (this environment has "
            f"{found or 'none'}); install the pinned requirements: "
            "pip install -r requirements.txt")


def agent_package_build(*, base_dir: Path, out_dir: Path) -> tuple[Path, bool]:
    """Build the wheel into ``out_dir`` unless it is there already; returns its path and
    whether it was built. Older builds are removed once the new one is in place, so the
    folder holds the one wheel the portal offers."""
    public_version = tomllib.loads((base_dir / "pyproject.toml").read_text())["project"]["version"]
    dependencies = agent_dependencies(base_dir)
    template = (base_dir / "packaging" / "agent" / "pyproject.toml.in").read_text()
    files = _sources(base_dir)
    # The hash covers the pyproject as rendered before the hash is added to its version:
    # the pins and the template are part of what a build holds.
    files["pyproject.toml"] = _render(template, version=public_version,
                                      dependencies=dependencies).encode()
    version = f"{public_version}+src{_source_hash(files)[:12]}"
    files["pyproject.toml"] = _render(template, version=version,
                                      dependencies=dependencies).encode()
    target = out_dir / f"{DISTRIBUTION}-{version}-py3-none-any.whl"
    if target.is_file():
        return target, False

    _check_backend()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="peermark-agent-build-") as temp:
        tree, wheels = Path(temp) / "src", Path(temp) / "wheels"
        for name, data in files.items():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            (tree / name).write_bytes(data)
        # An absolute path: pip reads a bare folder name as a package to download.
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                   "--no-index", "--disable-pip-version-check", "--quiet",
                   "--wheel-dir", str(wheels), str(tree.resolve())]
        # Fixed timestamps inside the zip: the same sources give the same bytes.
        environment = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
        result = subprocess.run(command, capture_output=True, text=True, env=environment,  # noqa: S603
                                check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise CommandError(f"pip could not build the agent's wheel:\n{tail}")
        built = sorted(wheels.glob("*.whl"))
        if [path.name for path in built] != [target.name]:
            raise CommandError(f"expected {target.name} from the build, found "
                               f"{', '.join(path.name for path in built) or 'nothing'}")
        partial = out_dir / f".{target.name}.partial"
        shutil.copyfile(built[0], partial)
        partial.replace(target)  # the portal never sees half a file
    for old in out_dir.glob(f"{DISTRIBUTION}-*.whl"):
        if old != target:
            old.unlink(missing_ok=True)
    return target, True


class Command(BaseCommand):
    help = __doc__
    requires_system_checks = []  # it reads files and runs pip: no model, URL or setting of the apps

    def handle(self, *args: Any, **options: Any) -> None:
        path, built = agent_package_build(base_dir=Path(settings.BASE_DIR),
                                          out_dir=Path(settings.DATA_DIR) / "agent")
        self.stdout.write(f"agent package {'built' if built else 'up to date'}: {path}")
