"""Fuzzing the parsers: random and mutated input only ever raises a LicensingError.

Every reader of untrusted input (licence, manifest, revocation list, order,
receipt, JWKS, cnf, device key file) gets random text, random bytes, mutated
valid tokens, and validly signed tokens with random headers and claims. Each
must either accept the input or raise the library's own exception family.
"""

from __future__ import annotations

import base64
import contextlib
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licensing.core import (
    DeviceKeys,
    DevicePublicKeys,
    KeyRing,
    LicensingError,
    OrderVerifier,
    read_licence,
    read_manifest,
    read_order,
    read_receipt,
    read_revocation_list,
    sign_order,
    sign_receipt,
)

from .core_support import NOW, SERVING_PEER, Sale, build_sale, decode_part, forge, private_key_of

# Each reader gets a few hundred examples across the tests below; the whole run
# stays within a few seconds. Raise max_examples locally for a longer hunt.
FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_LONGER = settings(FUZZ, max_examples=150)
B64_CHARS = string.ascii_letters + string.digits + "-_"


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return build_sale(tmp_path_factory.mktemp("fuzz"), master_size=300_000)


@pytest.fixture(scope="module")
def order_token(sale: Sale) -> str:
    return sign_order(
        sale.bob,
        licence_id="licence-bob-1",
        peer_id=SERVING_PEER,
        piece=0,
        byte_count=sale.manifest.piece_length(0),
        issued_at=NOW,
    )


@pytest.fixture(scope="module")
def receipt_token(sale: Sale) -> str:
    return sign_receipt(
        sale.bob,
        licence_id="licence-bob-1",
        output_sha256=bytes(32),
        served={SERVING_PEER: 5},
        marked=True,
        issued_at=NOW,
    )


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keyfile") / "device.json"


def readers(sale: Sale) -> dict[str, Callable[[Any], object]]:
    def order_at_peer(token: Any) -> object:
        verifier = OrderVerifier(keyring=sale.ring, peer_id=SERVING_PEER)
        return verifier.verify(
            token,
            sale.licence_token,
            manifest=sale.manifest,
            revocations=sale.revocations,
            now=NOW,
        )

    return {
        "licence": lambda t: read_licence(t, keyring=sale.ring, now=NOW),
        "manifest": lambda t: read_manifest(t, keyring=sale.ring, now=NOW),
        "revocation": lambda t: read_revocation_list(t, keyring=sale.ring, now=NOW),
        "order at the peer": order_at_peer,
        "order at the platform": lambda t: read_order(t, licence=sale.licence),
        "receipt": lambda t: read_receipt(t, licence=sale.licence, now=NOW),
    }


def only_our_errors(read: Callable[[Any], object], value: object) -> None:
    """Accepting is fine; raising anything but a LicensingError fails the test."""
    with contextlib.suppress(LicensingError):
        read(value)


KINDS = ["licence", "manifest", "revocation", "order at the peer", "order at the platform",
         "receipt"]  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def valid_token(sale: Sale, kind: str, order_token: str, receipt_token: str) -> str:
    return {
        "licence": sale.licence_token,
        "manifest": sale.manifest_token,
        "revocation": sale.revocation_list(),
        "order at the peer": order_token,
        "order at the platform": order_token,
        "receipt": receipt_token,
    }[kind]


