"""The agent as an installable package: `manage.py build_agent_package` builds a real wheel
from the project's own sources with pip and setuptools; the portal serves exactly that
file and a page with the three commands to start.

The wheel is built once for the module (a few seconds) and installed into a folder of its
own, where the agent runs from outside the project, as on a buyer's machine."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import io
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, RequestFactory, override_settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from exchange.accounts.models import User
from exchange.operations.management.commands.build_agent_package import agent_package_build
from exchange.portal.agent_views import agent_download

pytestmark = pytest.mark.slow

REPO = Path(django_settings.BASE_DIR)
PURE = ("agent", "compute", "licensing", "watermark")


def _agent_sources() -> list[Path]:
    """What the agent runs on: all of agent/, compute/ (the sandbox `contribute` runs
    units in) and watermark/, and licensing's pure core."""
    return sorted([*REPO.glob("agent/**/*.py"), *REPO.glob("compute/**/*.py"),
                   REPO / "licensing" / "__init__.py", *REPO.glob("licensing/core/**/*.py"),
                   *REPO.glob("watermark/**/*.py")])


def _imported_distributions() -> set[str]:
    """The distributions that the agent's sources import, read off the code itself."""
    modules: set[str] = set()
    for path in _agent_sources():
        for node in ast.walk(ast.parse(path.read_bytes())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - set(PURE) - {"__future__"}
    owners = importlib.metadata.packages_distributions()
    return {canonicalize_name(dist) for module in third_party for dist in owners[module]}


def _requirements_pins() -> dict[str, str]:
    pins = {}
    for raw in (REPO / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"requirements.txt pins {line} loosely"
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the wheel that the command built, once for the module."""
    data_dir = tmp_path_factory.mktemp("agent-data")
    output = io.StringIO()
    with override_settings(DATA_DIR=data_dir):
        call_command("build_agent_package", stdout=output)
    (wheel,) = (data_dir / "agent").glob("*.whl")
    assert output.getvalue().strip() == f"agent package built: {wheel}"
    return data_dir


@pytest.fixture
def wheel(built: Path) -> Path:
    (path,) = (built / "agent").glob("*.whl")
    return path


@pytest.fixture
def served(settings: Any, built: Path) -> Path:
    """The platform serving from the built data folder."""
    settings.DATA_DIR = built
    return built


@pytest.fixture(scope="module")
def installed(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed by pip into a folder of its own (its dependencies are this
    environment's, the same pins)."""
    (wheel_path,) = (built / "agent").glob("*.whl")
    target = tmp_path_factory.mktemp("agent-installed")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                    "--disable-pip-version-check", "--quiet", "--target", str(target),
                    str(wheel_path)], check=True, capture_output=True)
    return target


