"""Which delivery modes a work may have, and the one it gets when nobody chooses.

Sealed delivery (docs/SEALED.md) exists for the media types the sealed library packages
(``watermark.sealed.SEALABLE_MEDIA_TYPES``: PNG, JPEG and WebP pictures, WAV, FLAC and MP3
recordings). It is the default for the types the library names
(``SEALED_BY_DEFAULT``: pictures), because it keeps a buyer's copy marked even if the
buyer's agent is modified; a rights holder may choose it for a sealable recording too.
Everything else is marked by the agent as before.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from exchange.catalogue.models import DeliveryMode
from exchange.core.errors import ServiceError


def sealable(content_type: str) -> bool:
    """Whether the sealed library can package a master of this type."""
    from watermark.sealed import SEALABLE_MEDIA_TYPES

    return content_type in SEALABLE_MEDIA_TYPES


def default_delivery_mode(content_type: str) -> str:
    """Sealed where the library seals by default, marked elsewhere."""
    from watermark.sealed import SEALED_BY_DEFAULT

    if content_type in SEALED_BY_DEFAULT:
        return DeliveryMode.SEALED.value
    return DeliveryMode.MARKED.value


def delivery_mode_check(mode: str | None, *, content_type: str) -> str:
    """The mode a work gets: the one chosen, if its media type allows it, else the
    default. Refuses "sealed" for any other media with a 400 naming ``delivery_mode``."""
    if not mode:
        return default_delivery_mode(content_type)
    if mode not in DeliveryMode.values:
        raise ServiceError(_("Unknown delivery mode %(mode)r.") % {"mode": mode},
                           code="invalid", field="delivery_mode")
    if mode == DeliveryMode.SEALED and not sealable(content_type):
        raise ServiceError(
            _("Sealed delivery is for PNG, JPEG and WebP images and WAV, FLAC and MP3 "
              "recordings; this work is %(type)s. Choose marked delivery.")
            % {"type": content_type},
            code="invalid", field="delivery_mode")
    return mode
