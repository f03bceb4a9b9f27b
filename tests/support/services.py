"""Private PostgreSQL and Redis servers that a fault drill may kill and restart without
disturbing anything else on the machine, and small probes of real processes.

Both live in a temporary folder of their own on a free port, and are removed when the
drill ends. PostgreSQL runs as the ``postgres`` OS user (``initdb`` refuses root) with
``fsync=off``: a killed server loses nothing that way (the kernel keeps what it wrote),
only a crash of the machine would. Redis runs as production does for the metering
stream: AOF on, ``appendfsync always`` (docs/OPERATIONS.md, "Redis").
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.support.processes import free_port, wait_until

PG_BIN = Path(os.environ.get("PEERMARK_PG_BIN", "/usr/lib/postgresql/15/bin"))


def missing_tools() -> str:
    """Why the drills cannot run here ("" when they can)."""
    if os.geteuid() != 0:
        return "the fault drills run as root (tmpfs mounts, a PostgreSQL cluster as postgres)"
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"no {PG_BIN / tool} (set PEERMARK_PG_BIN to PostgreSQL's bin folder)"
    if shutil.which("redis-server") is None:
        return "no redis-server on PATH"
    if shutil.which("runuser") is None:
        return "no runuser (util-linux)"
    return ""


def _as_postgres(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of its own: ``start``, ``stop``, ``restart``, ``connect``."""

    root: Path
    port: int = field(default_factory=free_port)
    database: str = "peermark"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def init(self) -> None:
        result = _as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--no-sync", timeout=120)
        if result.returncode != 0:
            raise AssertionError(f"initdb failed:\n{result.stderr[-3000:]}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200")
        result = _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                              "-o", options, "-w", "-t", "120", "start", timeout=150)
        if result.returncode != 0:
            raise AssertionError(f"pg_ctl start failed:\n{result.stdout}{result.stderr}\n"
                                 f"{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self, *, mode: str = "fast") -> None:
        """``fast`` aborts open transactions and disconnects clients, then shuts down
        cleanly; ``immediate`` kills every server process at once, like a crash (the
        next start replays the WAL)."""
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                     "-t", "60", "stop", timeout=90)

    def restart(self, *, mode: str = "immediate") -> None:
        self.stop(mode=mode)
        self.start()

    def connect(self, database: str | None = None) -> psycopg.Connection[Any]:
        """A psycopg connection in autocommit mode (the caller closes it)."""
        return psycopg.connect(
            f"postgres://postgres@127.0.0.1:{self.port}/{database or self.database}",
            autocommit=True, connect_timeout=10)

    def sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        """Run one statement on a fresh connection; its rows, if it returns any."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(statement, params or None)
            return list(cursor.fetchall()) if cursor.description else []


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    # Not under pytest's temporary folder: the postgres user must be able to reach it.
    root = Path(tempfile.mkdtemp(prefix="peermark-pg-"))
    shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(root)
    try:
        server.init()
        server.start()
        with server.connect("postgres") as conn:
            conn.execute(f"CREATE DATABASE {server.database}")
        yield server
    finally:
        server.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class PrivateRedis:
    """A redis-server of its own on a free loopback port, with AOF (``appendfsync`` as
    given) unless ``appendonly`` is off: a test may kill, pause, shut down and start it
    again on the same folder and port."""

    root: Path
    fsync: str = "always"
    appendonly: bool = True
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.root / "redis.log"

    def start(self) -> None:
        persistence = (["--appendonly", "yes", "--appendfsync", self.fsync] if self.appendonly
                       else ["--appendonly", "no"])
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.root), *persistence,
             "--save", "", "--daemonize", "no", "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(self._started, timeout=30, what="redis-server to answer", log=self.log)

    def _started(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError("redis-server exited:\n"
                                 + self.log.read_text(errors="replace")[-3000:])
        return self.ping()

    def conn(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    def ping(self) -> bool:
        import redis

        try:
            with self.conn() as conn:
                return bool(conn.ping())
        except redis.RedisError:  # refused, or still loading its append-only file
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the server (SIGKILL: no chance to write anything more)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=30)

    def pause(self) -> None:
        """SIGSTOP: the server is there, its sockets open, and answers nothing."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def shutdown(self) -> None:
        """``SHUTDOWN``: Redis writes what it holds and exits (the orderly restart)."""
        import redis

        with contextlib.suppress(redis.ConnectionError), self.conn() as conn:
            conn.shutdown()
        assert self.process is not None
        self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(OSError):
                os.kill(self.process.pid, signal.SIGCONT)  # a stopped server would ignore TERM
            self.kill(signal.SIGTERM)


@contextlib.contextmanager
def private_redis(*, fsync: str = "always") -> Iterator[PrivateRedis]:
    root = Path(tempfile.mkdtemp(prefix="peermark-redis-"))
    server = PrivateRedis(root, fsync=fsync)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def tmpfs(folder: Path, *, size_bytes: int) -> Iterator[Path]:
    """A RAM file system of ``size_bytes`` mounted on ``folder`` (root only)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs",
                    str(folder)], check=True, timeout=30)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, timeout=30)


# --- real processes -------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The direct children of a process (e.g. gunicorn's workers under its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def pid_of_local_port(port: int) -> int | None:
    """The process that owns the TCP socket bound locally to ``port`` on 127.0.0.1 (the
    client end of a database connection, say), from /proc."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return int(entry.name)
    return None
