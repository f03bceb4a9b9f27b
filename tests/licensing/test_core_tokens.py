"""Signed documents: every way to pass off a forged or misused token fails cleanly."""

from __future__ import annotations

import hashlib
import hmac
import json
import string
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licensing.core import (
    BadHeaderError,
    BadSignatureError,
    ComputeStop,
    DocumentKind,
    ExpiredError,
    KeyRing,
    KeyState,
    LicensingError,
    MalformedError,
    MissingKeyIdError,
    NotPermittedError,
    NotYetValidError,
    OversizedError,
    PlatformKey,
    RetiredKeyError,
    UnknownKeyError,
    UnknownTermError,
    Use,
    WrongAlgorithmError,
    WrongDeviceError,
    WrongTypeError,
    new_message_id,
    read_compute_result,
    read_direct_message,
    read_licence,
    read_manifest,
    read_order,
    read_receipt,
    read_revocation_list,
    seal_direct_message,
    sign_compute_result,
    sign_order,
    sign_receipt,
)
from licensing.core.jws import DEFAULT_LEEWAY

from .core_support import NOW, Sale, b64, build_sale, decode_part, forge, private_key_of


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return build_sale(tmp_path_factory.mktemp("tokens"), master_size=300_001)


def header_of(token: str) -> dict[str, Any]:
    return decode_part(token, 0)


def claims_of(token: str) -> dict[str, Any]:
    return decode_part(token, 1)


def read_as_licence(sale: Sale, token: str) -> object:
    return read_licence(token, keyring=sale.ring, now=NOW)


def resign(sale: Sale, token: str, *, header: dict[str, Any] | None = None, **claims: Any) -> str:
    """Re-sign a token with the platform's real key after changing its header or claims."""
    body = {**claims_of(token), **claims}
    return forge(header or header_of(token), body, private_key_of(sale.signing_key))


# --- signatures and keys -----------------------------------------------------------


def test_a_tampered_payload_fails_the_signature(sale: Sale) -> None:
    head, _, signature = sale.licence_token.split(".")
    claims = claims_of(sale.licence_token)
    claims["uses"] = ["download", "print", "stream", "view"]
    tampered = f"{head}.{b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(BadSignatureError):
        read_as_licence(sale, tampered)


@pytest.mark.parametrize("kind", [DocumentKind.MANIFEST, DocumentKind.REVOCATION_LIST])
def test_a_forged_platform_document_is_refused_before_its_payload_is_decoded(
    sale: Sale, kind: DocumentKind
) -> None:
    # The payload is not even JSON: a reader that decoded it before checking the
    # signature would call it malformed; the signature is what refuses it.
    header = decode_part(sale.manifest_token, 0)
    header["typ"] = kind.typ
    junk = b64(b"\xff not json " * 400_000)  # about 7 MB
    forged = f"{b64(json.dumps(header).encode())}.{junk}.{b64(bytes(64))}"
    assert len(forged) < kind.max_token_bytes
    with pytest.raises(BadSignatureError):
        sale.agent_ring.verify(forged, kind)


def test_a_signature_by_another_key_under_our_kid_fails(sale: Sale) -> None:
    forged = forge(header_of(sale.licence_token), claims_of(sale.licence_token),
                   Ed25519PrivateKey.generate())  # fmt: skip
    with pytest.raises(BadSignatureError):
        read_as_licence(sale, forged)


def test_it_rejects_an_unknown_kid(sale: Sale) -> None:
    stranger = KeyRing([PlatformKey.generate(state=KeyState.ACTIVE)])
    with pytest.raises(UnknownKeyError):
        read_as_licence(sale, sale.issue(keyring=stranger))


def test_it_rejects_a_token_without_a_kid_even_with_one_key_in_the_ring(sale: Sale) -> None:
    header = {"alg": "Ed25519", "typ": "pm-licence+jwt"}
    with pytest.raises(MissingKeyIdError):
        read_as_licence(sale, resign(sale, sale.licence_token, header=header))


def test_it_rejects_a_retired_kid(sale: Sale) -> None:
    old = sale.signing_key.with_state(KeyState.RETIRED)
    ring = KeyRing([old, PlatformKey.generate(state=KeyState.ACTIVE)])
    with pytest.raises(RetiredKeyError):
        read_licence(sale.licence_token, keyring=ring, now=NOW)


