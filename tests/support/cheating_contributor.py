"""A contributor that lies: the agent's real ``contribute`` (the same loop, pool, signing
and HTTP), except that every other unit it runs has its output corrupted before it is
signed. The signature is then valid and the output matches the signed hash, so nothing
but the quorum can tell: another member's device computes the real output.

    python -m tests.support.cheating_contributor --data-dir HOME --json contribute ...

Each corrupted unit is written to ``HOME/compute/cheated.jsonl`` (job, unit), so that a
test knows which of its results were lies.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from pathlib import Path

from agent import cli
from agent.contribute import runner
from agent.contribute.runner import Finished, UnitPool, WorkItem


def main(argv: list[str]) -> int:
    home = Path(argv[argv.index("--data-dir") + 1])
    ledger = home / "compute" / "cheated.jsonl"
    lock = threading.Lock()
    counter = [0]
    honest_run = UnitPool._run

    def cheating_run(pool: UnitPool, item: WorkItem) -> Finished:
        finished = honest_run(pool, item)
        if finished.result is None:
            return finished
        with lock:
            counter[0] += 1
            lie = counter[0] % 2 == 1  # the first, third, fifth ... unit it runs
        if not lie:
            return finished
        output = bytearray(finished.result.output or b"\0")
        output[len(output) // 2] ^= 0x5A  # one wrong pixel channel, as a subtle cheat would
        with lock:
            ledger.parent.mkdir(parents=True, exist_ok=True)
            with ledger.open("a") as out:
                out.write(json.dumps({"job": item.job, "unit": item.unit,
                                      "assignment": item.assignment}) + "\n")
        return dataclasses.replace(
            finished, result=dataclasses.replace(finished.result, output=bytes(output)))

    runner.UnitPool._run = cheating_run  # type: ignore[method-assign]
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
