"""Metering and settlement: orders in, bytes counted, receipts in, escrow released."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError
from redis import RedisError

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.core.errors import ServiceError
from exchange.licensing.keys import platform_keyring
from exchange.licensing.models import Licence
from exchange.metering import stream
from exchange.metering.models import LicenceUsage, MeteredOrder, Receipt
from exchange.metering.stream import OrderEntry
from exchange.metering.verify import CheckedOrder, OrderChecker, OrderRejectedError
from exchange.purchases.models import Purchase, PurchaseState
from exchange.purchases.services import PurchaseClosedError, purchase_settle
from licensing.core import DocumentKind, LicensingError
from licensing.core.licence import Licence as CoreLicence
from licensing.core.licence import licence_from_claims
from licensing.core.receipts import read_receipt

log = logging.getLogger(__name__)

MAX_ORDERS_PER_BATCH = 1000


@dataclass(frozen=True)
class OrderOutcome:
    index: int
    status: str  # accepted | duplicate | rejected
    reason: str = ""


def _entry(checked: CheckedOrder) -> OrderEntry:
    order = checked.order
    return {"licence": str(checked.licence_pk), "nonce": order.nonce,
            "device": checked.serving_device, "user": checked.serving_user,
            "piece": order.piece, "bytes": order.byte_count, "iat": order.issued_at}


def orders_ingest(*, submitter: User, tokens: list[object],
                  now: dt.datetime | None = None) -> list[OrderOutcome]:
    """Check a batch of orders; record the good ones (through the Redis stream when there
    is one, else straight into the database). Each order gets an outcome."""
    if len(tokens) > MAX_ORDERS_PER_BATCH:
        raise ServiceError(_("At most %(max)s orders per batch.") % {"max": MAX_ORDERS_PER_BATCH},
                           code="invalid",
                           field="orders")
    now = now or timezone.now()
    checker = OrderChecker(submitter_id=submitter.pk)
    outcomes: list[OrderOutcome] = []
    good: list[tuple[int, OrderEntry]] = []
    seen: set[tuple[str, str]] = set()
    for index, token in enumerate(tokens):
        try:
            checked = checker.check(token, now=now)
        except OrderRejectedError as exc:
            outcomes.append(OrderOutcome(index, "rejected", exc.reason))
            continue
        key = (str(checked.licence_pk), checked.order.nonce)
        if key in seen:
            outcomes.append(OrderOutcome(index, "duplicate"))
            continue
        seen.add(key)
        good.append((index, _entry(checked)))
    if settings.REDIS_URL:
        outcomes += _ingest_to_stream(good)
    else:
        recorded = orders_record([entry for _i, entry in good])
        outcomes += [OrderOutcome(i, "accepted" if recorded[(e["licence"], e["nonce"])]
                                  else "duplicate") for i, e in good]
    return sorted(outcomes, key=lambda o: o.index)


def _ingest_to_stream(good: list[tuple[int, OrderEntry]]) -> list[OrderOutcome]:
    conn = stream.client()
    fresh = stream.append_new(conn, [entry for _index, entry in good])
    outcomes = [OrderOutcome(index, "accepted" if new else "duplicate")
                for (index, _entry), new in zip(good, fresh, strict=True)]
    if any(fresh):
        from exchange.metering.tasks import metering_flush_task

        # The orders are in the stream: a flush that cannot be queued now (the broker is
        # down) is no reason to refuse them; the periodic flush moves them anyway.
        try:
            stream.schedule_flush_once(conn, lambda: metering_flush_task.apply_async(countdown=1))
        except (BrokerError, RedisError) as exc:
            log.warning("orders accepted, flush not queued (%s); the periodic flush will", exc)
    return outcomes


def orders_record(entries: Iterable[OrderEntry]) -> dict[tuple[str, str], bool]:
    """Insert orders (once each) and count their bytes against each licence's allowance.

    Returns which (licence, nonce) pairs were new. One transaction and a handful of
    statements however many licences the batch touches; the licences' usage rows are
    locked in a fixed order, so concurrent flushes neither deadlock nor over-count.
    """
    by_licence: dict[str, list[OrderEntry]] = defaultdict(list)
    for entry in entries:
        by_licence[entry["licence"]].append(entry)
    result: dict[tuple[str, str], bool] = {}
    if not by_licence:
        return result
    with transaction.atomic():
        allowances = {str(pk): allowance for pk, allowance in Licence.objects.filter(
            pk__in=list(by_licence)).values_list("pk", "byte_allowance")}
        # An order for a licence this database does not hold cannot be billed, and must
        # not stop the rest: the flush would fail on it at every try, metering nothing.
        for unknown in sorted(set(by_licence) - set(allowances)):
            log.error("metering: %d order(s) for licence %s, which does not exist, dropped",
                      len(by_licence[unknown]), unknown)
            for entry in by_licence.pop(unknown):
                result[(unknown, entry["nonce"])] = False
        ids = sorted(by_licence)
        LicenceUsage.objects.bulk_create([LicenceUsage(licence_id=i) for i in ids],
                                          ignore_conflicts=True)
        usages = {str(u.licence_id): u for u in LicenceUsage.objects.select_for_update()
                  .filter(licence_id__in=ids).order_by("licence_id")}
        nonces = {e["nonce"] for batch in by_licence.values() for e in batch}
        existing = {(str(licence), nonce) for licence, nonce in MeteredOrder.objects.filter(
            licence_id__in=ids, nonce__in=nonces).values_list("licence_id", "nonce")}
        rows = []
        for licence_id in ids:
            usage, allowance = usages[licence_id], allowances[licence_id]
            for entry in sorted(by_licence[licence_id], key=lambda e: (e["iat"], e["nonce"])):
                key = (licence_id, entry["nonce"])
                result[key] = key not in existing
                if key in existing:
                    continue
                existing.add(key)
                counted = max(0, min(entry["bytes"], allowance - usage.metered_bytes))
                usage.metered_bytes += counted
                usage.order_count += 1
                rows.append(MeteredOrder(
                    licence_id=licence_id, nonce=entry["nonce"], serving_device_id=entry["device"],
                    serving_user_id=entry["user"], piece=entry["piece"], bytes=entry["bytes"],
                    counted_bytes=counted,
                    issued_at=dt.datetime.fromtimestamp(entry["iat"], tz=dt.UTC)))
        MeteredOrder.objects.bulk_create(rows, batch_size=2000)
        LicenceUsage.objects.bulk_update(list(usages.values()),
                                         ["metered_bytes", "order_count"], batch_size=1000)
    return result


def metering_flush(*, batch: int = 2000, min_idle_ms: int = 30_000,
                   crash_after_commit: Callable[[], None] | None = None) -> int:
    """Move orders from the stream into the database; return how many entries were handled.

    ``crash_after_commit`` exists for the tests that kill a flush between the database
    commit and the acknowledgement.
    """
    if not settings.REDIS_URL:
        return 0
    conn = stream.client()
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    handled = 0
    stream.clear_flush_flag(conn)
    while True:
        entries = stream.read_batch(conn, consumer=consumer, count=batch, min_idle_ms=min_idle_ms)
        if not entries:
            return handled
        orders_record(entry for _id, entry in entries)
        if crash_after_commit is not None:
            crash_after_commit()
        stream.acknowledge(conn, [entry_id for entry_id, _entry in entries])
        handled += len(entries)


# --- receipts and settlement ---------------------------------------------------------------


def _core_licence(licence: Licence) -> CoreLicence:
    kid, claims = platform_keyring().verify(licence.token, DocumentKind.LICENCE)
    return licence_from_claims(kid, claims)


def receipt_accept(*, licence: Licence, token: str, now: dt.datetime | None = None) -> Receipt:
    """Verify and keep the buyer's receipt; settlement follows once serving peers' orders
    have had ``METERING_GRACE_SECONDS`` to arrive. The same receipt again is a no-op."""
    now = now or timezone.now()
    try:
        receipt = read_receipt(token, licence=_core_licence(licence), now=int(now.timestamp()))
    except LicensingError as exc:
        raise ServiceError(_("The receipt does not verify: %(error)s") % {"error": exc},
                           code="invalid_receipt",
                           field="receipt") from exc
    existing = Receipt.objects.filter(licence=licence).first()
    if existing is not None:
        if existing.receipt_id == receipt.receipt_id:
            return existing
        raise ServiceError(_("This licence already has a receipt."), code="receipt_exists",
                           status_code=409)
    purchase = licence_purchase(licence)
    # A purchase's licences are its own and its re-issues to the buyer's other devices:
    # the first receipt from any of them settles it, and the others' receipts are still
    # kept (the marking audit checks every delivered copy) but settle nothing.
    if purchase is None or purchase.state == PurchaseState.REFUNDED:
        raise ServiceError(_("This purchase was refunded."),
                           code="purchase_closed", status_code=409)
    try:
        with transaction.atomic():
            row = Receipt.objects.create(
                licence=licence, receipt_id=receipt.receipt_id, token=token,
                output_sha256=receipt.output_sha256.hex(), marked=receipt.marked,
                unmarked_reason=receipt.unmarked_reason.value if receipt.unmarked_reason else "",
                claimed_bytes=dict(receipt.served),
                settle_after=now + dt.timedelta(seconds=settings.METERING_GRACE_SECONDS),
            )
            audit_record(actor=licence.buyer, action="receipt.accept", target=row,
                         data={"sha256": row.output_sha256, "marked": row.marked})
            transaction.on_commit(lambda: _queue_settlement(row.pk))
    except IntegrityError:
        # Either a concurrent delivery of this receipt won the race (answer with its row),
        # or the device reused a receipt id from another of its licences.
        existing = Receipt.objects.filter(licence=licence).first()
        if existing is not None and existing.receipt_id == receipt.receipt_id:
            return existing
        raise ServiceError(_("This receipt's id is already used; a receipt needs its own id."),
                           code="receipt_exists", status_code=409) from None
    return row


def licence_purchase(licence: Licence) -> Purchase | None:
    """The purchase that paid for a licence: its own, or its origin's for a re-issue."""
    if licence.origin_id is not None:
        return Purchase.objects.filter(licence_id=licence.origin_id).first()
    return getattr(licence, "purchase", None)


