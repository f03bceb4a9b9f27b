"""State changes of licensing: devices, packaging, licences, revocation lists."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
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
from licensing.core.licence import issue_licence
from licensing.core.manifest import Manifest, sign_manifest
from licensing.core.packaging import package_work
from licensing.core.revocation import equivocating_pair, sign_revocation_list


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


def work_package(*, work_id: str, master: Path) -> WorkPackage:
    """Encrypt a master into pieces and record its manifest; keys stored wrapped.

    Safe to run again for the same work (a re-delivered task): the first package stays.
    """
    existing = WorkPackage.objects.filter(work_id=work_id).first()
    if existing is not None:
        return existing
    relative = f"{work_id}.pmc"
    target = ciphertext_abspath(relative)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    packaged = package_work(master, target, work_id=str(work_id), piece_size=settings.PIECE_SIZE)
    watermark_key = secrets.token_bytes(KEY_BYTES)
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
                master_sha256=packaged.master_sha256_hex,
                content_key_wrapped=wrap_at_rest(
                    kek, packaged.content_key, _key_aad("content-key", str(work_id))
                ),
                watermark_key_wrapped=wrap_at_rest(
                    kek, watermark_key, _key_aad("watermark-key", str(work_id))
                ),
            )
    except IntegrityError:
        return WorkPackage.objects.get(work_id=work_id)


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
) -> Licence:
    """Sign a licence binding ``package``'s keys to ``device``. Runs in the caller's
    transaction (a purchase), so no licence exists without its payment."""
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
    expires = issued + lifetime
    ring = platform_keyring()
    manifest = package_manifest(package)
    keys = package_keys(package)
    public = _device_public_keys(device.signing_public, device.kem_public)
    licence_id = uuid.uuid4()
    payload = _new_watermark_payload()
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
    )


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