def test_a_verify_only_key_verifies_but_does_not_sign(sale: Sale) -> None:
    ring = KeyRing([sale.signing_key.with_state(KeyState.VERIFY_ONLY)])
    assert read_licence(sale.licence_token, keyring=ring, now=NOW).licence_id == "licence-bob-1"
    with pytest.raises(LicensingError):
        sale.issue(keyring=ring)


# --- algorithm and header substitution ------------------------------------------------


def test_it_rejects_alg_none(sale: Sale) -> None:
    header = {**header_of(sale.licence_token), "alg": "none"}
    head = b64(json.dumps(header).encode())
    unsigned = f"{head}.{sale.licence_token.split('.')[1]}."
    with pytest.raises(WrongAlgorithmError):
        read_as_licence(sale, unsigned)


def test_it_rejects_hs256_keyed_with_the_public_key(sale: Sale) -> None:
    header = {**header_of(sale.licence_token), "alg": "HS256"}
    signing_input = b64(json.dumps(header).encode()) + "." + sale.licence_token.split(".")[1]
    public = sale.signing_key.public_key.public_bytes_raw()
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(WrongAlgorithmError):
        read_as_licence(sale, f"{signing_input}.{b64(mac)}")


@pytest.mark.parametrize("alg", ["EdDSA", "Ed448", "ES256", "RS256", "HS256", "", None, 1])
def test_it_accepts_only_the_ed25519_algorithm(sale: Sale, alg: object) -> None:
    header = {**header_of(sale.licence_token), "alg": alg}
    with pytest.raises(WrongAlgorithmError):
        read_as_licence(sale, resign(sale, sale.licence_token, header=header))


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"jku": "https://attacker.example/jwks.json"},
        {"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "A" * 43}},
        {"x5u": "https://attacker.example/cert.pem"},
        {"x5c": ["MIIB"]},
        {"b64": False, "crit": ["b64"]},
        {"cty": "JWT"},
        {"zip": "DEF"},
    ],
)
def test_it_rejects_injected_header_members_even_when_validly_signed(
    sale: Sale, extra: dict[str, Any]
) -> None:
    header = {**header_of(sale.licence_token), **extra}
    with pytest.raises(BadHeaderError):
        read_as_licence(sale, resign(sale, sale.licence_token, header=header))


@pytest.mark.parametrize("typ", [None, "JWT", "pm-manifest+jwt", "PM-LICENCE+JWT", ""])
def test_it_pins_the_typ_of_a_licence(sale: Sale, typ: str | None) -> None:
    header = {k: v for k, v in header_of(sale.licence_token).items() if k != "typ"}
    if typ is not None:
        header["typ"] = typ
    with pytest.raises(WrongTypeError):
        read_as_licence(sale, resign(sale, sale.licence_token, header=header))


def test_a_header_that_repeats_a_member_is_malformed(sale: Sale) -> None:
    kid = header_of(sale.licence_token)["kid"]
    raw = f'{{"alg":"Ed25519","kid":"{kid}","typ":"pm-manifest+jwt","typ":"pm-licence+jwt"}}'
    payload = sale.licence_token.split(".")[1]
    signing_input = b64(raw.encode()) + "." + payload
    signature = private_key_of(sale.signing_key).sign(signing_input.encode())
    with pytest.raises(MalformedError):
        read_as_licence(sale, f"{signing_input}.{b64(signature)}")


# --- one kind never passes as another ------------------------------------------------


@pytest.fixture(scope="module")
def tokens(sale: Sale) -> dict[DocumentKind, str]:
    order = sign_order(sale.bob, licence_id="licence-bob-1", peer_id="peer-1", piece=0,
                       byte_count=sale.manifest.piece_length(0), issued_at=NOW)  # fmt: skip
    receipt = sign_receipt(sale.bob, licence_id="licence-bob-1", output_sha256=bytes(32),
                           served={"peer-1": 10}, marked=True, issued_at=NOW)  # fmt: skip
    result = sign_compute_result(sale.bob, job_id="job-1", unit_id="unit-1",
                                 output_sha256=bytes(32), output_size=0, stop=ComputeStop.EXIT,
                                 exit_status=0, fuel=1, runtime="rt-1", issued_at=NOW)  # fmt: skip
    message = seal_direct_message(sale.bob, sender="bob", recipient="carol",
                                  recipient_device=sale.bob.public, message_id=new_message_id(),
                                  body="hello", issued_at=NOW)  # fmt: skip
    return {
        DocumentKind.LICENCE: sale.licence_token,
        DocumentKind.MANIFEST: sale.manifest_token,
        DocumentKind.REVOCATION_LIST: sale.revocation_list(),
        DocumentKind.ORDER: order,
        DocumentKind.RECEIPT: receipt,
        DocumentKind.COMPUTE_RESULT: result,
        DocumentKind.DIRECT_MESSAGE: message,
    }


