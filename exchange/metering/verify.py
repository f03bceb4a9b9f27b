"""Checking serving peers' orders at the platform: signed by the licence's device, for a
piece of that licence's work, with the piece's exact length, within the licence's life.

Licences and the devices they bind are looked up once per process and kept (both are
immutable once issued), so a batch of orders under one licence costs one Ed25519 verify
each, which is the floor.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from exchange.core.errors import reason_of
from exchange.licensing.keys import platform_keyring
from exchange.licensing.models import Device, Licence
from exchange.licensing.services import package_get, package_manifest
from licensing.core import DocumentKind, LicensingError, Manifest
from licensing.core import Licence as CoreLicence
from licensing.core.jws import parse_document
from licensing.core.licence import licence_from_claims
from licensing.core.orders import Order, read_order

# Orders are signed when the piece is sent; one dated further ahead than this is forged
# or from a broken clock.
FUTURE_SLACK = dt.timedelta(minutes=5)


class OrderRejectedError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _KnownLicence:
    pk: uuid.UUID
    core: CoreLicence
    manifest: Manifest


@dataclass(frozen=True)
class CheckedOrder:
    order: Order
    licence_pk: uuid.UUID
    serving_device: str
    serving_user: int


class OrderChecker:
    """One per batch (or per process): caches licences and the submitter's devices."""

    _licences: dict[str, _KnownLicence] = {}

    def __init__(self, *, submitter_id: int) -> None:
        self._submitter = submitter_id
        self._devices: dict[str, bool] = {}

    def _licence(self, licence_id: str) -> _KnownLicence:
        known = self._licences.get(licence_id)
        if known is not None:
            return known
        try:
            key = uuid.UUID(licence_id)
        except ValueError:
            raise OrderRejectedError("unknown_licence") from None
        row = Licence.objects.filter(pk=key).only("token", "work_id").first()
        if row is None:
            raise OrderRejectedError("unknown_licence")
        kid, claims = platform_keyring().verify(row.token, DocumentKind.LICENCE)
        package = package_get(row.work_id)
        if package is None:  # a licence exists only for a packaged work
            raise OrderRejectedError("unknown_licence")
        known = _KnownLicence(pk=row.pk, core=licence_from_claims(kid, claims),
                              manifest=package_manifest(package))
        if len(self._licences) > 10_000:
            self._licences.clear()
        self._licences[licence_id] = known
        return known

    def _serving_user(self, device_id: str) -> int:
        """The submitter, if the serving device is theirs (orders are submitted by the
        peer that served them)."""
        if device_id not in self._devices:
            self._devices[device_id] = Device.objects.filter(
                pk=device_id[:64], user_id=self._submitter).exists()
        if not self._devices[device_id]:
            raise OrderRejectedError("not_your_peer")
        return self._submitter

    def check(self, token: object, *, now: dt.datetime) -> CheckedOrder:
        try:
            unverified = parse_document(token, DocumentKind.ORDER)
            licence_id = unverified.claims.get("lic")
            if not isinstance(licence_id, str):
                raise OrderRejectedError("malformed")
            known = self._licence(licence_id)
            order = read_order(token, licence=known.core)
        except OrderRejectedError:
            raise
        except LicensingError as exc:
            raise OrderRejectedError(reason_of(exc)) from exc
        try:
            expected = known.manifest.piece_length(order.piece)
        except LicensingError:
            raise OrderRejectedError("piece_out_of_range") from None
        if order.byte_count != expected:
            raise OrderRejectedError("wrong_byte_count")
        issued = dt.datetime.fromtimestamp(order.issued_at, tz=dt.UTC)
        if issued > now + FUTURE_SLACK:
            raise OrderRejectedError("from_the_future")
        if order.issued_at > known.core.expires_at or order.issued_at < known.core.issued_at:
            raise OrderRejectedError("outside_licence_lifetime")
        return CheckedOrder(order=order, licence_pk=known.pk, serving_device=order.peer_id,
                            serving_user=self._serving_user(order.peer_id))
