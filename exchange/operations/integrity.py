"""Check that what the platform signed and stored still verifies: after a restore above all.

A dump restored without its data folder, a data folder from another day, or a missing
key-encryption key all leave a database that looks fine and a platform that cannot sell:
licences that no longer verify, ciphertext that no longer matches its manifest, content
keys that no longer unwrap. This reads every one back, with the platform's keys as
stored, the way an agent and the platform would use them. ``books_check`` covers money.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from pathlib import Path

from django.utils import timezone

from exchange.catalogue.storage import master_abspath
from exchange.licensing.keys import keyring_load
from exchange.licensing.models import Licence, WorkPackage
from exchange.licensing.services import ciphertext_abspath, package_keys
from exchange.operations.books import books_check
from licensing.core.errors import LicensingError, UnwrapFailedError
from licensing.core.keyring import KeyRing
from licensing.core.licence import read_licence
from licensing.core.manifest import Manifest, read_manifest, sign_manifest, verify_piece

_CHUNK = 1 << 20


def licences_verify(*, ring: KeyRing, now: dt.datetime) -> Iterable[str]:
    """Each unexpired licence's token verifies with the platform's keys and says what its
    row says (an expired one may name a key since retired, and is no longer used)."""
    for pk, token, work, device, stored in (
        Licence.objects.filter(expires_at__gt=now)
        .values_list("pk", "token", "work_id", "device__device_id", "watermark_stored")
        .iterator()
    ):
        try:
            licence = read_licence(token, keyring=ring, now=int(now.timestamp()))
        except LicensingError as exc:
            yield f"licence {pk} does not verify: {exc}"
            continue
        said = (licence.licence_id, licence.work_id, licence.device_id,
                Licence.stored_payload(licence.watermark_payload))
        if said != (str(pk), str(work), device, stored):
            yield f"licence {pk}: its token names another licence, work, device or mark"


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _ciphertext_problem(package: WorkPackage, manifest: Manifest) -> str | None:
    path = ciphertext_abspath(package.ciphertext_path)
    if not path.is_file():
        return "its ciphertext file is missing"
    if path.stat().st_size != manifest.ciphertext_size:
        return "its ciphertext file has the wrong size"
    with path.open("rb") as handle:
        for index in range(manifest.piece_count):
            try:
                verify_piece(manifest, index, handle.read(manifest.piece_length(index)))
            except LicensingError as exc:
                return f"its ciphertext does not match the manifest: {exc}"
    return None


def packages_verify(*, ring: KeyRing, now: dt.datetime) -> Iterable[str]:
    """Each work's manifest is whole, signs and verifies with the active key, its keys
    unwrap under the key-encryption key, and its ciphertext and master on disk match."""
    stamp = int(now.timestamp())
    for package in WorkPackage.objects.select_related("work").iterator():
        name = f"work {package.work_id}"
        try:
            manifest = Manifest.from_claims(dict(package.manifest))
            token = sign_manifest(manifest, keyring=ring, issued_at=stamp, expires_at=stamp + 60)
            if read_manifest(token, keyring=ring, now=stamp).root != manifest.root:
                yield f"{name}: its manifest does not survive signing"
        except LicensingError as exc:
            yield f"{name}: its manifest does not verify: {exc}"
            continue
        try:
            package_keys(package)
        except UnwrapFailedError:
            yield f"{name}: its keys do not unwrap under this key-encryption key"
        problem = _ciphertext_problem(package, manifest)
        if problem:
            yield f"{name}: {problem}"
        master = master_abspath(package.work.master_path)
        if not master.is_file():
            yield f"{name}: its master file is missing"
        elif _file_sha256(master) != package.master_sha256:
            yield f"{name}: its master file does not match its hash"
        if package.sealed and not master_abspath(package.container_path).is_file():
            yield f"{name}: its sealed container is missing (the marking audit needs it)"


def integrity_check(*, now: dt.datetime | None = None) -> list[str]:
    """The books, then every licence and package; empty when all is well."""
    now = now or timezone.now()
    try:
        ring = keyring_load()
    except UnwrapFailedError:
        return [*books_check(), "the platform's signing keys do not unwrap under this "
                "key-encryption key: restore the KEK that was in use (docs/OPERATIONS.md)"]
    return [*books_check(), *licences_verify(ring=ring, now=now),
            *packages_verify(ring=ring, now=now)]
