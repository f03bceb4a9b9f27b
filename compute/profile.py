"""The sandbox profile a result is computed under: wasmtime's version and ours.

Fuel counts may change between wasmtime releases, and our own settings (engine
options, the WASI surface, the NaN guards added to the code) change what a unit
computes, so results agree only within one profile; the signed result carries it
(claim ``rt``). It is read from the
installed distribution's metadata, so the agent's side need not load wasmtime.
"""

from __future__ import annotations

import functools

#: the sandbox's own settings; bump when the engine settings, the WASI surface or the NaN
#: guards' rewrite (``compute.nan_guard``) change. 2: NaN guards at the observing
#: instructions instead of Cranelift's canonicalisation after every float operation, SIMD
#: and tail calls refused
SANDBOX_VERSION = 2


@functools.cache
def runtime_profile() -> str:
    """``wasmtime-<version>+pm-sandbox-<ours>``, e.g. ``wasmtime-50.0.1+pm-sandbox-2``.

    Worker processes do not call this (``importlib.metadata`` alone would add a third to
    a worker's start-up): the agent's side passes it along with each unit.
    """
    from importlib import metadata

    return f"wasmtime-{metadata.version('wasmtime')}+pm-sandbox-{SANDBOX_VERSION}"
