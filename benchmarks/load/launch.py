"""The platform as production runs it (docs/OPERATIONS.md, "Running in production"), on
loopback: a database of its own on PostgreSQL, a Redis of its own, ``manage.py migrate``,
gunicorn with the project's settings, one Celery worker and one beat."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Options:
    """How the platform runs. The defaults are the production commands' own."""

    pg_server: str = "postgres://postgres@127.0.0.1:5432"
    database: str = "peermark_bench_load"
    redis_url: str = ""  # empty: start a private redis-server (AOF, appendfsync everysec)
    gunicorn_workers: int = 4
    gunicorn_threads: int = 1
    worker_processes: int = 0  # Celery worker's --concurrency; 0: Celery's default (cores)
    grace_seconds: int = 30  # PEERMARK_METERING_GRACE_SECONDS, production's default
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass
class Platform:
    url: str
    env: dict[str, str]
    logs: Path
    database_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def manage(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env,
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {args[0]} failed ({result.returncode}):\n"
                               f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result.stdout + result.stderr

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return list(conn.execute(query, params).fetchall())

    def alive(self) -> list[str]:
        """The names of the platform's processes that have died."""
        return [name for name, process in self.processes.items() if process.poll() is not None]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each of the platform's processes with their children
        (by process group). PostgreSQL is not among them: its server is shared, and its
        backends come and go with the connections."""
        groups = {process.pid: name for name, process in self.processes.items()}
        used: dict[str, float] = dict.fromkeys(self.processes, 0.0)
        tick = os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            name = groups.get(int(fields[2]))  # the process group
            if name is not None:
                used[name] += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        return used

    def log_problems(self) -> dict[str, int]:
        """Tracebacks, errors and task retries in the platform's logs."""
        found: dict[str, int] = {}
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace")
            for marker in ("Traceback", "ERROR", "CRITICAL", "Retry in", "WORKER TIMEOUT"):
                count = text.count(marker)
                if count:
                    found[f"{path.stem}: {marker}"] = count
        return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop processes this module started, each with its children (its own process
    group): all asked at once, then waited for, killed if they take over 20 s."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _wait_for(check: Any, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def _healthy(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _redis_up(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running(work_dir: Path, options: Options) -> Iterator[Platform]:
    """A fresh platform in ``work_dir``; everything it started is stopped, and its
    database dropped, on the way out."""
    import psycopg

    logs = work_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = f"{options.pg_server}/{options.database}"
    with psycopg.connect(f"{options.pg_server}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {options.database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {options.database}")
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        redis_url = options.redis_url
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("PEERMARK_", "DATABASE_URL", "REDIS_URL", "CELERY_"))}
        if not redis_url:
            redis_port = free_port()
            (work_dir / "redis").mkdir(exist_ok=True)
            processes["redis"] = _start(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(redis_port),
                 "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                 "--dir", str(work_dir / "redis")], base_env, logs / "redis.log")
            _wait_for(lambda: _redis_up(redis_port), seconds=20, what="redis-server")
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        env = {
            **base_env,
            "DJANGO_SETTINGS_MODULE": "exchange.settings",
            "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "PEERMARK_DATA_DIR": str(work_dir / "data"), "PEERMARK_PUBLIC_URL": url,
            # Top-ups need a payment provider; the test provider is the only one built in.
            "PEERMARK_TEST_PAYMENTS": "true",
            "PEERMARK_METERING_GRACE_SECONDS": str(options.grace_seconds),
            **options.extra_env,
        }
        platform = Platform(url=url, env=env, logs=logs, database_url=database_url,
                            processes=processes)
        # The web and task workers boot (imports, no database) while the schema is made;
        # beat, whose jobs read the tables, starts once it is.
        server = [sys.executable, "-m", "gunicorn", "exchange.wsgi:application", "--bind",
                  f"127.0.0.1:{port}", "--workers", str(options.gunicorn_workers)]
        if options.gunicorn_threads > 1:
            server += ["--threads", str(options.gunicorn_threads)]
        processes["server"] = _start(server, env, logs / "server.log")
        worker = [sys.executable, "-m", "celery", "-A", "exchange", "worker", "--loglevel",
                  "INFO"]
        if options.worker_processes:
            worker += ["--concurrency", str(options.worker_processes)]
        processes["worker"] = _start(worker, env, logs / "worker.log")
        platform.manage("migrate", "--noinput", "-v0")
        processes["beat"] = _start([sys.executable, "-m", "celery", "-A", "exchange", "beat",
                                    "--loglevel", "INFO", "--schedule",
                                    str(work_dir / "beat-schedule")], env, logs / "beat.log")
        _wait_for(lambda: _healthy(url), seconds=60, what="the platform to answer /healthz")
        yield platform
    finally:
        _stop([processes[name] for name in ("beat", "worker", "server") if name in processes])
        if "redis" in processes:
            _stop([processes["redis"]])
        with psycopg.connect(f"{options.pg_server}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {options.database} WITH (FORCE)")