def _queue_settlement(receipt_pk: int) -> None:
    from exchange.metering.tasks import receipt_settle_task

    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # the periodic job settles once the grace period is over
    # The receipt is kept (this runs after its commit): with the broker down, the
    # periodic job (``settle_receipts``) settles it instead, so the buyer hears 201.
    try:
        receipt_settle_task.apply_async(args=[receipt_pk],
                                        countdown=settings.METERING_GRACE_SECONDS + 1)
    except (BrokerError, RedisError) as exc:
        log.warning("receipt %s kept, settlement not queued (%s); the periodic job will "
                    "settle it", receipt_pk, exc)


def receipt_settle(*, receipt_pk: int, now: dt.datetime | None = None,
                   flush: bool = True) -> bool:
    """Settle one receipted purchase on the verified orders; True if it settled now.

    ``flush`` first moves every accepted order into the database; a caller settling
    many receipts flushes once itself and passes False.
    """
    now = now or timezone.now()
    receipt = Receipt.objects.select_related("licence", "licence__purchase").get(pk=receipt_pk)
    if receipt.settled_at is not None or receipt.settle_after > now:
        return False
    if flush:
        metering_flush(min_idle_ms=0)
    purchase = licence_purchase(receipt.licence)
    assert purchase is not None  # a receipt is accepted only for a purchased licence
    # Seeding credit is paid once per purchase, out of its seeding share, pro rata to the
    # verified bytes served under any of its licences by the time it settles.
    root = receipt.licence.origin_id or receipt.licence.pk
    family = MeteredOrder.objects.filter(Q(licence_id=root) | Q(licence__origin_id=root))
    by_user: dict[int, int] = defaultdict(int)
    for user_id, total in (family.values("serving_user_id").annotate(total=Sum("counted_bytes"))
                           .values_list("serving_user_id", "total")):
        by_user[user_id] += int(total)
    # The receipt's claims are compared with the orders under its own licence.
    verified: dict[str, int] = defaultdict(int)
    for device_id, total in (
        MeteredOrder.objects.filter(licence=receipt.licence)
        .values("serving_device_id").annotate(total=Sum("counted_bytes"))
        .values_list("serving_device_id", "total")
    ):
        verified[device_id] += int(total)
    claimed = {k: int(v) for k, v in receipt.claimed_bytes.items()}
    disagreement = _disagreement(claimed, dict(verified))
    # Settled or refunded meanwhile (another flusher, an admin): the receipt is done anyway.
    with contextlib.suppress(PurchaseClosedError):
        purchase_settle(purchase_id=purchase.pk, peer_bytes=dict(by_user))
    Receipt.objects.filter(pk=receipt.pk, settled_at__isnull=True).update(
        settled_at=now, needs_review=bool(disagreement), review_reason=disagreement[:300])
    return True


def _disagreement(claimed: dict[str, int], verified: dict[str, int]) -> str:
    differences = []
    for peer in sorted(set(claimed) | set(verified)):
        said, proven = claimed.get(peer, 0), verified.get(peer, 0)
        if said != proven:
            differences.append(f"{peer[:12]}: receipt {said}, orders {proven}")
    return "; ".join(differences)


def receipts_settle_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    now = now or timezone.now()
    due = list(Receipt.objects.filter(settled_at__isnull=True, settle_after__lte=now)
               .order_by("settle_after").values_list("pk", flat=True)[:limit])
    if not due:
        return 0
    metering_flush(min_idle_ms=0)
    return sum(receipt_settle(receipt_pk=pk, now=now, flush=False) for pk in due)
