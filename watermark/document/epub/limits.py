"""What an EPUB may hold before it is refused: checked from the zip's central directory
and enforced again while each member is inflated (declared sizes can lie).

An EPUB is a zip archive the agent opens on a buyer's machine, so it is treated like any
untrusted compressed input: a zip bomb (a small file that inflates to gigabytes, or many
entries sharing one compressed kernel) is refused before anything is inflated, and a
member that inflates past the size its directory entry declares is refused mid-stream.
"""

from __future__ import annotations

from typing import Final

#: the archive itself
MAX_ARCHIVE_BYTES: Final = 512 * 1024 * 1024
#: entries in the central directory (a long illustrated book has a few thousand)
MAX_MEMBERS: Final = 10_000
#: uncompressed size of one member (a large photograph or an audio clip)
MAX_MEMBER_BYTES: Final = 128 * 1024 * 1024
#: uncompressed size of all members together
MAX_TOTAL_BYTES: Final = 512 * 1024 * 1024
#: inflated / compressed size of one member; deflate's own limit is about 1032, books'
#: XHTML compresses 3 to 10 times, a repetitive table perhaps 50 times
MAX_RATIO: Final = 200
#: the ratio is only checked on members that inflate to more than this
RATIO_MIN_BYTES: Final = 1024 * 1024
#: one XHTML content document or the package document, parsed into a tree
MAX_XML_BYTES: Final = 32 * 1024 * 1024
#: images read per extraction (each image read is up to six keyed-check attempts, so this
#: also bounds the false-positive rate of one call: see docs/WATERMARK.md)
MAX_IMAGES_READ: Final = 64
