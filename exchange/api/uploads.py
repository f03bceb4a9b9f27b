"""What every upload endpoint checks before the body is read."""

from __future__ import annotations

from typing import Any


def declared_length(request: Any) -> int:
    """The body size the client declared, so an oversized upload is refused before Django
    spools it to disk; 0 when absent or not a number (the parser then limits the read)."""
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0