def readers(sale: Sale) -> dict[DocumentKind, Callable[[str], object]]:
    return {
        DocumentKind.LICENCE: lambda t: read_licence(t, keyring=sale.ring, now=NOW),
        DocumentKind.MANIFEST: lambda t: read_manifest(t, keyring=sale.ring, now=NOW),
        DocumentKind.REVOCATION_LIST: lambda t: read_revocation_list(t, keyring=sale.ring, now=NOW),
        DocumentKind.ORDER: lambda t: read_order(t, licence=sale.licence),
        DocumentKind.RECEIPT: lambda t: read_receipt(t, licence=sale.licence, now=NOW),
        DocumentKind.COMPUTE_RESULT: lambda t: read_compute_result(
            t, device=sale.bob.public, job_id="job-1", unit_id="unit-1", now=NOW
        ),
        DocumentKind.DIRECT_MESSAGE: lambda t: read_direct_message(
            t, sender_device=sale.bob.public, now=NOW
        ),
    }


@pytest.mark.parametrize("presented", list(DocumentKind))
@pytest.mark.parametrize("expected", list(DocumentKind))
def test_a_document_of_one_kind_never_passes_as_another(
    sale: Sale, tokens: dict[DocumentKind, str], presented: DocumentKind, expected: DocumentKind
) -> None:
    read = readers(sale)[expected]
    if presented is expected:
        read(tokens[presented])
    else:
        with pytest.raises(WrongTypeError):
            read(tokens[presented])


def test_each_kind_has_its_own_typ() -> None:
    typs = [kind.typ for kind in DocumentKind]
    assert len(set(typs)) == len(typs) == 7


# --- time ------------------------------------------------------------------------------


def test_an_expired_licence_is_refused_after_the_leeway(sale: Sale) -> None:
    exp = sale.licence.expires_at
    read_licence(sale.licence_token, keyring=sale.ring, now=exp + DEFAULT_LEEWAY)
    with pytest.raises(ExpiredError):
        read_licence(sale.licence_token, keyring=sale.ring, now=exp + DEFAULT_LEEWAY + 1)


def test_a_licence_issued_in_the_future_is_refused(sale: Sale) -> None:
    token = sale.issue(issued_at=NOW + 3600, expires_at=NOW + 7200)
    with pytest.raises(NotYetValidError):
        read_as_licence(sale, token)


def test_a_licence_must_expire_after_it_is_issued(sale: Sale) -> None:
    with pytest.raises(MalformedError):
        sale.issue(issued_at=NOW, expires_at=NOW)
    with pytest.raises(MalformedError):
        read_as_licence(sale, resign(sale, sale.licence_token, exp=NOW - 120, iat=NOW - 60))


# --- device binding and terms -----------------------------------------------------------


def test_it_refuses_a_licence_bound_to_another_device(sale: Sale) -> None:
    with pytest.raises(WrongDeviceError):
        read_licence(sale.licence_token, keyring=sale.ring, now=NOW, device_id=sale.carol.device_id)


def test_the_licence_carries_what_the_platform_issued(sale: Sale) -> None:
    licence = sale.licence
    assert licence.buyer == "bob"
    assert licence.device == sale.bob.public
    assert licence.watermark_payload == 0xFEED_FACE_CAFE_BEEF
    assert licence.manifest_root == sale.manifest.root
    assert licence.byte_allowance == 2 * sale.manifest.ciphertext_size
    assert licence.kid == sale.signing_key.kid
    assert claims_of(sale.licence_token)["mark"] == str(0xFEED_FACE_CAFE_BEEF)


@pytest.mark.parametrize("payload", [0, 1, 2**53 + 1, 2**64 - 1])
def test_the_watermark_payload_survives_as_a_64_bit_integer(sale: Sale, payload: int) -> None:
    token = sale.issue(watermark_payload=payload)
    assert read_as_licence(sale, token).watermark_payload == payload  # type: ignore[attr-defined]


@pytest.mark.parametrize("payload", [-1, 2**64, True])
def test_a_watermark_payload_outside_64_bits_is_refused(sale: Sale, payload: int) -> None:
    with pytest.raises(MalformedError):
        sale.issue(watermark_payload=payload)


