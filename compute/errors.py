"""The exceptions the compute sandbox raises.

A unit that misbehaves (loops, traps, exhausts memory, floods its output) is not an
exception: it is a ``UnitResult`` with a stop reason, because that outcome is what
devices compare and sign. Exceptions are for what the caller got wrong or what the
sandbox itself could not do.
"""

from __future__ import annotations


class ComputeError(Exception):
    """Base class: any failure reported by ``compute``."""


class BadRequestError(ComputeError, ValueError):
    """A unit or limit the caller gave is out of range or of the wrong type."""


class ModuleRejectedError(ComputeError):
    """The module may not run here: not WebAssembly, too large, or importing or
    exporting something the sandbox does not allow. The message names the offence."""


class WorkerError(ComputeError):
    """The worker process could not be started or answered outside its protocol."""
