"""Our JWS profile: compact JWS, Ed25519 only, explicit ``typ``, ``kid`` required.

joserfc produces the format: ``serialize_compact`` signs every document. Reading
is the compact serialization's three base64url segments, split here and decoded
with joserfc's rules (``encoding.b64url_decode_bytes``: no padding, canonical
last character) by ``binascii`` in strict mode; ``cryptography`` checks the
Ed25519 signature with a public key object parsed once and kept by the caller.
We do not call ``extract_compact``: it decodes the header leniently (a repeated
member silently wins), and on the order hot path it decodes the header on every
token where we check each distinct header once (measured: docs/BENCHMARKS.md).

This module closes the traps a generic JOSE library leaves open:

* the input size is bounded per document kind before anything is parsed;
* the protected header must be exactly ``{"alg", "kid", "typ"}``: no ``crit``,
  ``jku``, ``jwk``, ``x5u``, ``x5c``, ``b64`` or anything else;
* ``alg`` is pinned to ``Ed25519`` (RFC 9864's fully specified name for EdDSA over
  Ed25519); ``none``, ``HS256`` and the polymorphic ``EdDSA`` are refused;
* ``typ`` is pinned to the expected kind;
* the key is found by ``kid`` in a key ring the caller owns, never taken from
  the token and never guessed when the ``kid`` is missing;
* claims are parsed strictly, and times (``iat``/``exp``) are checked here with an
  injected clock, because ``joserfc.jwt.decode`` does not check them itself.

Every failure is a ``LicensingError`` subclass.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from joserfc import jws as joserfc_jws
from joserfc.jwk import OKPKey

from .encoding import b64url_decode_bytes, canonical_json, strict_json_object
from .errors import (
    BadHeaderError,
    BadSignatureError,
    ExpiredError,
    MalformedError,
    MissingKeyIdError,
    NotYetValidError,
    OversizedError,
    WrongAlgorithmError,
    WrongTypeError,
)
from .kinds import DocumentKind

#: the one JWS algorithm we sign and accept (RFC 9864: EdDSA with Ed25519)
ALGORITHM = "Ed25519"
#: seconds of clock skew tolerated on ``iat`` and ``exp``
DEFAULT_LEEWAY = 60
#: the exact set of protected header members of every document
HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
#: Ed25519 signatures are always 64 bytes
SIGNATURE_BYTES = 64
#: longest base64url protected header accepted (ours are about 120 characters)
MAX_HEADER_SEGMENT = 512


def _make_registry(kind: DocumentKind) -> joserfc_jws.JWSRegistry:
    registry = joserfc_jws.JWSRegistry(algorithms=[ALGORITHM], strict_check_header=True)
    registry.max_payload_length = kind.max_token_bytes
    return registry


# Immutable configuration (one allow-listed registry per kind), not mutable state.
_REGISTRIES = {kind: _make_registry(kind) for kind in DocumentKind}


class UnverifiedDocument:
    """A token whose header and signature are read but whose signature is NOT checked.

    ``kid`` says which key to check it with. ``claims`` are decoded on first use, so a
    caller that verifies the signature first (``KeyRing.verify``: manifests and
    revocation lists, up to 8 MiB) never spends the payload's base64 and JSON decoding on
    a forged token; they must not be trusted before ``verify_signature`` succeeds.
    """

    __slots__ = ("_claims", "_payload_segment", "kid", "kind", "signature", "signing_input")

    def __init__(self, *, kind: DocumentKind, kid: str, payload_segment: bytes,
                 signing_input: bytes, signature: bytes) -> None:
        self.kind = kind
        self.kid = kid
        self.signing_input = signing_input
        self.signature = signature
        self._payload_segment = payload_segment
        self._claims: dict[str, Any] | None = None

    @property
    def claims(self) -> dict[str, Any]:
        if self._claims is None:
            self._claims = strict_json_object(
                b64url_decode_bytes(self._payload_segment, what="JWS payload"),
                what=f"{self.kind.label} claims",
            )
        return self._claims


def sign_document(kind: DocumentKind, claims: dict[str, Any], *, kid: str, key: OKPKey) -> str:
    """Sign ``claims`` as a compact JWS of ``kind`` with an Ed25519 private key."""
    header = {"alg": ALGORITHM, "kid": kid, "typ": kind.typ}
    token = joserfc_jws.serialize_compact(
        header, canonical_json(claims), key, registry=_REGISTRIES[kind]
    )
    if len(token) > kind.max_token_bytes:
        # Never issue a document that every verifier would refuse.
        raise OversizedError(f"{kind.label} would be {len(token)} bytes")
    return token


#: a header cache maps a header segment to the ``(kind, kid)`` it was checked for
HeaderCache = dict[bytes, tuple[DocumentKind, str]]
_HEADER_CACHE_LIMIT = 1024


def parse_document(
    token: object, kind: DocumentKind, *, header_cache: HeaderCache | None = None
) -> UnverifiedDocument:
    """Split a compact JWS of ``kind``, check its size and header; the signature is NOT
    checked, and the payload is decoded only when ``claims`` is first read.

    ``header_cache`` (optional, owned by the caller) remembers header segments that
    already passed ``check_header`` for ``kind``, so a verifier that sees many tokens
    from one signer parses each distinct header once.
    """
    if isinstance(token, str):
        if len(token) > kind.max_token_bytes:
            raise OversizedError(f"{kind.label} longer than {kind.max_token_bytes}")
        try:
            value = token.encode("ascii")
        except UnicodeEncodeError:
            raise MalformedError("a token is ASCII only") from None
    elif isinstance(token, bytes):
        if len(token) > kind.max_token_bytes:
            raise OversizedError(f"{kind.label} longer than {kind.max_token_bytes}")
        value = token
    else:
        raise MalformedError("a token is a string")
    segments = value.split(b".")
    if len(segments) != 3:
        raise MalformedError("not a compact JWS (three base64url segments)")
    # Each segment goes through a strict base64url decoder below, which refuses
    # any character outside the alphabet and any non-canonical ending.
    header_segment, payload_segment, signature_segment = segments
    if len(header_segment) > MAX_HEADER_SEGMENT:
        raise OversizedError("JWS header too long")
    cached = header_cache.get(header_segment) if header_cache is not None else None
    if cached is not None and cached[0] is kind:
        kid = cached[1]
    else:
        header = strict_json_object(
            b64url_decode_bytes(header_segment, what="JWS header"), what="JWS header"
        )
        kid = check_header(header, kind)
        if header_cache is not None:
            if len(header_cache) >= _HEADER_CACHE_LIMIT:
                header_cache.clear()
            header_cache[header_segment] = (kind, kid)
    signature = b64url_decode_bytes(signature_segment, what="JWS signature")
    if len(signature) != SIGNATURE_BYTES:
        raise BadSignatureError("an Ed25519 signature is 64 bytes")
    return UnverifiedDocument(
        kind=kind,
        kid=kid,
        payload_segment=payload_segment,
        signing_input=value[: len(header_segment) + 1 + len(payload_segment)],
        signature=signature,
    )


def check_header(header: dict[str, Any], kind: DocumentKind) -> str:
    """Check a protected header against our profile; return its ``kid``."""
    if header.get("alg") != ALGORITHM:
        raise WrongAlgorithmError(f"alg must be {ALGORITHM}")
    extra = sorted(set(header) - HEADER_MEMBERS)
    if extra:
        raise BadHeaderError(f"unexpected header members: {', '.join(extra)[:100]}")
    if "typ" not in header:
        raise WrongTypeError(f"typ missing, expected {kind.typ}")
    if header["typ"] != kind.typ:
        raise WrongTypeError(f"typ is not {kind.typ}")
    kid = header.get("kid")
    if kid is None:
        raise MissingKeyIdError("the header names no kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= 128:
        raise BadHeaderError("kid must be a short string")
    return kid


def verify_signature(document: UnverifiedDocument, key: Ed25519PublicKey) -> None:
    """Check the signature with the Ed25519 public key the caller looked up by ``kid``.

    The key is a parsed ``cryptography`` key object the caller keeps (key ring,
    licence ``cnf``), so nothing is re-imported per token.
    """
    try:
        key.verify(document.signature, document.signing_input)
    except InvalidSignature:
        raise BadSignatureError(f"{document.kind.label} signature does not verify") from None


def check_lifetime(
    *, issued_at: int, expires_at: int | None, now: int, leeway: int = DEFAULT_LEEWAY
) -> None:
    """Refuse a document issued in the future or past its expiry, with ``leeway`` seconds."""
    if issued_at > now + leeway:
        raise NotYetValidError("issued in the future")
    if expires_at is not None and now > expires_at + leeway:
        raise ExpiredError("expired")
