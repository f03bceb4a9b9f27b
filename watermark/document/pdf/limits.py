"""What `check_pdf` accepts: beyond these a PDF is refused with `DocumentTooLargeError`.

They are checked on the parsed structure before anything is decoded for marking, and every
stream is inflated incrementally against `MAX_STREAM_BYTES`, so a decompression bomb costs
at most that much work and no memory beyond one chunk.
"""

from __future__ import annotations

from typing import Final

#: the file itself
MAX_FILE_BYTES: Final = 512 * 1024 * 1024
#: pages in the document
MAX_PAGES: Final = 5000
#: indirect objects in the document
MAX_OBJECTS: Final = 1_000_000
#: arrays and dictionaries nested inside one object (real files stay under 10)
MAX_DEPTH: Final = 64
#: decoded size of any one stream (a 50-megapixel RGB image is 150 MB)
MAX_STREAM_BYTES: Final = 256 * 1024 * 1024
#: decoded size of all streams together
MAX_TOTAL_BYTES: Final = 2 * 1024 * 1024 * 1024
#: encoded size of a stream whose filters cannot be inflated incrementally (LZW,
#: RunLength); qpdf decodes such a stream whole, and LZW can expand about 2,700 times, so
#: this keeps the worst case under MAX_STREAM_BYTES
MAX_OPAQUE_RAW_BYTES: Final = 96 * 1024
#: pixels of one image XObject (the image mark's own limit)
MAX_IMAGE_PIXELS: Final = 50_000_000
#: images the reader tries per document (bounds decode attempts, hence false positives)
MAX_IMAGES_READ: Final = 32
