"""Opting a device in to contribute, and its standing against the quorum.

A contributor is a registered device of the member's (the same device keys that sign
orders and receipts sign its results). Its declared limits decide what it is given:
only jobs whose memory cap fits and whose runtime profile it runs. Its standing moves
with every validated unit it took part in; past the threshold it gets no more work.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from compute.limits import GIB, WASM_PAGE
from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.compute_market.models import Contributor
from exchange.core.errors import ServiceError
from exchange.licensing.models import Device


def _usable(device: Device | None) -> Device:
    if device is None:
        raise ServiceError(_("No such device on your account; run `init` first."),
                           code="unknown_device", status_code=400, field="device")
    if device.revoked_at is not None:
        raise ServiceError(_("This device has been revoked."), code="device_revoked",
                           status_code=403, field="device")
    return device


def device_of(user: User, device_id: str) -> Device:
    return _usable(Device.objects.filter(pk=str(device_id)[:64], user=user).first())


def contributor_enroll(*, user: User, device_id: str, runtime: str, cores: int,
                       memory_bytes: int, hours_per_day: int = 24, only_when_idle: bool = False,
                       agent_version: str = "") -> Contributor:
    """Opt a device in (or update its limits). Its standing is kept across updates."""
    device = device_of(user, device_id)
    if not 1 <= cores <= 256:
        raise ServiceError(_("Cores is from 1 to 256."), code="invalid", field="cores")
    if not WASM_PAGE <= memory_bytes <= 4 * GIB:
        raise ServiceError(_("Memory per unit is from 64 KiB to 4 GiB."), code="invalid",
                           field="memory_bytes")
    if not 1 <= hours_per_day <= 24:
        raise ServiceError(_("Hours per day is from 1 to 24."), code="invalid",
                           field="hours_per_day")
    if not runtime or len(runtime) > 128:
        raise ServiceError(_("Name the sandbox's runtime profile."), code="invalid",
                           field="runtime")
    values = {"user": user, "cores": cores, "memory_bytes": memory_bytes,
              "hours_per_day": hours_per_day, "only_when_idle": only_when_idle,
              "runtime": runtime, "agent_version": agent_version[:40],
              "last_seen_at": timezone.now()}
    contributor, created = Contributor.objects.update_or_create(device=device, defaults=values)
    if created:
        audit_record(actor=user, action="compute.contributor_enroll", target=contributor,
                     data={"cores": cores, "memory_bytes": memory_bytes})
    return contributor


def contributor_for(*, user: User, device_id: str) -> Contributor:
    """The device's contributor record; a clear error if it has not opted in or is
    suspended."""
    # The device and its contributor record in one query.
    device = _usable(Device.objects.select_related("contributor")
                     .filter(pk=str(device_id)[:64], user=user).first())
    contributor: Contributor | None = getattr(device, "contributor", None)
    if contributor is None:
        raise ServiceError(_("This device has not opted in to contribute; run `contribute`."),
                           code="not_contributing", status_code=409, field="device")
    if contributor.suspended_at is not None:
        raise ServiceError(
            _("This device gets no more work: %(reason)s") % {"reason":
                                                             contributor.suspended_reason},
            code="contributor_suspended", status_code=403, field="device")
    return contributor


def standing_apply(changes: Mapping[str, Counter[str]]) -> None:
    """Move devices' standing by what the quorum said of their results.

    ``changes`` maps a device id to counts of ``agreed``, ``disagreed``, ``no_vote`` and
    ``expired``. Rows are updated in device order (no two intakes wait on each other in a
    cycle), inside the caller's transaction; a device that crosses the threshold is
    suspended there.
    """
    threshold = settings.COMPUTE_SUSPEND_AFTER_DISAGREEMENTS
    rate_bps = settings.COMPUTE_SUSPEND_RATE_BPS
    now = timezone.now()
    for device_id in sorted(changes):
        counts = changes[device_id]
        update: dict[str, object] = {
            name: F(name) + counts[name]
            for name in ("agreed", "disagreed", "no_vote", "expired") if counts[name]
        }
        if counts["disagreed"]:
            update["consecutive"] = 0
        elif counts["agreed"]:
            update["consecutive"] = F("consecutive") + counts["agreed"]
        if not update:
            continue
        Contributor.objects.filter(pk=device_id).update(**update)
        if counts["disagreed"]:
            row = Contributor.objects.filter(pk=device_id).values(
                "agreed", "disagreed", "suspended_at").first()
            if row is None or row["suspended_at"] is not None:
                continue
            judged = row["agreed"] + row["disagreed"]
            if row["disagreed"] >= threshold and row["disagreed"] * 10_000 > rate_bps * judged:
                reason = _("%(bad)s of its %(all)s checked results disagreed with the quorum.") % {
                    "bad": row["disagreed"], "all": judged}
                Contributor.objects.filter(pk=device_id).update(suspended_at=now,
                                                                 suspended_reason=reason)