def _run_installed(installed: Path, cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run with only the installed folder on the path, from outside the project, so the
    project's own agent/ cannot be the one imported."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env |= {"PYTHONPATH": str(installed), "PEERMARK_AGENT_HOME": str(cwd / "agent-home")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


# --- the wheel ------------------------------------------------------------------------------


def test_the_wheel_is_peermark_agent_pinned_as_requirements_txt_pins_what_it_imports(
        wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        assert archive.testzip() is None
        info = f"{wheel.name.split('-py3-')[0]}.dist-info"
        metadata = HeaderParser().parsestr(archive.read(f"{info}/METADATA").decode())
        entry_points = archive.read(f"{info}/entry_points.txt").decode()

    assert metadata["Name"] == "peermark-agent"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert re.fullmatch(rf"{re.escape(version)}\+src[0-9a-f]{{12}}", metadata["Version"])
    assert metadata["Requires-Python"] == ">=3.11"
    pins = _requirements_pins()
    wanted = {f"{name}=={pins[name]}" for name in _imported_distributions()}
    declared = set()
    for line in metadata.get_all("Requires-Dist"):
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        declared.add(f"{canonicalize_name(requirement.name)}{spec.operator}{spec.version}")
    assert declared == wanted
    assert re.search(r"^peermark-agent = agent\.cli:main$", entry_points, re.MULTILINE)


def test_the_wheel_holds_exactly_the_agents_sources_and_nothing_of_the_platform(
        wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        modules = {name: archive.read(name) for name in archive.namelist()
                   if not name.split("/")[0].endswith(".dist-info")}

    expected = {path.relative_to(REPO).as_posix(): path.read_bytes()
                for path in _agent_sources()}
    assert modules == expected
    assert {"agent/__init__.py", "agent/cli.py", "agent/contribute/loop.py",
            "compute/worker.py", "compute/worker_main.py", "licensing/core/__init__.py",
            "licensing/core/jws.py", "watermark/__init__.py",
            "watermark/audio/codec.py"} <= set(modules)
    assert not [name for name in modules if name.startswith(("exchange/", "tests/"))]


def test_building_again_keeps_the_wheel_and_changed_sources_replace_it(
        built: Path, wheel: Path, tmp_path: Path) -> None:
    before = wheel.read_bytes()
    output = io.StringIO()
    with override_settings(DATA_DIR=built):
        call_command("build_agent_package", stdout=output)
    assert output.getvalue().strip() == f"agent package up to date: {wheel}"
    assert wheel.read_bytes() == before

    # A copy of the repository's part that the build reads, with one source changed.
    base = tmp_path / "repo"
    for name in (*PURE, "packaging"):
        shutil.copytree(REPO / name, base / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "requirements.txt"):
        shutil.copy(REPO / name, base / name)
    out_dir = tmp_path / "agent"
    out_dir.mkdir()
    shutil.copy(wheel, out_dir / wheel.name)
    with (base / "agent" / "cli.py").open("a") as handle:
        handle.write("\n# changed\n")

    new, was_built = agent_package_build(base_dir=base, out_dir=out_dir)

    assert was_built
    assert new.name != wheel.name
    assert sorted(out_dir.iterdir()) == [new]  # the old build is gone, nothing half-written


def test_a_dependency_that_requirements_txt_does_not_pin_stops_the_build(
        tmp_path: Path) -> None:
    base = tmp_path / "repo"
    shutil.copytree(REPO / "packaging", base / "packaging")
    shutil.copy(REPO / "pyproject.toml", base / "pyproject.toml")
    (base / "requirements.txt").write_text(re.sub(
        r"(?m)^httpx==.*$", "httpx>=0.28", (REPO / "requirements.txt").read_text()))

    with pytest.raises(CommandError, match="pins no exact version of httpx"):
        agent_package_build(base_dir=base, out_dir=tmp_path / "agent")

    assert not (tmp_path / "agent").exists()


def test_the_installed_wheel_runs_the_agent_from_outside_the_project(
        installed: Path, tmp_path: Path) -> None:
    located = _run_installed(installed, tmp_path, sys.executable, "-c",
                             "import agent, licensing.core, watermark; print(agent.__file__)")
    assert located.returncode == 0, located.stderr
    assert Path(located.stdout.strip()).is_relative_to(installed)

    helped = _run_installed(installed, tmp_path, sys.executable, "-m", "agent", "--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage:")
    for command in ("init", "login", "get", "share", "contribute"):
        assert command in helped.stdout

    script = _run_installed(installed, tmp_path, str(installed / "bin" / "peermark-agent"),
                            "init", "--help")
    assert script.returncode == 0, script.stderr
    assert "--platform" in script.stdout


def test_every_module_of_the_installed_wheel_imports(installed: Path, tmp_path: Path) -> None:
    """No module in the wheel needs one that was left out."""
    program = (
        "import importlib, pkgutil, agent, compute, licensing, watermark\n"
        "for package in (agent, compute, licensing, watermark):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if not module.name.endswith('__main__'):\n"
        "            importlib.import_module(module.name)\n"
        "print('ok')\n")
    result = _run_installed(installed, tmp_path, sys.executable, "-c", program)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_installed_wheel_runs_a_unit_in_its_sandbox(installed: Path, tmp_path: Path) -> None:
    """`contribute` needs the sandbox: its worker processes start from the installed
    folder (the demo module is given from outside, as the platform would send it)."""
    program = (
        "import sys, compute\n"
        "from compute.demo import Tile, tile_input\n"
        "from compute.unit import Unit\n"
        "from compute.worker import Sandbox\n"
        "sandbox = Sandbox(sys.argv[2])\n"
        "module = sandbox.prepare(open(sys.argv[1], 'rb').read())\n"
        "unit = Unit(job_id='j', unit_id='0', fuel=10**9,\n"
        "            input=tile_input(8, 8, Tile(0, 0, 8, 8), samples=1))\n"
        "result = sandbox.run(module, unit)\n"
        "print(compute.__file__, result.stop, len(result.output))\n")
    wasm = REPO / "compute" / "demo" / "render.wasm"
    result = _run_installed(installed, tmp_path, sys.executable, "-c", program, str(wasm),
                            str(tmp_path / "sandbox"))
    assert result.returncode == 0, result.stderr
    where, stop, size = result.stdout.split()
    assert Path(where).is_relative_to(installed)
    assert (stop, size) == ("exit", str(8 * 8 * 3))


# --- the download ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_download_serves_the_built_wheel_as_an_attachment(served: Path,
                                                               wheel: Path) -> None:
    response = Client().get(f"/get-the-agent/{wheel.name}")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert wheel.name in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == wheel.read_bytes()


@pytest.mark.django_db
@pytest.mark.parametrize("filename", [
    "../settings.py", "..%2Fsettings.py", "peermark_agent-9.9.9-py3-none-any.whl",
    "notes.txt", "manage.py", "..", "%2E%2E",
])
def test_the_download_refuses_anything_but_a_built_wheel_with_the_portals_404(
        settings: Any, wheel: Path, filename: str) -> None:
    folder = Path(settings.DATA_DIR) / "agent"
    folder.mkdir()
    shutil.copy(wheel, folder / wheel.name)
    (folder / "notes.txt").write_text("not a wheel")
    (folder / f".{wheel.name}.partial").write_bytes(b"half")

    response = Client().get(f"/get-the-agent/{filename}")

    assert response.status_code == 404
    assert "portal/not_found.html" in [template.name for template in response.templates]


@pytest.mark.django_db
def test_the_view_itself_refuses_paths_partial_files_and_links_out_of_the_folder(
        settings: Any, wheel: Path) -> None:
    folder = Path(settings.DATA_DIR) / "agent"
    folder.mkdir()
    (folder / f".{wheel.name}.partial").write_bytes(b"half")
    (folder / "peermark_agent-0.0.1-py3-none-any.whl").symlink_to(REPO / "manage.py")
    request = RequestFactory().get("/get-the-agent/x")
    request.user = AnonymousUser()

    for name in ("../settings.py", "../../exchange/settings.py", f".{wheel.name}.partial",
                 "peermark_agent-0.0.1-py3-none-any.whl", wheel.name):
        assert agent_download(request, name).status_code == 404, name


# --- the page -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_gives_the_three_commands_with_this_platforms_address(served: Path,
                                                                       wheel: Path) -> None:
    page = Client().get("/get-the-agent/")

    assert page.status_code == 200
    html = page.content.decode()
    assert (f"python3 -m pip install --user http://testserver/get-the-agent/{wheel.name}"
            in html)
    assert "peermark-agent init --platform http://testserver</code>" in html
    assert "peermark-agent login --username YOU</code>" in html
    assert "peermark-agent get WORK_ID" in html
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() in html
    assert f'href="http://testserver/get-the-agent/{wheel.name}"' in html


@pytest.mark.django_db
def test_the_page_fills_in_the_username_of_whoever_is_logged_in(served: Path,
                                                                bob: User) -> None:
    client = Client()
    client.force_login(bob)

    html = client.get("/get-the-agent/").content.decode()

    assert "peermark-agent login --username bob</code>" in html


@pytest.mark.django_db
def test_before_a_build_the_page_says_so_and_how_to_build_it() -> None:
    page = Client().get("/get-the-agent/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "has not built the agent's package yet" in html
    assert "python manage.py build_agent_package" in html
    assert "pip install" not in html
