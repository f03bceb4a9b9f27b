"""What `check_pdf` accepts: beyond these a PDF is refused with `DocumentTooLargeError`.

They are checked on the parsed structure before anything is decoded for marking. A stream
may have ASCII filters, then one decompressing filter, then one image codec; anything else
is refused. Flate is inflated incrementally against `MAX_STREAM_BYTES`, so a decompression
bomb costs at most that much work and no memory beyond one chunk.
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
#: a page's side (MediaBox times UserUnit), in points: 200 inches, above any real sheet
#: or poster; PDFium renders pages, and the reader renders pictures of pages
MAX_PAGE_SIDE: Final = 200 * 72
#: decoded page content of the whole document, counting a stream once for each page that
#: uses it (it is parsed once per page by the check, the embedder and PDFium); a long text
#: document has 2-20 KB a page, and parsing this much takes some 10-20 s
MAX_CONTENT_BYTES: Final = 48 * 1024 * 1024
#: operators in one page's content, and in the page content of the whole document (a
#: stream counted once for each page that uses it). The embedder parses a page's
#: operators into Python objects: 1M took 12 s and 570 MB here, so a page is held to
#: about 120 MB and the document to some 30 s. Counted by a scan that errs high (words
#: in comments and hex strings count too); real text pages have a few hundred (the
#: libtasn1 manual: 358 on average, 876 at most)
MAX_PAGE_OPERATORS: Final = 200_000
MAX_CONTENT_OPERATORS: Final = 2_500_000
#: pixels of one rendered page picture in an informed read (a Letter page at 150 dpi is
#: 2.1 megapixels; this allows 40 x 40 inches); larger pages are not rendered
MAX_RENDER_PIXELS: Final = 40_000_000
#: suspect pages without text that an informed read renders and compares with the master
MAX_PAGES_RENDERED: Final = 64
#: images the reader tries per document (bounds decode attempts, hence false positives)
MAX_IMAGES_READ: Final = 32
