"""Every state change of a work goes through one of these functions."""

from __future__ import annotations

import logging
import uuid
from typing import BinaryIO, TypedDict

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.catalogue.delivery import delivery_mode_check
from exchange.catalogue.models import DeliveryMode, Work, WorkStatus
from exchange.catalogue.previews import preview_make
from exchange.catalogue.sniffing import UnsupportedFileError, sniff_upload
from exchange.catalogue.storage import master_abspath, master_store, work_files_remove
from exchange.catalogue.terms import DEVICE_LIMIT_DEFAULT
from exchange.core.errors import ServiceError
from exchange.core.jsontypes import JSONObject

log = logging.getLogger(__name__)


class WorkChanges(TypedDict, total=False):
    """What ``work_update_terms`` may change, each already validated (serializer or form)."""

    title: str
    description: str
    price_minor: int
    currency: str
    allowed_uses: list[str]
    licence_days: int
    byte_allowance_multiple: int
    device_limit: int
    delivery_mode: str


EDITABLE_FIELDS = tuple(WorkChanges.__annotations__)


def work_register(
    *,
    owner: User,
    title: str,
    description: str,
    upload: BinaryIO,
    upload_size: int,
    original_filename: str,
    price_minor: int,
    currency: str,
    allowed_uses: list[str],
    licence_days: int,
    byte_allowance_multiple: int,
    media_type: str | None = None,
    delivery_mode: str | None = None,
    device_limit: int = DEVICE_LIMIT_DEFAULT,
) -> Work:
    """Store the master, record the work as processing, and queue its packaging.

    Field values arrive already validated (serializer or form); the checks here are
    the ones that need the file itself or the owner's role. ``delivery_mode`` None means
    the default for the file's type (sealed for the images it can be, else marked).
    """
    if not owner.is_rights_holder:
        raise ServiceError(
            _("Only rights holders can register works."), code="not_a_rights_holder",
            status_code=403,
        )
    if upload_size <= 0:
        raise ServiceError(_("The file is empty."), code="invalid", field="file")
    if upload_size > settings.MAX_UPLOAD_BYTES:
        raise ServiceError(
            _("The file is larger than the limit of %(limit)s bytes.")
            % {"limit": f"{settings.MAX_UPLOAD_BYTES:,}"},
            code="file_too_large",
            field="file",
            status_code=413,
        )
    try:
        sniffed = sniff_upload(upload)
    except UnsupportedFileError as exc:
        raise ServiceError(
            str(exc), code="unsupported_file", field="file", status_code=415
        ) from exc
    if media_type and media_type != sniffed.media_type:
        raise ServiceError(
            _("The file is %(found)s, not %(expected)s.")
            % {"found": sniffed.content_type, "expected": media_type},
            code="invalid",
            field="media_type",
        )
    mode = delivery_mode_check(delivery_mode, content_type=sniffed.content_type)

    work_id = uuid.uuid4()
    try:
        with transaction.atomic():
            relative, size = master_store(work_id=str(work_id), stream=upload)
            work = Work.objects.create(
                id=work_id,
                owner=owner,
                title=title,
                description=description,
                media_type=sniffed.media_type,
                content_type=sniffed.content_type,
                delivery_mode=mode,
                original_filename=original_filename[:255],
                price_minor=price_minor,
                currency=currency,
                allowed_uses=allowed_uses,
                licence_days=licence_days,
                byte_allowance_multiple=byte_allowance_multiple,
                device_limit=device_limit,
                size_bytes=size,
                master_path=relative,
            )
            audit_record(
                actor=owner,
                action="work.register",
                target=work,
                data={"size_bytes": size, "content_type": sniffed.content_type,
                      "delivery_mode": mode},
            )
            transaction.on_commit(lambda: _queue_processing(work.pk))
    except BaseException:
        work_files_remove(work_id=str(work_id))
        raise
    return work


def _queue_processing(work_id: uuid.UUID) -> None:
    from exchange.catalogue.tasks import work_process_task

    work_process_task.delay(str(work_id))


