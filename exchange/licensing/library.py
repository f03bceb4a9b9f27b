"""One library on every device: a member's licence re-issued to their other devices.

A purchase issues one licence, to the device that bought. Its buyer may have the work on
up to the work's ``device_limit`` of their registered devices at once: each other device
gets a licence of its own (new wrapped keys, its own watermark payload, so a leaked copy
still names the member and the device), linked to the purchased one by ``origin``. A
re-issue is not a sale: no purchase, no ledger posting, no escrow; it keeps the purchased
licence's uses, expiry and byte allowance. Moving a slot revokes the licence on one device
and issues one to another in one transaction.

The limit counts live slots: licences of the member for the work that are neither
revoked nor expired, on devices that are not revoked. Every re-issue or move of a work
by a member first locks that member's licences for the work (in id order), then counts,
so concurrent requests on PostgreSQL cannot together pass the limit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Max, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.catalogue.models import Work
from exchange.community.notifications import KIND_DEVICE, notify
from exchange.core.errors import ServiceError
from exchange.core.rate_limits import Rate, check
from exchange.licensing.models import Device, Licence
from exchange.licensing.services import licence_issue, licence_revoke, package_get


@dataclass(frozen=True)
class Reissue:
    """What a re-issue or move produced: the licence on the target device, and whether
    it is new (False: the device already held a live one, which is returned)."""

    licence: Licence
    created: bool


def _now() -> dt.datetime:
    return timezone.now()


def live_slots(*, member: User, work_id: uuid.UUID | str, now: dt.datetime | None = None
               ) -> QuerySet[Licence]:
    """The member's licences for a work that take a device slot."""
    return Licence.objects.filter(
        buyer=member, work_id=work_id, revoked_at__isnull=True, expires_at__gt=now or _now(),
        device__revoked_at__isnull=True)


def _target_device(member: User, device_id: object, *, field_name: str) -> Device:
    """One of the member's own devices, not revoked. Another member's device answers as a
    missing one does (as a purchase's ``unknown_device``): device ids are not secrets, but
    whose they are is."""
    device = Device.objects.filter(pk=str(device_id)[:64], user=member).first()
    if device is None:
        raise ServiceError(_("No such device on your account; run `init` on it first."),
                           code="unknown_device", status_code=400, field=field_name)
    if device.revoked_at is not None:
        raise ServiceError(_("That device is revoked."), code="device_revoked",
                           status_code=409, field=field_name)
    return device


def _lock_family(member: User, source: Licence, now: dt.datetime) -> Licence:
    """Lock the member's licences for the work and return ``source`` as it is now,
    refusing it unless it is live."""
    locked = {row.pk: row for row in Licence.objects.select_for_update()
              .filter(buyer=member, work_id=source.work_id).order_by("pk")}
    current = locked[source.pk]
    if current.revoked_at is not None:
        raise ServiceError(_("This licence is revoked; use one of your live licences for "
                             "this work."), code="licence_revoked", status_code=409)
    if current.expires_at <= now:
        raise ServiceError(_("This licence has expired."), code="licence_expired",
                           status_code=409)
    return current


def _check_limit(member: User, work: Work, now: dt.datetime, *, field_name: str) -> None:
    used = live_slots(member=member, work_id=work.pk, now=now).count()
    if used >= work.device_limit:
        raise ServiceError(
            _("This work may be on at most %(limit)s of your devices at once, and it is on "
              "%(used)s. Move a licence from a device you no longer use instead.")
            % {"limit": work.device_limit, "used": used},
            code="device_limit", status_code=409, field=field_name)


def _count_action(member: User) -> None:
    """Re-issues and moves each sign a licence (a move also a revocation list that every
    agent downloads): a member gets ``LIBRARY_RATE`` of them, or a 429."""
    check("licence-library", member.pk, Rate.parse(settings.LIBRARY_RATE))


MOVED_PREFIX = "moved to device "


def _check_moves(member: User, source: Licence, now: dt.datetime) -> None:
    """At most ``LIBRARY_MOVES_PER_30_DAYS`` moves of one purchase's licences in 30 days.
    Counted from the revoked licences themselves (the family is locked), so concurrent
    moves cannot pass it."""
    since = now - dt.timedelta(days=30)
    moved = Licence.objects.filter(buyer=member, work_id=source.work_id,
                                   revoked_at__gte=since,
                                   revocation_reason__startswith=MOVED_PREFIX).count()
    limit = settings.LIBRARY_MOVES_PER_30_DAYS
    if moved >= limit:
        raise ServiceError(
            _("This work's licences were moved %(count)s times in the last 30 days, the most "
              "allowed. Ask support if a device was lost again.") % {"count": moved},
            code="too_many_moves", status_code=409, field="to_device")


