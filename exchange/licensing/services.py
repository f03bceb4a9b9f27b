"""State changes of licensing: devices, packaging, licences, revocation lists."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import os
import secrets
import uuid
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.catalogue.storage import master_abspath
from exchange.core.errors import ServiceError
from exchange.licensing.keys import key_encryption_key, platform_keyring
from exchange.licensing.models import (
    Device,
    Licence,
    RevocationEquivocation,
    RevocationList,
    WorkPackage,
)
from licensing.core.at_rest import unwrap_at_rest, wrap_at_rest
from licensing.core.device import DevicePublicKeys, InvalidDeviceKeyError
from licensing.core.errors import LicensingError
from licensing.core.key_wrap import KEY_BYTES, LicenceKeys
from licensing.core.licence import SealClaim, issue_licence
from licensing.core.manifest import Manifest, sign_manifest
from licensing.core.packaging import package_work
from licensing.core.revocation import equivocating_pair, sign_revocation_list
from licensing.core.sealed_tables import seal_table, table_key_for, table_sha256


def _now() -> dt.datetime:
    return timezone.now()


# --- devices ----------------------------------------------------------------------------


def device_register(*, user: User, name: str, signing_key: str, kem_key: str) -> Device:
    """Register an agent's public keys to ``user``. The same keys again return the same
    device (registration is naturally idempotent); keys another user registered are refused."""
    try:
        keys = DevicePublicKeys.from_b64url(signing=signing_key, kem=kem_key)
    except InvalidDeviceKeyError as exc:
        field = "kem_key" if exc.key == "kem" else "signing_key"
        raise ServiceError(_("Not a usable device key: %(error)s") % {"error": exc},
                           code="invalid", field=field) from exc
    except LicensingError as exc:  # not a property of either key alone
        raise ServiceError(_("Not a valid device key: %(error)s") % {"error": exc},
                           code="invalid") from exc
    existing = Device.objects.filter(device_id=keys.device_id).first()
    if existing is not None:
        if existing.user_id != user.pk:
            raise ServiceError(
                _("These keys belong to another account."), code="device_taken",
                status_code=409,
            )
        if existing.revoked_at is not None:
            raise ServiceError(
                _("This device was revoked; make new keys with `init --force`."),
                code="device_revoked",
                status_code=409,
            )
        return existing
    try:
        with transaction.atomic():
            device = Device.objects.create(
                device_id=keys.device_id,
                user=user,
                name=name[:100] or "agent",
                signing_public=signing_key,
                kem_public=kem_key,
            )
            audit_record(actor=user, action="device.register", target=device)
    except IntegrityError:
        return device_register(user=user, name=name, signing_key=signing_key, kem_key=kem_key)
    return device


def device_revoke(*, device: Device, actor: User) -> Device:
    """Revoke a device: its licences stop working at every peer once the list is out."""
    with transaction.atomic():
        updated = Device.objects.filter(pk=device.pk, revoked_at__isnull=True).update(
            revoked_at=_now()
        )
        if updated:
            audit_record(actor=actor, action="device.revoke", target=device)
            transaction.on_commit(revocation_list_publish)
    device.refresh_from_db()
    return device


# --- packaging ----------------------------------------------------------------------------


def _key_aad(purpose: str, work_id: str) -> bytes:
    return f"{purpose}:{work_id}".encode()


def ciphertext_abspath(relative: str) -> Path:
    path = (settings.CIPHERTEXT_DIR / relative).resolve()
    if settings.CIPHERTEXT_DIR.resolve() not in path.parents:
        raise ValueError("ciphertext path escapes its folder")
    return path


def work_package(*, work_id: str, master: Path, sealed: bool = False,
                 content_type: str = "") -> WorkPackage:
    """Encrypt a master into pieces and record its manifest; keys stored wrapped.

    For a sealed work (``content_type`` is then the master's) the pieces encrypt the
    sealed container (``watermark.sealed.seal``: the master with its marked part hidden
    under the work's table noise) instead of the master, and the container is kept
    beside the master for the marking audit; the manifest's size is the container's.
    ``master_sha256`` stays the master's own, which tracing matches exactly. The sealed
    library's refusal of a master (``UnsupportedImageError``, ``UnsupportedAudioError``,
    ``EmbedCheckError``) is raised before anything is written.

    Safe to run again for the same work (a re-delivered task): the first package stays.
    """
    existing = WorkPackage.objects.filter(work_id=work_id).first()
    if existing is not None:
        return existing
    watermark_key = secrets.token_bytes(KEY_BYTES)
    container_relative, table_size, container = "", None, b""
    if sealed:
        container, table_size = _sealed_container(master, content_type, watermark_key)
        container_relative = f"{work_id}/sealed"
    relative = f"{work_id}.pmc"
    target = ciphertext_abspath(relative)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if sealed:
        _write_private(master_abspath(container_relative), container)
        packaged = package_work(io.BytesIO(container), target, work_id=str(work_id),
                                piece_size=settings.PIECE_SIZE, size=len(container))
        master_sha256 = _file_sha256(master)
    else:
        packaged = package_work(master, target, work_id=str(work_id),
                                piece_size=settings.PIECE_SIZE)
        master_sha256 = packaged.master_sha256_hex
    kek = key_encryption_key()
    manifest = packaged.manifest
    try:
        with transaction.atomic():
            return WorkPackage.objects.create(
                work_id=work_id,
                manifest=manifest.to_claims(issued_at=0, expires_at=1),
                root=manifest.root_hex,
                piece_size=manifest.piece_size,
                piece_count=manifest.piece_count,
                ciphertext_size=manifest.ciphertext_size,
                ciphertext_path=relative,
                master_sha256=master_sha256,
                content_key_wrapped=wrap_at_rest(
                    kek, packaged.content_key, _key_aad("content-key", str(work_id))
                ),
                watermark_key_wrapped=wrap_at_rest(
                    kek, watermark_key, _key_aad("watermark-key", str(work_id))
                ),
                container_path=container_relative,
                table_size=table_size,
            )
    except IntegrityError:
        return WorkPackage.objects.get(work_id=work_id)


def _sealed_container(master: Path, content_type: str, watermark_key: bytes
                      ) -> tuple[bytes, int]:
    """The work's sealed container and its table size (deterministic in master and key)."""
    from watermark.sealed import container_info, seal

    container = seal(master.read_bytes(), content_type, watermark_key)
    return container, container_info(container).table_size


def _write_private(path: Path, data: bytes) -> None:
    """Write owner-only, atomically (temp file, fsync, rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_container(package: WorkPackage) -> bytes:
    """A sealed work's container, as its pieces encrypt it (for the marking audit)."""
    if not package.sealed:
        raise ValueError("a marked work has no sealed container")
    return master_abspath(package.container_path).read_bytes()


def sealed_copy(package: WorkPackage, *, payload: int) -> bytes:
    """The copy an honest agent writes under a sealed licence with ``payload``: the
    container opened with that licence's personal table (deterministic, so the marking
    audit compares hashes)."""
    from watermark.sealed import personal_table, unseal

    if package.table_size is None:
        raise ValueError("a marked work has no sealed copies")
    table = personal_table(package_keys(package).watermark_key, payload, package.table_size)
    return unseal(package_container(package), table)


_packages: dict[str, WorkPackage] = {}


def package_get(work_id: uuid.UUID | str) -> WorkPackage | None:
    """The work's package, or None while it is not packaged yet.

    A package never changes once made (``work_package`` keeps the first; nothing updates
    or deletes one; the admin shows it read-only), so each process reads it once. The
    cached copy leaves out the manifest, the one large column: ``package_manifest``
    fetches it on the rare occasion its own cache misses.
    """
    key = str(work_id)
    package = _packages.get(key)
    if package is None:
        package = WorkPackage.objects.defer("manifest").filter(work_id=key).first()
        if package is None:
            return None
        if len(_packages) > 4096:
            _packages.clear()
        _packages[key] = package
    return package


_parsed_manifests: dict[tuple[str, str], Manifest] = {}


def package_manifest(package: WorkPackage) -> Manifest:
    """The package's manifest. Parsing one checks every piece hash against the Merkle
    root, which costs real time for a large work; a package never changes (its root is
    part of the key), so each is parsed once per process."""
    key = (str(package.work_id), package.root)
    manifest = _parsed_manifests.get(key)
    if manifest is None:
        if "manifest" in package.get_deferred_fields():  # a package_get copy
            claims = WorkPackage.objects.values_list("manifest", flat=True).get(pk=package.pk)
        else:
            claims = package.manifest
        manifest = Manifest.from_claims(dict(claims))
        if len(_parsed_manifests) > 512:
            _parsed_manifests.clear()
        _parsed_manifests[key] = manifest
    return manifest


def package_keys(package: WorkPackage) -> LicenceKeys:
    """Unwrap a work's keys, for issuing a licence or tracing a copy; never stored clear."""
    kek = key_encryption_key()
    work_id = str(package.work_id)
    return LicenceKeys(
        content_key=unwrap_at_rest(
            kek, bytes(package.content_key_wrapped), _key_aad("content-key", work_id)
        ),
        watermark_key=unwrap_at_rest(
            kek, bytes(package.watermark_key_wrapped), _key_aad("watermark-key", work_id)
        ),
    )


_signed_manifests: dict[tuple[str, str, str], tuple[float, str]] = {}


def manifest_token(package: WorkPackage, *, now: dt.datetime | None = None) -> str:
    """The work's manifest, signed with the active key for ``MANIFEST_TOKEN_SECONDS``.

    A signature is reused for up to half its lifetime (per process and key), so every
    token handed out still has at least half its life left, and a busy work is not
    re-signed on every purchase.
    """
    issued = now or _now()
    life = settings.MANIFEST_TOKEN_SECONDS
    ring = platform_keyring()
    kid = ring.active.kid if ring.active else ""
    key = (str(package.work_id), package.root, kid)
    cached = _signed_manifests.get(key)
    if cached is not None and now is None and 0 <= issued.timestamp() - cached[0] < life / 2:
        return cached[1]
    token = sign_manifest(
        package_manifest(package),
        keyring=ring,
        issued_at=int(issued.timestamp()),
        expires_at=int(issued.timestamp()) + life,
    )
    if len(_signed_manifests) > 1024:
        _signed_manifests.clear()
    _signed_manifests[key] = (issued.timestamp(), token)
    return token


# --- licences --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _device_public_keys(signing: str, kem: str) -> DevicePublicKeys:
    """Parsed once per key pair: a device buys again and again, and parsing both curve
    points cost about as much as signing its licence. The keys are immutable."""
    return DevicePublicKeys.from_b64url(signing=signing, kem=kem)


def _new_watermark_payload() -> int:
    return int.from_bytes(os.urandom(8), "big")


def licence_issue(
    *,
    buyer: User,
    device: Device,
    package: WorkPackage,
    uses: list[str],
    lifetime: dt.timedelta,
    byte_allowance: int,
    now: dt.datetime | None = None,
    expires_at: dt.datetime | None = None,
    origin: Licence | None = None,
) -> Licence:
    """Sign a licence binding ``package``'s keys to ``device``. Runs in the caller's
    transaction (a purchase, or a re-issue to another device of the buyer's), so no
    licence exists without its payment.

    A re-issue passes its ``origin`` (the purchased licence) and that licence's
    ``expires_at``: another device never extends what was bought.
    """
    if device.user_id != buyer.pk:
        raise ServiceError(
            _("That device belongs to another account."),
            code="not_your_device",
            status_code=403,
            field="device",
        )
    if device.revoked_at is not None:
        raise ServiceError(
            _("That device is revoked."), code="device_revoked", status_code=409,
            field="device",
        )
    issued = (now or _now()).replace(microsecond=0)
    expires = expires_at.replace(microsecond=0) if expires_at is not None else issued + lifetime
    ring = platform_keyring()
    manifest = package_manifest(package)
    keys = package_keys(package)
    public = _device_public_keys(device.signing_public, device.kem_public)
    licence_id = uuid.uuid4()
    payload = _new_watermark_payload()
    seal: SealClaim | None = None
    if package.sealed:
        # The device gets the licence's table key, never the work's watermark key.
        blob = licence_table_blob(package, keys=keys, licence_id=str(licence_id),
                                  payload=payload)
        seal = SealClaim(table_sha256=table_sha256(blob), size=len(blob))
        keys = LicenceKeys(content_key=keys.content_key,
                           watermark_key=table_key_for(keys.watermark_key, str(licence_id)))
    token = issue_licence(
        keyring=ring,
        licence_id=str(licence_id),
        buyer=str(buyer.pk),
        device=public,
        manifest=manifest,
        watermark_payload=payload,
        uses=uses,
        issued_at=int(issued.timestamp()),
        expires_at=int(expires.timestamp()),
        byte_allowance=byte_allowance,
        keys=keys,
        seal=seal,
    )
    # The payload is unique by constraint. Two random 64-bit values collide with odds of
    # about n**2 / 2**65 over n licences; if it ever happens, the purchase's transaction
    # fails as a whole and the client's retry (same Idempotency-Key) draws a new one.
    return Licence.objects.create(
        id=licence_id,
        buyer=buyer,
        device=device,
        work_id=package.work_id,
        watermark_stored=Licence.stored_payload(payload),
        uses=sorted(uses),
        byte_allowance=byte_allowance,
        kid=ring.active.kid if ring.active else "",
        token=token,
        issued_at=issued,
        expires_at=expires,
        origin=origin,
    )


def licence_table_blob(package: WorkPackage, *, keys: LicenceKeys, licence_id: str,
                       payload: int) -> bytes:
    """A sealed licence's personal table, encrypted under its table key.

    Deterministic (``licensing.core.sealed_tables``), so it is computed again whenever
    the buyer asks for it and nothing per licence is stored: the bytes always match the
    licence's ``seal`` claim.
    """
    from watermark.sealed import personal_table

    if package.table_size is None:
        raise ValueError("a marked work has no tables")
    table = personal_table(keys.watermark_key, payload, package.table_size)
    return seal_table(table_key_for(keys.watermark_key, licence_id), licence_id, table)


def licence_table(*, licence: Licence) -> bytes:
    """The encrypted personal table of a live sealed licence, for its buyer's agent.

    Access is the caller's (``licence_get_for_buyer``); a revoked licence, or one for a
    marked work, is refused here.
    """
    if licence.revoked_at is not None:
        raise ServiceError(_("This licence is revoked."), code="licence_revoked",
                           status_code=403)
    if licence.device.revoked_at is not None:
        # A stolen device's files hold its keys and the account's token: its tables
        # would let the thief make copies in the owner's name.
        raise ServiceError(_("That device is revoked."), code="device_revoked",
                           status_code=403)
    package = package_get(licence.work_id)
    if package is None or not package.sealed:
        raise ServiceError(_("This licence is for a work that is not sealed: it has no "
                             "table."), code="not_sealed", status_code=404)
    return licence_table_blob(package, keys=package_keys(package),
                              licence_id=str(licence.pk), payload=licence.watermark_payload)


def licence_revoke(*, licence: Licence, reason: str, actor: User | None = None) -> bool:
    """Revoke a licence and publish a new revocation list. True if it was live."""
    with transaction.atomic():
        updated = Licence.objects.filter(pk=licence.pk, revoked_at__isnull=True).update(
            revoked_at=_now(), revocation_reason=reason[:200]
        )
        if updated:
            audit_record(
                actor=actor, action="licence.revoke", target=licence, data={"reason": reason}
            )
            transaction.on_commit(revocation_list_publish)
    return bool(updated)


# --- revocation lists ---------------------------------------------------------------------


def revocation_list_publish(*, now: dt.datetime | None = None) -> RevocationList:
    """Sign and store the next version: every unexpired revoked licence, every revoked device."""
    issued = (now or _now()).replace(microsecond=0)
    next_update = issued + dt.timedelta(seconds=settings.REVOCATION_LIST_SECONDS)
    licences = [
        str(pk)
        for pk in Licence.objects.filter(
            revoked_at__isnull=False, expires_at__gt=issued
        ).values_list("pk", flat=True)
    ]
    devices = list(
        Device.objects.filter(revoked_at__isnull=False).values_list("device_id", flat=True)
    )
    ring = platform_keyring()
    for _attempt in range(5):
        latest = RevocationList.objects.order_by("-version").first()
        version = (latest.version if latest else 0) + 1
        token = sign_revocation_list(
            keyring=ring,
            version=version,
            issued_at=int(issued.timestamp()),
            next_update=int(next_update.timestamp()),
            licences=licences,
            devices=devices,
        )
        try:
            with transaction.atomic():
                return RevocationList.objects.create(
                    version=version,
                    kid=ring.active.kid if ring.active else "",
                    token=token,
                    issued_at=issued,
                    next_update=next_update,
                    licence_count=len(licences),
                    device_count=len(devices),
                )
        except IntegrityError:
            continue  # another process published this version; number ours after it
    raise RuntimeError("could not publish a revocation list")


def revocation_equivocation_report(
    *, user: User, first: str, second: str
) -> tuple[RevocationEquivocation, bool]:
    """Store an agent's evidence of two different lists under one version; True if new.

    The pair must prove it (``equivocating_pair``: both signed by our keys, same version,
    different content), so nobody can fill the table with noise; the same pair reported
    again (in either order) only counts the report.
    """
    try:
        version = equivocating_pair(first, second, keyring=platform_keyring())
    except LicensingError as exc:
        raise ServiceError(_("This is not evidence of an equivocation: %(error)s")
                           % {"error": exc},
                           code="not_an_equivocation") from exc
    digest = hashlib.sha256("\n".join(sorted((first, second))).encode()).hexdigest()
    with transaction.atomic():
        row, created = RevocationEquivocation.objects.select_for_update().get_or_create(
            pair_sha256=digest,
            defaults={"version": version, "first_token": first, "second_token": second,
                      "reported_by": user},
        )
        if not created:
            RevocationEquivocation.objects.filter(pk=row.pk).update(reports=F("reports") + 1)
            row.refresh_from_db()
        else:
            audit_record(actor=user, action="revocation.equivocation", target=row,
                         data={"version": version})
    return row, created


def revocation_list_current(*, now: dt.datetime | None = None) -> RevocationList:
    """The newest list, re-published once half its lifetime has passed so agents never
    hold one past its next update. Also run by beat; this keeps the embedded default fresh."""
    now = now or _now()
    latest = RevocationList.objects.order_by("-version").first()
    if latest is not None:
        half = (latest.next_update - latest.issued_at) / 2
        if now < latest.issued_at + half:
            return latest
    return revocation_list_publish(now=now)
