"""Small previews for the catalogue, so browsing never touches the master."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from PIL import Image, ImageOps

PREVIEW_MAX_SIDE = 480


def preview_make(*, work_id: str, master: Path) -> str:
    """Write a JPEG thumbnail of an image master; return its path relative to previews."""
    relative = f"{work_id}/preview.jpg"
    target = settings.PREVIEWS_DIR / relative
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with Image.open(master) as image:
        image.draft("RGB", (PREVIEW_MAX_SIDE * 2, PREVIEW_MAX_SIDE * 2))
        thumb = ImageOps.exif_transpose(image).convert("RGB")
        thumb.thumbnail((PREVIEW_MAX_SIDE, PREVIEW_MAX_SIDE))
        partial = target.with_suffix(".partial")
        thumb.save(partial, format="JPEG", quality=80)
        partial.replace(target)
    return relative