def work_process(*, work_id: uuid.UUID | str) -> Work:
    """Package the master (hash, encrypted pieces, manifest) and make its preview; then
    the work is on sale.

    Packaging keeps its first result and the status moves by compare-and-swap, so a
    re-delivered task is harmless. A sealed work whose master the sealed library will
    not take (a picture too small or animated, an unusual JPEG mode, a recording too
    short or too quiet) is packaged for marked delivery instead, and the work says so:
    the agent can still mark most such files.
    """
    from exchange.licensing.services import work_package
    from watermark.errors import EmbedCheckError, UnsupportedAudioError, UnsupportedImageError

    work = Work.objects.get(pk=work_id)
    if work.status != WorkStatus.PROCESSING:
        return work
    path = master_abspath(work.master_path)
    sealed = work.delivery_mode == DeliveryMode.SEALED
    try:
        package = work_package(work_id=str(work.pk), master=path, sealed=sealed,
                               content_type=work.content_type)
    except (UnsupportedImageError, UnsupportedAudioError, EmbedCheckError) as exc:
        if not sealed:
            raise
        package = work_package(work_id=str(work.pk), master=path, sealed=False)
        _delivery_mode_fall_back(work, reason=str(exc))
    preview = preview_make(work_id=str(work.pk), master=path) if work.media_type == "image" else ""
    with transaction.atomic():
        updated = Work.objects.filter(pk=work.pk, status=WorkStatus.PROCESSING).update(
            # What the package was made for, whatever changed while it was being made.
            delivery_mode=DeliveryMode.SEALED if package.sealed else DeliveryMode.MARKED,
            sha256=package.master_sha256,
            size_bytes=package.manifest["size"],
            preview_path=preview,
            status=WorkStatus.READY,
            updated_at=timezone.now(),
        )
        if updated:
            work.refresh_from_db()
            audit_record(actor=None, action="work.ready", target=work, data={"sha256": work.sha256})
    if updated and work.media_type in ("image", "audio"):
        from exchange.tracing.services import master_fingerprint

        master_fingerprint(work)  # so that tracing never decodes a master in a request
    return work


def _delivery_mode_fall_back(work: Work, *, reason: str) -> None:
    with transaction.atomic():
        Work.objects.filter(pk=work.pk).update(delivery_mode=DeliveryMode.MARKED,
                                               updated_at=timezone.now())
        work.delivery_mode = DeliveryMode.MARKED
        audit_record(actor=None, action="work.delivery_mode_fallback", target=work,
                     data={"reason": reason[:300]})


def work_mark_failed(*, work_id: uuid.UUID | str, reason: str) -> None:
    with transaction.atomic():
        updated = Work.objects.filter(pk=work_id, status=WorkStatus.PROCESSING).update(
            status=WorkStatus.FAILED, failure_reason=reason[:500], updated_at=timezone.now()
        )
        if updated:
            work = Work.objects.get(pk=work_id)
            audit_record(actor=None, action="work.failed", target=work, data={"reason": reason})


def work_update_terms(*, work: Work, actor: User, changes: WorkChanges) -> Work:
    """Change price, terms or text. Licences already sold keep the terms they were sold on."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ServiceError(_("Cannot change %(fields)s.") % {"fields": ", ".join(sorted(unknown))},
                           code="invalid")
    if work.status == WorkStatus.WITHDRAWN:
        raise ServiceError(
            _("A withdrawn work cannot be changed."), code="work_withdrawn", status_code=409
        )
    if "delivery_mode" in changes:
        _check_delivery_mode_change(work, changes["delivery_mode"])
    before: JSONObject = {name: getattr(work, name) for name in changes}
    with transaction.atomic():
        for name, value in changes.items():
            setattr(work, name, value)
        # The values just set, i.e. ``changes``, as the plain dict that the audit's JSON is.
        after: JSONObject = {name: getattr(work, name) for name in changes}
        work.full_clean(exclude=["master_path", "preview_path", "owner"])
        work.save(update_fields=[*changes, "updated_at"])
        audit_record(
            actor=actor,
            action="work.update",
            target=work,
            data={"before": before, "after": after},
        )
    return work


def _check_delivery_mode_change(work: Work, mode: str) -> None:
    """A work's mode may change until it is packaged: the package is made for one mode
    (a sealed container or the master), and licences sold name its ciphertext."""
    from exchange.licensing.models import WorkPackage

    delivery_mode_check(mode, content_type=work.content_type)
    if mode != work.delivery_mode and WorkPackage.objects.filter(work=work).exists():
        raise ServiceError(
            _("The delivery mode is fixed once the work is packaged; register the file "
              "again to sell it with the other mode."),
            code="delivery_mode_fixed", field="delivery_mode", status_code=409)


def work_withdraw(*, work: Work, actor: User) -> Work:
    """Take a work off sale. Idempotent: withdrawing a withdrawn work changes nothing."""
    with transaction.atomic():
        updated = (
            Work.objects.filter(pk=work.pk)
            .exclude(status=WorkStatus.WITHDRAWN)
            .update(
                status=WorkStatus.WITHDRAWN, withdrawn_at=timezone.now(), updated_at=timezone.now()
            )
        )
        work.refresh_from_db()
        if updated:
            audit_record(actor=actor, action="work.withdraw", target=work)
    return work
