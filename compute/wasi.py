"""The sandbox's own WASI preview 1 surface: a dozen host functions, nothing ambient.

Why our own rather than wasmtime's WASI (``WasiConfig`` + ``Linker.define_wasi``):

* **Determinism.** wasmtime's WASI draws ``random_get`` from the host's entropy and
  answers ``clock_time_get`` with the host's clocks; ``WasiConfig`` can seed neither.
  Two honest devices would then compute different outputs. Here ``random_get`` is a
  deterministic stream derived from the job and unit ids, and there is no clock.
* **A closed allow-list.** ``define_wasi`` defines every preview 1 function (files,
  sockets, polling); a module that imports one links fine and is stopped, at best,
  when it calls it. Here the linker holds only the functions below, and
  ``module_check`` refuses any other import before anything runs.
* **Bounded I/O.** Standard output is counted as it is written and the unit is
  stopped the moment it passes its cap; standard error keeps only its tail; standard
  input is the unit's bytes in memory. Nothing touches the file system.

What each allowed function does (``ALLOWED``):

=====================  ============================================================
args_sizes_get, args_get        the job's argv
environ_sizes_get, environ_get  an empty environment
fd_read                         fd 0 reads the unit's input; others: EBADF
fd_write                        fd 1 is the output (capped), fd 2 the stderr tail
fd_close                        fds 0-2 close; others: EBADF
fd_fdstat_get                   fds 0-2 are open streams, not terminals (so C's stdout
                                is fully buffered); others: EBADF
fd_seek                         fds 0-2: ESPIPE (streams); others: EBADF
fd_prestat_get, fd_prestat_dir_name   EBADF: no preopened directories, no file system
proc_exit                       ends the unit with its exit status
random_get                      the unit's deterministic random stream
=====================  ============================================================

These are exactly what wasi-libc's start-up and stdio need (a clang-built module
imports a subset: ``fd_prestat_*`` only when it opens files, ``args_*`` only when
``main`` takes arguments). Host functions burn no fuel, so each does bounded work
proportional to what the module asked for (and that is bounded by its memory).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

from wasmtime import Caller, FuncType, Linker, Memory, ValType

WASI_MODULE = "wasi_snapshot_preview1"

# WASI preview 1 errno values (wasi_snapshot_preview1.witx).
ERRNO_SUCCESS = 0
ERRNO_BADF = 8
ERRNO_FAULT = 21
ERRNO_INVAL = 28
ERRNO_SPIPE = 69

FILETYPE_UNKNOWN = 0
RIGHT_FD_READ = 1 << 1
RIGHT_FD_WRITE = 1 << 6
IOV_MAX = 1024  # the most iovecs one fd_read/fd_write may pass (POSIX's usual IOV_MAX)
_U32 = 0xFFFFFFFF

_I32 = "i32"
_I64 = "i64"

#: every function the sandbox provides: name -> (parameter types, result types)
ALLOWED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "args_get": ((_I32, _I32), (_I32,)),
    "args_sizes_get": ((_I32, _I32), (_I32,)),
    "environ_get": ((_I32, _I32), (_I32,)),
    "environ_sizes_get": ((_I32, _I32), (_I32,)),
    "fd_close": ((_I32,), (_I32,)),
    "fd_fdstat_get": ((_I32, _I32), (_I32,)),
    "fd_prestat_dir_name": ((_I32, _I32, _I32), (_I32,)),
    "fd_prestat_get": ((_I32, _I32), (_I32,)),
    "fd_read": ((_I32, _I32, _I32, _I32), (_I32,)),
    "fd_seek": ((_I32, _I64, _I32, _I32), (_I32,)),
    "fd_write": ((_I32, _I32, _I32, _I32), (_I32,)),
    "proc_exit": ((_I32,), ()),
    "random_get": ((_I32, _I32), (_I32,)),
}

#: why well-known WASI functions are refused, for a module checker's message
REFUSED_BECAUSE: dict[str, str] = {
    "clock_time_get": "there is no clock: a result must not depend on when or where it ran",
    "clock_res_get": "there is no clock: a result must not depend on when or where it ran",
    "poll_oneoff": "there is nothing to wait for: no clock, no events",
    "sched_yield": "there is no scheduler to yield to",
    "proc_raise": "signals are not part of the sandbox",
    "sock_accept": "there is no network",
    "sock_recv": "there is no network",
    "sock_send": "there is no network",
    "sock_shutdown": "there is no network",
}


class ProcExit(Exception):  # noqa: N818  (control flow, not an error)
    """Raised by ``proc_exit`` to unwind the unit; ``code`` is its exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exit status {code}")
        self.code = code


