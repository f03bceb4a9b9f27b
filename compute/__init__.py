"""The compute market's pure parts: running a job's work units in a sandbox.

A compute job is a WebAssembly module (WASI preview 1) and its work units (an input
and a fuel cap each). A contributor's agent runs units in wasmtime, metered by fuel,
bounded in memory, output and time, deterministically, so that two devices running
the same unit return the same output hash, exit status and fuel; it then signs the
result (``results``; the document kind is in ``licensing.core``). No Django, no
global state; see docs/COMPUTE.md. Modules, by what they do:

* ``worker``: ``Sandbox``, what the agent calls: prepare a module, run a unit in a
  worker process (a fresh one, or one kept for further units of the same module)
* ``worker_main``, ``protocol``: the worker process's side, and the pipe between them
* ``module_check``: refusing a module before it runs (format, size, imports, exports)
* ``nan_guard``: the NaN guards ``module_check`` adds to a module's code, so that no
  CPU's NaN bits reach what a unit computes
* ``sandbox``: the deterministic engine settings and running one unit in-process
* ``wasi``: the sandbox's own minimal WASI preview 1 surface (the allow-list)
* ``limits``, ``unit``, ``profile``: limits, units and results, the runtime profile
* ``results``: a unit's result as a signed compute result
* ``errors``: ``ComputeError`` and its subclasses
* ``demo``: the demo job, a ray tracer in C built to WebAssembly, one tile a unit

This file imports nothing: every worker process starts by importing the package, and
its start-up is part of a worker's cost. Import from the modules
(``from compute.worker import Sandbox``).
"""
