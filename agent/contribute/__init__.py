"""``contribute``: run other people's compute units on this machine, within its owner's
limits, and be paid for the results the quorum agrees with (docs/COMPUTE.md).

- ``limits``: what the owner declared (cores, memory per unit, hours a day, only when
  idle) and the conditions checked before each batch (the day's hours, battery,
  other load, recent input);
- ``runner``: the modules, fetched once and checked against their hash, and a pool of
  ``cores`` threads, each running one unit at a time in its own worker process
  (``compute.worker.Sandbox``);
- ``loop``: fetch a batch, run it, sign each result with the device key, send the
  results back; retries with back-off, one idempotency key per dispatch request.
"""
