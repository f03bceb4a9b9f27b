"""The EPUB mark: a keyed identifier in the package metadata, a keyed zero-width-space
text mark in the content documents, and the image mark on the book's raster images.

```python
info = check_epub(data)                      # EpubInfo(documents, images, characters)
copy = embed_epub_bytes(data, key, payload)  # a valid EPUB, deterministic bytes
result = extract_epub_bytes(copy, key)       # blind; reference=master bytes: informed
result.found, result.payload, result.evidence  # evidence among identifier, text, images
```

docs/WATERMARK.md ("EPUB") has the method, what it resists and what defeats it.
"""

from __future__ import annotations

from watermark.document.epub.mark import embed_epub_bytes, extract_epub_bytes
from watermark.document.epub.package import EpubInfo, check_epub

__all__ = ["EpubInfo", "check_epub", "embed_epub_bytes", "extract_epub_bytes"]
