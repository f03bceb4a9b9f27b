"""Real threads racing for the same rows, for the PostgreSQL concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connections


def race(count: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(0)`` .. ``action(count - 1)`` in ``count`` threads released at once by
    a barrier; each result, or the exception it raised, in order. Each thread closes its
    own database connection, as a request's thread would."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = action(index)
        except Exception as exc:  # noqa: BLE001  (collected and asserted on by the caller)
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
