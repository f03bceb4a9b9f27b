"""The PDF mark: text line and word shifts, the image mark on raster images, and a per-copy
identifier in the document's structure (docs/WATERMARK.md, "PDF").

```python
info = check_pdf(data)                       # PdfInfo(pages, images, text_pages), or raises
copy = embed_pdf_bytes(data, key, payload, licensed_to="A. Buyer")
result = extract_pdf_bytes(copy, key)        # blind; reference=master for an informed read
```
"""

from __future__ import annotations

from watermark.document.pdf import limits
from watermark.document.pdf.check import PdfInfo, check_pdf
from watermark.document.pdf.codec import embed_pdf_bytes, extract_pdf_bytes

__all__ = ["PdfInfo", "check_pdf", "embed_pdf_bytes", "extract_pdf_bytes", "limits"]