def signer_for(sale: Sale, kind: str) -> Any:
    return (
        sale.bob_signing_key
        if kind.startswith(("order", "receipt"))
        else private_key_of(sale.signing_key)
    )


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(value=st.text(max_size=400) | st.binary(max_size=400))
def test_random_input_raises_only_licensing_errors(sale: Sale, kind: str, value: object) -> None:
    only_our_errors(readers(sale)[kind], value)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(
    segments=st.lists(st.text(alphabet=B64_CHARS, max_size=120), min_size=1, max_size=4),
)
def test_random_base64url_segments_raise_only_licensing_errors(
    sale: Sale, kind: str, segments: list[str]
) -> None:
    only_our_errors(readers(sale)[kind], ".".join(segments))


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_mutated_valid_tokens_are_always_refused(
    sale: Sale, order_token: str, receipt_token: str, kind: str, data: st.DataObject
) -> None:
    token = valid_token(sale, kind, order_token, receipt_token)
    position = data.draw(st.integers(min_value=0, max_value=len(token) - 1))
    operation = data.draw(st.sampled_from(["replace", "delete", "insert", "truncate", "swap"]))
    char = data.draw(st.sampled_from(B64_CHARS + ".=+/ \n\x00é"))
    if operation == "replace":
        mutated = token[:position] + char + token[position + 1 :]
    elif operation == "delete":
        mutated = token[:position] + token[position + 1 :]
    elif operation == "insert":
        mutated = token[:position] + char + token[position:]
    elif operation == "truncate":
        mutated = token[:position]
    else:
        head, payload, signature = token.split(".")
        mutated = ".".join([payload, head, signature])
    if mutated == token:  # a replacement by the same character
        return
    # Encodings are canonical (no padding, no stray bits, no whitespace), so any other
    # text is another document, which the signature no longer covers: always refused.
    with pytest.raises(LicensingError):
        readers(sale)[kind](mutated)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(data=st.data())
def test_validly_signed_tokens_with_random_claims_raise_only_licensing_errors(
    sale: Sale, order_token: str, receipt_token: str, kind: str, data: st.DataObject
) -> None:
    token = valid_token(sale, kind, order_token, receipt_token)
    claims = decode_part(token, 1)
    for name in data.draw(st.lists(st.sampled_from([*claims, "extra"]), max_size=3)):
        if data.draw(st.booleans()):
            claims[name] = data.draw(json_values)
        else:
            claims.pop(name, None)
    forged = forge(decode_part(token, 0), claims, signer_for(sale, kind))
    only_our_errors(readers(sale)[kind], forged)


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jku"]),
        st.sampled_from(["Ed25519", "none", "HS256", "pm-licence+jwt", "pm-order+jwt", ""])
        | st.text(max_size=50)
        | st.lists(st.text(max_size=5), max_size=2)
        | st.booleans()
        | st.integers(),
        max_size=5,
    )
)
def test_validly_signed_tokens_with_random_headers_raise_only_licensing_errors(
    sale: Sale, order_token: str, receipt_token: str, kind: str, header: dict[str, Any]
) -> None:
    token = valid_token(sale, kind, order_token, receipt_token)
    forged = forge(header, decode_part(token, 1), signer_for(sale, kind))
    only_our_errors(readers(sale)[kind], forged)


@FUZZ_LONGER
@given(value=json_values | st.text(max_size=200) | st.binary(max_size=200))
def test_random_jwks_raise_only_licensing_errors(value: object) -> None:
    document = value if isinstance(value, (str, bytes)) else json.dumps(value)
    only_our_errors(KeyRing.from_jwks, document)
    only_our_errors(KeyRing.from_jwks, {"keys": [value]})


@FUZZ_LONGER
@given(value=json_values, signing=st.binary(max_size=40), kem=st.binary(max_size=40))
def test_random_cnf_claims_raise_only_licensing_errors(
    value: object, signing: bytes, kem: bytes
) -> None:
    only_our_errors(DevicePublicKeys.from_cnf, value)
    encode = base64.urlsafe_b64encode
    cnf = {"dev": "x", "sig": encode(signing).decode(), "kem": encode(kem).decode()}
    only_our_errors(DevicePublicKeys.from_cnf, cnf)


@FUZZ_LONGER
@given(content=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_random_device_key_files_raise_only_licensing_errors(
    key_file: Path, content: bytes
) -> None:
    path = key_file
    path.write_bytes(content)
    path.chmod(0o600)
    only_our_errors(DeviceKeys.load, path)