@pytest.mark.parametrize("mark", ["01", "-1", "18446744073709551616", "1e3", 5, ""])
def test_a_signed_watermark_payload_that_is_not_canonical_is_malformed(
    sale: Sale, mark: object
) -> None:
    with pytest.raises(MalformedError):
        read_as_licence(sale, resign(sale, sale.licence_token, mark=mark))


def test_terms_are_deny_by_default(sale: Sale) -> None:
    assert sale.licence.permits("view")
    assert sale.licence.permits(Use.DOWNLOAD)
    assert not sale.licence.permits("print")
    assert not sale.licence.permits("stream")
    with pytest.raises(NotPermittedError):
        sale.licence.require("print")


def test_an_unknown_term_is_an_error_not_a_permission(sale: Sale) -> None:
    with pytest.raises(UnknownTermError):
        sale.licence.permits("resell")
    with pytest.raises(UnknownTermError):
        sale.issue(uses=["view", "resell"])
    with pytest.raises(UnknownTermError):
        read_as_licence(sale, resign(sale, sale.licence_token, uses=["view", "resell"]))


@pytest.mark.parametrize("uses", [[], ["view", "view"], "view", [1]])
def test_a_licence_needs_a_list_of_distinct_known_uses(sale: Sale, uses: object) -> None:
    with pytest.raises(MalformedError):
        read_as_licence(sale, resign(sale, sale.licence_token, uses=uses))


def test_the_vocabulary_is_the_catalogues() -> None:
    assert [u.value for u in Use] == ["view", "download", "print", "stream"]


# --- strict claims ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"admin": True},
        {"exp": 1.5e9},
        {"exp": True},
        {"bytes": -1},
        {"bytes": "10"},
        {"jti": ""},
        {"jti": "has space"},
        {"jti": "x" * 129},
        {"root": "AB" * 32},
        {"wrapped_key": "AAAA"},
        {"cnf": {"dev": "x", "sig": "y", "kem": "z"}},
    ],
)
def test_a_validly_signed_licence_with_bad_claims_is_malformed(
    sale: Sale, change: dict[str, Any]
) -> None:
    with pytest.raises(MalformedError):
        read_as_licence(sale, resign(sale, sale.licence_token, **change))


def test_a_missing_claim_is_malformed(sale: Sale) -> None:
    claims = claims_of(sale.licence_token)
    del claims["exp"]
    token = forge(header_of(sale.licence_token), claims, private_key_of(sale.signing_key))
    with pytest.raises(MalformedError):
        read_as_licence(sale, token)


@pytest.mark.parametrize(
    "payload",
    [b'{"jti":"a","jti":"b"}', b'{"exp":NaN}', b"[1,2]", b"\xff\xfe", b'{"a":' * 2000],
)
def test_a_payload_that_is_not_a_strict_json_object_is_malformed(
    sale: Sale, payload: bytes
) -> None:
    token = forge(header_of(sale.licence_token), payload, private_key_of(sale.signing_key))
    with pytest.raises(MalformedError):
        read_as_licence(sale, token)


def test_an_oversized_token_is_refused_before_parsing(sale: Sale) -> None:
    with pytest.raises(OversizedError):
        read_as_licence(sale, "a" * (DocumentKind.LICENCE.max_token_bytes + 1))
    with pytest.raises(OversizedError):
        read_as_licence(sale, b"a" * (DocumentKind.LICENCE.max_token_bytes + 1))  # type: ignore[arg-type]


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "..", "é.é.é", None, 42, ["a"]])
def test_garbage_is_malformed(sale: Sale, token: object) -> None:
    with pytest.raises(MalformedError):
        read_as_licence(sale, token)  # type: ignore[arg-type]


def test_a_signature_segment_with_padding_or_stray_bits_is_malformed(sale: Sale) -> None:
    signature = sale.licence_token.rsplit(".", 1)[1]
    assert len(signature) == 86  # 64 bytes: the last character carries 4 bits
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    # The last character's unused low bits are zero in a canonical encoding; set one.
    stray = signature[:-1] + alphabet[alphabet.index(signature[-1]) + 1]
    for bad in (signature + "==", signature[:-1] + "+", stray):
        with pytest.raises(MalformedError):
            read_as_licence(sale, sale.licence_token.rsplit(".", 1)[0] + "." + bad)
