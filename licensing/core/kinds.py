"""The seven kinds of signed document and their ``typ`` header values.

Each kind has its own explicit type (RFC 8725, section 3.11) so that one kind can
never pass as another: a receipt is not an order, a manifest is not a licence, a
compute result is neither, and a direct message is none of them.
Each kind also has a size bound, checked before any parsing.
"""

from __future__ import annotations

from enum import Enum

KIB = 1024
MIB = 1024 * KIB


class DocumentKind(Enum):
    """A kind of signed document: its ``typ``, who signs it and its largest size."""

    LICENCE = ("licence", "pm-licence+jwt", "platform", 16 * KIB)
    MANIFEST = ("manifest", "pm-manifest+jwt", "platform", 8 * MIB)
    REVOCATION_LIST = ("revocation list", "pm-revocation+jwt", "platform", 8 * MIB)
    ORDER = ("order", "pm-order+jwt", "device", 2 * KIB)
    RECEIPT = ("receipt", "pm-receipt+jwt", "device", 128 * KIB)
    COMPUTE_RESULT = ("compute result", "pm-compute-result+jwt", "device", 2 * KIB)
    DIRECT_MESSAGE = ("direct message", "pm-direct-message+jwt", "device", 48 * KIB)

    def __init__(self, label: str, typ: str, signer: str, max_token_bytes: int) -> None:
        #: a human name for messages
        self.label = label
        #: the JWS ``typ`` header value; pinned on verification
        self.typ = typ
        #: "platform" (a key in the platform key ring) or "device" (a licence's ``cnf`` key)
        self.signer = signer
        #: tokens longer than this are refused before parsing
        self.max_token_bytes = max_token_bytes