def _issue_to(member: User, device: Device, source: Licence, now: dt.datetime) -> Licence:
    root = source.origin if source.origin_id is not None else source
    assert root is not None
    package = package_get(source.work_id)
    if package is None:  # a licence exists only for a packaged work
        raise ServiceError(_("This work is not ready yet."), code="not_ready", status_code=409)
    return licence_issue(
        buyer=member, device=device, package=package, uses=list(root.uses),
        lifetime=root.expires_at - now, byte_allowance=root.byte_allowance, now=now,
        expires_at=root.expires_at, origin=root,
    )


def _live_on(device: Device, work_id: uuid.UUID | str, now: dt.datetime) -> Licence | None:
    return (Licence.objects.filter(device=device, work_id=work_id, revoked_at__isnull=True,
                                   expires_at__gt=now).order_by("-issued_at").first())


def _tell(member: User, title: str, body: str) -> None:
    url = reverse("portal:purchases")
    transaction.on_commit(lambda: notify(recipient=member, kind=KIND_DEVICE, title=title,
                                         body=body, url=url))


def licence_reissue(*, member: User, source: Licence, device_id: object,
                    now: dt.datetime | None = None) -> Reissue:
    """Give another of the member's devices its own licence for ``source``'s work.

    ``source`` is one of the member's live licences for it (the caller checked it is
    theirs: ``licence_get_for_buyer``). The same device again returns its live licence.
    """
    now = (now or _now()).replace(microsecond=0)
    device = _target_device(member, device_id, field_name="device")
    _count_action(member)
    with transaction.atomic():
        source = _lock_family(member, source, now)
        existing = _live_on(device, source.work_id, now)
        if existing is not None:
            return Reissue(existing, created=False)
        work = Work.objects.only("device_limit", "title").get(pk=source.work_id)
        _check_limit(member, work, now, field_name="device")
        licence = _issue_to(member, device, source, now)
        audit_record(actor=member, action="licence.reissue", target=licence,
                     data={"origin": str(licence.origin_id), "from": str(source.pk),
                           "device": device.pk})
        _tell(member, _("“%(title)s” is now on %(device)s")
              % {"title": work.title, "device": device.name},
              _("A licence for another of your devices was issued; no payment was taken."))
    return Reissue(licence, created=True)


def licence_move(*, member: User, source: Licence, to_device_id: object,
                 now: dt.datetime | None = None) -> Reissue:
    """Move a slot: revoke ``source`` (it joins the next revocation list, as any revoked
    licence) and give ``to_device`` a licence, all in one transaction.

    If ``to_device`` already holds a live licence for the work, that one is kept and only
    ``source`` is revoked: the slot is freed either way.
    """
    now = (now or _now()).replace(microsecond=0)
    device = _target_device(member, to_device_id, field_name="to_device")
    _count_action(member)
    with transaction.atomic():
        source = _lock_family(member, source, now)
        if source.device_id == device.pk:
            raise ServiceError(_("This licence is already on that device."),
                               code="same_device", status_code=409, field="to_device")
        _check_moves(member, source, now)
        licence_revoke(licence=source, reason=f"{MOVED_PREFIX}{device.pk[:16]}",
                       actor=member)
        work = Work.objects.only("device_limit", "title").get(pk=source.work_id)
        existing = _live_on(device, source.work_id, now)
        if existing is not None:
            result = Reissue(existing, created=False)
        else:
            _check_limit(member, work, now, field_name="to_device")  # source's slot is free
            result = Reissue(_issue_to(member, device, source, now), created=True)
        audit_record(actor=member, action="licence.move", target=result.licence,
                     data={"from": str(source.pk), "from_device": source.device_id,
                           "device": device.pk})
        _tell(member, _("“%(title)s” moved to %(device)s")
              % {"title": work.title, "device": device.name},
              _("The licence on your other device is revoked; its copy stops working there."))
    return result


# --- the member's library ------------------------------------------------------------


@dataclass
class LibraryEntry:
    """One work in a member's library: its licences, one per device, and the limit."""

    work: Work
    licences: list[Licence] = field(default_factory=list)
    slots_used: int = 0


def library_entries(*, member: User, works: Iterable[Work],
                    now: dt.datetime | None = None) -> list[LibraryEntry]:
    """``works`` (a page of ``library_works``), each with every licence of the member's
    for it, newest first, and how many device slots those take."""
    now = now or _now()
    entries = {work.pk: LibraryEntry(work) for work in works}
    for licence in (Licence.objects.filter(buyer=member, work_id__in=list(entries))
                    .select_related("device").order_by("-issued_at")):
        entry = entries[licence.work_id]
        entry.licences.append(licence)
        if licence_takes_slot(licence, now):
            entry.slots_used += 1
    return list(entries.values())


def library_works(*, member: User) -> QuerySet[Work]:
    """Every work the member holds (or held) a licence for, the newest licence first."""
    return (Work.objects.filter(licences__buyer=member)
            .annotate(latest=Max("licences__issued_at"))
            .select_related("owner").order_by("-latest", "pk"))


def licence_takes_slot(licence: Licence, now: dt.datetime) -> bool:
    return (licence.revoked_at is None and licence.expires_at > now
            and licence.device.revoked_at is None)
