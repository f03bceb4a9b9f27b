"""A real platform for end-to-end tests: migrated, seeded with the demo data, served by
gunicorn on a loopback port, with (optionally) real Celery worker and beat on Redis."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import ROOT, free_port, running, stop, wait_until


@dataclass
class Platform:
    url: str
    data_dir: Path
    env: dict[str, str]
    logins: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    #: how each process was started, so that a drill can kill it and start it again
    commands: dict[str, list[str]] = field(default_factory=dict)
    full_env: dict[str, str] = field(default_factory=dict)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process (its whole group) and wait for it to end."""
        stop(self.processes[name], sig=sig)

    def restart(self, name: str) -> subprocess.Popen[bytes]:
        """Start a process again as it was first started (its log is appended to)."""
        process = self.processes[name]
        if process.poll() is None:
            stop(process)
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                self.commands[name], cwd=ROOT, env=self.full_env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self.processes[name]

    def books(self) -> list[str]:
        """What ``manage.py check_books`` finds wrong (empty: the books are right)."""
        return list(json.loads(self.manage("check_books", "--json", check=False)
                               .strip().splitlines()[-1]))

    def manage(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.full_env,
            capture_output=True, text=True, timeout=120, check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def query(self, code: str) -> Any:
        """Run Python inside the platform (Django set up); it prints one JSON value."""
        return json.loads(self.manage("shell", "-c", code).strip().splitlines()[-1])

    def api(self, username: str) -> httpx.Client:
        """An API client logged in as ``username`` (one token per user, reused)."""
        if username not in self.tokens:
            response = httpx.post(f"{self.url}/api/v1/auth/tokens/", json={
                "username": username, "password": self.logins[username], "name": "test"})
            response.raise_for_status()
            self.tokens[username] = response.json()["token"]
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {self.tokens[username]}"})


def _database_env(name: str) -> tuple[dict[str, str], Any]:
    """A database of its own: a fresh PostgreSQL database when the suite runs on one
    (dropped afterwards), else SQLite in the platform's data folder."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        return {}, None
    import psycopg

    server = base.rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")

    def drop() -> None:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    return {"DATABASE_URL": f"{server}/{name}"}, drop


@contextlib.contextmanager
def platform(tmp: Path, *, celery: bool = False, piece_size: int = 256 * 1024,
             extra_env: dict[str, str] | None = None, database_url: str | None = None,
             redis_url: str | None = None, asgi: bool = False,
             index: bool = False) -> Iterator[Platform]:
    """Start the platform; with ``celery`` (needs REDIS_URL), a worker and beat too.
    With ``index`` (needs ``celery``), the index fast path too (``python -m peerindex``,
    two processes), offered to agents.
    With ``asgi``, uvicorn serves it (HTTP and the chat rooms' WebSockets) in one process,
    as scripts/run does, instead of gunicorn.

    ``database_url`` and ``redis_url`` point it at servers of its own (the fault
    drills'), instead of a fresh database on the suite's server and the suite's Redis.
    """
    data_dir = tmp / "platform"
    logs = tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    if database_url:
        db_env, drop_db = {"DATABASE_URL": database_url}, None
    else:
        db_env, drop_db = _database_env(f"peermark_e2e_{uuid.uuid4().hex[:10]}")
    env = {
        "PEERMARK_DATA_DIR": str(data_dir), "PEERMARK_PUBLIC_URL": url,
        "PEERMARK_PIECE_SIZE": str(piece_size), "PEERMARK_LOG_LEVEL": "WARNING",
        "PEERMARK_METERING_GRACE_SECONDS": "2", "PEERMARK_JWKS_MAX_AGE": "0",
        # Every agent and helper here logs in from 127.0.0.1: lift the per-address limit.
        "PEERMARK_LOGIN_RATE": "10000/min",
        # Buyers top up through the test payment provider, off unless turned on.
        "PEERMARK_TEST_PAYMENTS": "true",
        "DATABASE_URL": "", "REDIS_URL": "", **db_env, **(extra_env or {}),
    }
    if celery:
        env["REDIS_URL"] = redis_url or os.environ["REDIS_URL"]
        env["PEERMARK_CELERY_EAGER"] = "false"
        env["PEERMARK_TESTPAY_DELAY_SECONDS"] = "0"
    else:
        env["PEERMARK_CELERY_EAGER"] = "true"
    index_port = 0
    if index:
        if not celery:
            raise ValueError("the index fast path needs Redis: platform(celery=True)")
        index_port = free_port()
        env["PEERMARK_INDEX_URL"] = f"http://127.0.0.1:{index_port}"
        env["PEERMARK_INDEX_SECRET"] = secrets.token_hex(32)
    if not env.get("DATABASE_URL"):
        del env["DATABASE_URL"]
    if not env.get("REDIS_URL"):
        del env["REDIS_URL"]
    clean_env = {k: v for k, v in os.environ.items()
                 if k not in ("DATABASE_URL", "REDIS_URL", "PEERMARK_DATA_DIR")}
    full_env = {**clean_env, **env}
    site = Platform(url=url, data_dir=data_dir, env=env, logins={}, logs=logs,
                    full_env=full_env)
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=full_env,
                       check=True, timeout=300)
        site.commands["server"] = [
            sys.executable, "-m", "gunicorn", "exchange.wsgi:application", "--bind",
            f"127.0.0.1:{port}", "--workers", "2", "--threads", "4", "--timeout", "60"]
        if asgi:
            site.commands["server"] = [
                sys.executable, "-m", "uvicorn", "exchange.asgi:application", "--host",
                "127.0.0.1", "--port", str(port), "--workers", "1", "--lifespan", "off",
                "--ws-max-size", "65536", "--ws-per-message-deflate", "false",
                "--log-level", "warning"]
        if celery:
            site.commands["worker"] = [
                sys.executable, "-m", "celery", "-A", "exchange", "worker", "--pool", "solo",
                "--loglevel", "INFO", "--without-heartbeat", "--without-gossip",
                "--without-mingle"]
            site.commands["beat"] = [
                sys.executable, "-m", "celery", "-A", "exchange", "beat", "--loglevel", "INFO",
                "--schedule", str(tmp / "beat-schedule")]
        else:
            site.commands["periodic"] = [sys.executable, "manage.py", "run_periodic_jobs"]
        if index:
            site.commands["index"] = [sys.executable, "-m", "peerindex", "--port",
                                      str(index_port), "--workers", "2"]
        with contextlib.ExitStack() as stack:
            for name, command in site.commands.items():
                site.processes[name] = stack.enter_context(running(
                    command, env=full_env, log=logs / f"{name}.log", inherit=False))
            wait_until(lambda: _healthy(url), timeout=60, what="the platform to start",
                       log=logs / "server.log")
            if index:
                wait_until(lambda: _healthy(env["PEERMARK_INDEX_URL"], "/index/v1/health"),
                           timeout=60, what="the index to start", log=logs / "index.log")
            subprocess.run([sys.executable, "manage.py", "demo_data", "--quiet"], cwd=ROOT,
                           env=full_env, check=True, timeout=300)
            site.logins = json.loads((data_dir / "demo_logins.json").read_text())
            yield site
    finally:
        for process in site.processes.values():
            stop(process)
        if drop_db is not None:
            drop_db()


def _healthy(url: str, path: str = "/healthz") -> bool:
    try:
        return httpx.get(f"{url}{path}", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop_platform(site: Platform) -> None:
    stop(site.processes["server"])
