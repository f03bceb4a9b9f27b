"""What the owner lets ``contribute`` use, and whether now is a time to use it.

Declared limits (``DeclaredLimits``), sent to the platform when the device opts in:

- ``cores``: units run at once (one worker process each); default half the CPUs, at
  least one;
- ``memory_mib``: the most memory one unit may have; the platform gives this device
  only jobs whose memory cap fits;
- ``hours_per_day``: how long a day the agent may keep units running. Counted as the
  wall-clock time during which at least one unit was running (the time the machine
  was busy for others, whatever the number of cores), per local calendar day, in a
  small ledger in the agent's folder (``UsageLedger``) so that a restart does not
  reset it. Once the day's hours are used, no new unit is fetched until midnight;
- ``only_when_idle``: fetch units only while the machine is not otherwise in use.

What "idle" can honestly mean here, on Linux (``Conditions``):

- **Others' load.** The 1-minute load average (``/proc/loadavg``) less the units
  this agent is running now must be below ``IDLE_LOAD`` (0.5 a CPU, at least 0.5).
  The load average is a decaying average over about a minute, so it lags: for a
  minute after our own units stop it still counts some of them, and a burst of
  someone else's work shows late. It is a coarse "is something else keeping the CPUs
  busy", not a measurement.
- **Recent input at a terminal.** The last access time of the terminal devices
  (``/dev/pts/*``, ``/dev/tty1`` ...) is the time someone last typed there (what ``w``
  shows as IDLE); input within ``IDLE_INPUT_SECONDS`` (5 min) counts as in use.
  Input to a graphical session (X11, Wayland) is **not** detected: that needs the
  desktop's own idle service, which this agent does not talk to.
- **Battery.** Always checked (not only with ``only_when_idle``): if the machine has
  a mains supply in ``/sys/class/power_supply`` (type ``Mains``, or a supply named
  ``AC*``/``ADP*`` with an ``online`` file) and none of them is online, it runs on
  battery and no unit is fetched. A machine that shows no mains supply at all (a
  desktop, most virtual machines) is taken to be on mains.

Elsewhere (no ``/proc/loadavg``, no ``/sys``) nothing is detected and nothing pauses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config import write_private

MIB = 1024 * 1024
MAX_CORES = 256
#: the platform's bounds on a unit's memory: 64 KiB to 4 GiB (whole MiB here)
MIN_MEMORY_MIB, MAX_MEMORY_MIB = 1, 4096
DEFAULT_MEMORY_MIB = 256
#: others' load (1-minute load average less our running units) that counts as busy, per CPU
IDLE_LOAD_PER_CPU = 0.5
#: input at a terminal this recent means someone is using the machine
IDLE_INPUT_SECONDS = 300.0
#: days the usage ledger keeps
LEDGER_DAYS = 14


def default_cores(cpus: int | None = None) -> int:
    """Half the CPUs, at least one."""
    count = os.cpu_count() if cpus is None else cpus
    return max(1, (count or 1) // 2)


def _whole(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of {what}: {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"give {low} to {high} {what}, not {value}")
    return value


def cores_arg(text: str) -> int:
    return _whole(text, "cores", 1, MAX_CORES)


def memory_mib_arg(text: str) -> int:
    return _whole(text, "MiB", MIN_MEMORY_MIB, MAX_MEMORY_MIB)


def hours_arg(text: str) -> int:
    return _whole(text, "hours", 1, 24)


def count_arg(text: str) -> int:
    return _whole(text, "units", 1, 1_000_000)


def batch_arg(text: str) -> int:
    return _whole(text, "units", 1, 256)


@dataclass(frozen=True)
class DeclaredLimits:
    """What the owner allows; the platform is told the same when the device opts in."""

    cores: int
    memory_mib: int = DEFAULT_MEMORY_MIB
    hours_per_day: int = 24
    only_when_idle: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.cores <= MAX_CORES:
            raise ValueError(f"cores is from 1 to {MAX_CORES}")
        if not MIN_MEMORY_MIB <= self.memory_mib <= MAX_MEMORY_MIB:
            raise ValueError(f"memory is from {MIN_MEMORY_MIB} to {MAX_MEMORY_MIB} MiB")
        if not 1 <= self.hours_per_day <= 24:
            raise ValueError("hours a day is from 1 to 24")

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB


# --- the day's hours -----------------------------------------------------------------------


def local_day(timestamp: float) -> str:
    """The local calendar day of ``timestamp`` (what "a day" means to the owner)."""
    return time.strftime("%Y-%m-%d", time.localtime(timestamp))


def next_local_midnight(timestamp: float) -> float:
    """When the local day of ``timestamp`` ends."""
    today = dt.datetime.fromtimestamp(timestamp).astimezone()
    tomorrow = (today + dt.timedelta(days=1)).date()
    return dt.datetime.combine(tomorrow, dt.time(), tzinfo=today.tzinfo).timestamp()


class UsageLedger:
    """Seconds of running units per local day, kept in a small JSON file (owner-only).

    A file that cannot be read is started again (the ledger is a courtesy to the owner,
    not money); a day older than ``LEDGER_DAYS`` is forgotten."""

    def __init__(self, path: Path, *, hours_per_day: int) -> None:
        self.path = path
        self.allowed_seconds = hours_per_day * 3600.0
        self._days: dict[str, float] = self._load()

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(day): float(seconds) for day, seconds in data.items()
                if re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(day))
                and isinstance(seconds, int | float) and seconds >= 0}

    def used(self, now: float) -> float:
        return self._days.get(local_day(now), 0.0)

    def left(self, now: float) -> float:
        return max(0.0, self.allowed_seconds - self.used(now))

    def used_up(self, now: float) -> bool:
        return self.left(now) <= 0

    def add(self, seconds: float, now: float) -> None:
        """Count ``seconds`` of running units against the day of ``now``."""
        if seconds <= 0:
            return
        day = local_day(now)
        self._days[day] = self._days.get(day, 0.0) + seconds
        for old in sorted(self._days)[:-LEDGER_DAYS]:
            del self._days[old]

    def save(self) -> None:
        data = {day: round(seconds, 3) for day, seconds in sorted(self._days.items())}
        write_private(self.path, json.dumps(data, indent=1).encode())


# --- what the machine is doing ---------------------------------------------------------------


def on_battery(power_supply: Path = Path("/sys/class/power_supply")) -> bool:
    """Whether the machine runs on battery: it has a mains supply and none is online."""
    try:
        supplies = sorted(power_supply.iterdir())
    except OSError:
        return False
    mains_online: list[bool] = []
    for supply in supplies:
        kind = _read(supply / "type")
        online = _read(supply / "online")
        if online is None:
            continue
        if kind == "Mains" or (kind is None and supply.name.upper().startswith(("AC", "ADP"))):
            mains_online.append(online == "1")
    return bool(mains_online) and not any(mains_online)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def load_average(proc_loadavg: Path = Path("/proc/loadavg")) -> float | None:
    """The 1-minute load average, or None where there is none to read."""
    text = _read(proc_loadavg)
    if not text:
        return None
    try:
        return float(text.split()[0])
    except ValueError:
        return None


def seconds_since_terminal_input(dev: Path = Path("/dev"), *, now: float) -> float | None:
    """Seconds since someone last typed at a terminal of this machine (the newest access
    time of ``/dev/pts/*`` and ``/dev/ttyN``), or None where there is none to see."""
    newest: float | None = None
    candidates = [*sorted((dev / "pts").glob("[0-9]*")), *sorted(dev.glob("tty[0-9]*"))]
    for path in candidates:
        try:
            accessed = path.stat().st_atime
        except OSError:
            continue
        newest = accessed if newest is None else max(newest, accessed)
    return None if newest is None else max(0.0, now - newest)


@dataclass(frozen=True)
class Pause:
    """Why no unit is fetched now, and when to look again (a timestamp)."""

    reason: str  # "hours-used", "on-battery", "machine-busy", "user-active"
    detail: str
    until: float


@dataclass
class Conditions:
    """The checks made before each batch. Paths are parameters so that tests can give
    a fake ``/sys``, ``/proc`` and ``/dev``."""

    limits: DeclaredLimits
    ledger: UsageLedger
    power_supply: Path = Path("/sys/class/power_supply")
    proc_loadavg: Path = Path("/proc/loadavg")
    dev: Path = Path("/dev")
    cpus: int = os.cpu_count() or 1
    recheck_seconds: float = 30.0

    @property
    def idle_load(self) -> float:
        return max(0.5, IDLE_LOAD_PER_CPU * self.cpus)

    def pause(self, *, now: float, running: int,
              clock_to_midnight: Callable[[float], float] = next_local_midnight
              ) -> Pause | None:
        """Why not to fetch work now (None: go ahead). ``running``: our units running."""
        if self.ledger.used_up(now):
            return Pause("hours-used", f"today's {self.limits.hours_per_day} h are used up",
                         clock_to_midnight(now))
        later = now + self.recheck_seconds
        if on_battery(self.power_supply):
            return Pause("on-battery", "the machine runs on battery", later)
        if not self.limits.only_when_idle:
            return None
        load = load_average(self.proc_loadavg)
        if load is not None and load - running >= self.idle_load:
            return Pause("machine-busy", f"others' load is {max(load - running, 0):.2f} "
                                         f"(idle below {self.idle_load:.2f})", later)
        typed = seconds_since_terminal_input(self.dev, now=now)
        if typed is not None and typed < IDLE_INPUT_SECONDS:
            return Pause("user-active", f"someone typed at a terminal {typed:.0f} s ago",
                         min(later, now + IDLE_INPUT_SECONDS - typed))
        return None
