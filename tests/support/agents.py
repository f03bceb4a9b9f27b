"""Desktop agents as real processes: the CLI as a user would type it, and daemons."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import ROOT, free_port, running, wait_until


class AgentProcess:
    def __init__(self, tmp: Path, name: str, platform_url: str) -> None:
        self.name = name
        self.home = tmp / f"agent-{name}"
        self.platform_url = platform_url
        self.port = free_port()
        self.log = tmp / "logs" / f"agent-{name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "agent", "--data-dir", str(self.home), "--json",
                *args]

    def run(self, *args: str, stdin: str | None = None, check: bool = True,
            timeout: float = 180) -> Any:
        result = subprocess.run(self._command(*args), cwd=ROOT, input=stdin, text=True,
                                capture_output=True, timeout=timeout, check=False,
                                env=_agent_env())
        with self.log.open("a") as log:
            log.write(f"$ {' '.join(args)}\n{result.stdout}\n{result.stderr}\n")
        if check and result.returncode != 0:
            raise AssertionError(f"agent {self.name} {' '.join(args)} failed "
                                 f"({result.returncode}):\n{result.stderr[-3000:]}")
        if result.returncode != 0:
            return result
        return json.loads(result.stdout) if result.stdout.strip() else None

    def start(self, *args: str, stderr: bool = False) -> subprocess.Popen[bytes]:
        """Start a command in the background (for killing it mid-way); with ``stderr``,
        its error output is piped too (to read what the user would see)."""
        return subprocess.Popen(self._command(*args), cwd=ROOT, env=_agent_env(),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE if stderr else self.log.open("ab"),
                                start_new_session=True)

    def setup(self, username: str, password: str) -> str:
        """init + login: device keys made and registered; returns the device id."""
        self.run("init", "--platform", self.platform_url, "--name", self.name,
                 "--port", str(self.port))
        self.run("login", "--username", username, "--password-stdin", stdin=password + "\n")
        return str(self.run("status")["device_id"])

    @contextlib.contextmanager
    def serving(self, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
        with running(self._command("serve", "--port", str(self.port), *extra),
                     env=_agent_env(), log=self.log) as process:
            wait_until(lambda: _status(self.url) is not None, timeout=30,
                       what=f"agent {self.name} to serve", log=self.log)
            # Its holdings reach the platform's index just after it starts listening: a
            # buyer asking before then would not find it. An agent the platform cannot
            # hear from (a Gnutella-only test) never says so; it is not waited for long.
            with contextlib.suppress(TimeoutError, AssertionError):
                wait_until(lambda: bool((_status(self.url) or {}).get("announced")),
                           timeout=10, what=f"agent {self.name} to announce", log=self.log)
            yield process


def _status(url: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{url}/v1/status", timeout=1)
    except httpx.HTTPError:
        return None
    return dict(response.json()) if response.status_code == 200 else None


def _agent_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_module(agent: AgentProcess, module: str, *args: str) -> subprocess.Popen[bytes]:
    """Start ``python -m MODULE --data-dir HOME --json ARGS`` for this agent's folder in the
    background (its own session, so that a kill reaches its worker processes too): for
    programs that run the agent's own CLI with something changed (a cheating contributor)."""
    command = [sys.executable, "-m", module, "--data-dir", str(agent.home), "--json", *args]
    return subprocess.Popen(command, cwd=ROOT, env=_agent_env(), stdout=subprocess.PIPE,
                            stderr=agent.log.open("ab"), start_new_session=True)


def contribute(agent: AgentProcess, *args: str,
               module: str = "agent") -> subprocess.Popen[bytes]:
    """``contribute ARGS`` in the background; its final JSON summary is on its stdout."""
    return start_module(agent, module, "contribute", *args)


def summary_of(process: subprocess.Popen[bytes], *, timeout: float) -> dict[str, Any]:
    """Wait for a background ``contribute`` and read its JSON summary."""
    out, _ = process.communicate(timeout=timeout)
    text = out.decode()
    assert text.strip(), f"no summary (exit status {process.returncode})"
    return dict(json.loads(text))
