"""A buyer's agent patched to skip every marking step it can: the agent's real ``get``
(download, piece checks, licence, table fetch, receipt), except that the step that makes
the marked copy is replaced.

    python -m tests.support.skipping_buyer --data-dir HOME --json get WORK

For a marked work the patch would simply skip the mark (write the decrypted master): the
known limit of client-side marking. For a sealed work, whatever the patched agent does,
the plaintext it decrypts is the sealed container, so the cheats tried are:

* ``container`` (the default): write the decrypted pieces as they are, no table applied
  (``unseal`` replaced by "return the container");
* ``zero-table``: apply a table whose entries are all zero instead of the personal one
  (its header kept, ``watermark.sealed.table``), so no licence's mark is added and
  only what the container holds remains: the master under the noise.

``HOME/honest.out`` receives the copy the agent *can* make with its own table (the real
``unseal``), which is what such a buyer would leak if it wanted a usable picture.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import watermark.sealed
from agent import cli
from watermark.sealed.table import MAGIC


def main(argv: list[str]) -> int:
    home = Path(argv[argv.index("--data-dir") + 1])
    cheat = os.environ.get("PEERMARK_CHEAT", "container")
    honest_unseal = watermark.sealed.unseal

    def skipping_unseal(container: bytes, table: bytes) -> bytes:
        (home / "honest.out").write_bytes(honest_unseal(container, table))
        if cheat == "zero-table":
            header = len(MAGIC) + 4
            return honest_unseal(container, table[:header] + bytes(len(table) - header))
        return container

    watermark.sealed.unseal = skipping_unseal  # type: ignore[assignment]
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