class OutputTooLarge(Exception):  # noqa: N818  (control flow, not an error)
    """Raised by ``fd_write`` when standard output would pass its cap."""


class _Fault(Exception):  # noqa: N818  (control flow, not an error)
    """A pointer or length outside the module's memory: answered with EFAULT."""


def random_seed(job_id: str, unit_id: str) -> bytes:
    """The unit's random seed: a hash of its job and unit ids, length-prefixed so that
    no two (job, unit) pairs share one."""
    job, unit = job_id.encode("utf-8"), unit_id.encode("utf-8")
    return hashlib.sha256(
        b"peermark compute random_get v1\0"
        + len(job).to_bytes(4, "big") + job
        + len(unit).to_bytes(4, "big") + unit
    ).digest()  # fmt: skip


class RandomStream:
    """``random_get``'s answers: call ``i`` of length ``n`` gets SHAKE-256(seed || i)[:n].

    Deterministic for a given unit and sequence of calls (which is itself
    deterministic), and fast for any length (hashlib's XOF runs in C).
    """

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._calls = 0

    def take(self, size: int) -> bytes:
        block = hashlib.shake_256(self._seed + self._calls.to_bytes(8, "big")).digest(size)
        self._calls += 1
        return block


class GuestIO:
    """The state behind the host functions for one unit: its streams, argv and random.

    ``define(linker)`` installs the functions of ``ALLOWED`` (and only those).
    """

    def __init__(
        self,
        *,
        stdin: bytes,
        args: tuple[str, ...],
        random: RandomStream,
        output_cap: int,
        stderr_tail_cap: int,
    ) -> None:
        self._stdin = stdin
        self._stdin_offset = 0
        self._args = [a.encode("utf-8") + b"\0" for a in args]
        self._random = random
        self._output_cap = output_cap
        self._stderr_tail_cap = stderr_tail_cap
        self.output = bytearray()
        self.stderr_tail = bytearray()
        self._closed: set[int] = set()

    # --- memory access, bounds-checked (wasm pointers arrive as signed i32) ----------

    @staticmethod
    def _memory(caller: Caller) -> Memory:
        memory = caller.get("memory")
        if not isinstance(memory, Memory):
            raise _Fault("the module exports no memory")
        return memory

    def _read(self, caller: Caller, pointer: int, size: int) -> bytes:
        memory = self._memory(caller)
        start = pointer & _U32
        if start + size > memory.data_len(caller):
            raise _Fault
        return bytes(memory.read(caller, start, start + size)) if size else b""

    def _write(self, caller: Caller, pointer: int, data: bytes) -> None:
        memory = self._memory(caller)
        start = pointer & _U32
        if start + len(data) > memory.data_len(caller):
            raise _Fault
        if data:
            memory.write(caller, data, start)

    def _iovecs(self, caller: Caller, pointer: int, count: int) -> list[tuple[int, int]]:
        count &= _U32
        if count > IOV_MAX:
            raise ValueError("too many iovecs")
        raw = self._read(caller, pointer, 8 * count)
        return [struct.unpack_from("<II", raw, 8 * i) for i in range(count)]

    # --- the functions ------------------------------------------------------------

    def args_sizes_get(self, caller: Caller, argc_ptr: int, size_ptr: int) -> None:
        self._write(caller, argc_ptr, struct.pack("<I", len(self._args)))
        self._write(caller, size_ptr, struct.pack("<I", sum(len(a) for a in self._args)))

    def args_get(self, caller: Caller, argv_ptr: int, buffer_ptr: int) -> None:
        pointers = []
        offset = buffer_ptr & _U32
        for arg in self._args:
            pointers.append(offset)
            offset += len(arg)
        self._write(caller, argv_ptr, struct.pack(f"<{len(pointers)}I", *pointers))
        self._write(caller, buffer_ptr, b"".join(self._args))

    def environ_sizes_get(self, caller: Caller, count_ptr: int, size_ptr: int) -> None:
        self._write(caller, count_ptr, struct.pack("<I", 0))
        self._write(caller, size_ptr, struct.pack("<I", 0))

    def environ_get(self, caller: Caller, environ_ptr: int, buffer_ptr: int) -> None:
        """Nothing to write: the environment is empty."""

    def _stream(self, fd: int) -> bool:
        return 0 <= fd <= 2 and fd not in self._closed

    def fd_read(self, caller: Caller, fd: int, iovs: int, count: int, nread_ptr: int) -> int:
        if fd != 0 or not self._stream(fd):
            return ERRNO_BADF
        try:
            vectors = self._iovecs(caller, iovs, count)
        except ValueError:
            return ERRNO_INVAL
        total = 0
        for buffer, length in vectors:
            chunk = self._stdin[self._stdin_offset : self._stdin_offset + length]
            self._write(caller, buffer, chunk)
            self._stdin_offset += len(chunk)
            total += len(chunk)
            if len(chunk) < length:
                break
        self._write(caller, nread_ptr, struct.pack("<I", total))
        return ERRNO_SUCCESS

    def fd_write(self, caller: Caller, fd: int, iovs: int, count: int, written_ptr: int) -> int:
        if fd not in (1, 2) or not self._stream(fd):
            return ERRNO_BADF
        try:
            vectors = self._iovecs(caller, iovs, count)
        except ValueError:
            return ERRNO_INVAL
        size = self._memory(caller).data_len(caller)
        if any((buffer & _U32) + length > size for buffer, length in vectors):
            raise _Fault
        total = sum(length for _, length in vectors)
        if fd == 1:
            # Checked before copying anything: 1,024 iovecs over the whole memory must not
            # make the host copy gigabytes.
            if len(self.output) + total > self._output_cap:
                raise OutputTooLarge(
                    f"standard output would pass its cap of {self._output_cap:,} bytes"
                )
            for buffer, length in vectors:
                self.output += self._read(caller, buffer, length)
        else:
            # Only the tail is kept, so only the tail is read: walk back from the last iovec.
            wanted, parts = self._stderr_tail_cap, []
            for buffer, length in reversed(vectors):
                if wanted <= 0:
                    break
                take = min(length, wanted)
                parts.append(self._read(caller, buffer + length - take, take))
                wanted -= take
            self.stderr_tail += b"".join(reversed(parts))
            excess = len(self.stderr_tail) - self._stderr_tail_cap
            if excess > 0:
                del self.stderr_tail[:excess]
        self._write(caller, written_ptr, struct.pack("<I", total & _U32))
        return ERRNO_SUCCESS

    def fd_close(self, caller: Caller, fd: int) -> int:
        if not self._stream(fd):
            return ERRNO_BADF
        self._closed.add(fd)
        return ERRNO_SUCCESS

    def fd_fdstat_get(self, caller: Caller, fd: int, stat_ptr: int) -> int:
        if not self._stream(fd):
            return ERRNO_BADF
        rights = RIGHT_FD_READ if fd == 0 else RIGHT_FD_WRITE
        # struct fdstat: u8 filetype, u16 flags (at 2), u64 rights base (at 8),
        # u64 rights inheriting (at 16). Not a character device: not a terminal.
        self._write(caller, stat_ptr, struct.pack("<BxHxxxxQQ", FILETYPE_UNKNOWN, 0, rights, 0))
        return ERRNO_SUCCESS

    def fd_seek(self, caller: Caller, fd: int, offset: int, whence: int, result_ptr: int) -> int:
        return ERRNO_SPIPE if self._stream(fd) else ERRNO_BADF

    def fd_prestat_get(self, caller: Caller, fd: int, prestat_ptr: int) -> int:
        return ERRNO_BADF  # no preopened directories: wasi-libc stops looking at the first

    def fd_prestat_dir_name(self, caller: Caller, fd: int, path: int, length: int) -> int:
        return ERRNO_BADF

    def proc_exit(self, caller: Caller, code: int) -> None:
        raise ProcExit(code & _U32)

    def random_get(self, caller: Caller, buffer: int, length: int) -> None:
        length &= _U32
        memory = self._memory(caller)
        if (buffer & _U32) + length > memory.data_len(caller):
            raise _Fault
        self._write(caller, buffer, self._random.take(length))

    # --- linking --------------------------------------------------------------------

    def define(self, linker: Linker) -> None:
        """Define every allowed function in ``linker`` under ``wasi_snapshot_preview1``."""
        types = {_I32: ValType.i32(), _I64: ValType.i64()}
        for name, (params, results) in ALLOWED.items():
            function_type = FuncType([types[p] for p in params], [types[r] for r in results])
            linker.define_func(
                WASI_MODULE, name, function_type, self._host(name, bool(results)),
                access_caller=True,
            )  # fmt: skip

    def _host(self, name: str, returns_errno: bool) -> Callable[..., Any]:
        method: Callable[..., Any] = getattr(self, name)

        def call(caller: Caller, *params: int) -> int | None:
            try:
                result = method(caller, *params)
            except _Fault:
                if not returns_errno:
                    raise
                return ERRNO_FAULT
            if returns_errno:
                return ERRNO_SUCCESS if result is None else int(result)
            return None

        return call
