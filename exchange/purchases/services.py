"""Buying, settling and refunding: the money half of a sale.

``purchase_create`` debits the wallet into the buyer's escrow account and issues the
licence in one transaction; ``purchase_settle`` posts the escrow onward once delivery
is confirmed; ``purchase_refund`` voids it. Each moves a purchase out of ``held`` by a
compare-and-swap under a row lock, so each happens once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.catalogue.models import Work, WorkStatus
from exchange.core.errors import ServiceError
from exchange.ledger.models import Account, AccountKind, EntryKind
from exchange.ledger.services import (
    InsufficientFundsError,
    Leg,
    account_get_or_create,
    ledger_post,
    platform_account,
)
from exchange.licensing.models import Device, Licence
from exchange.licensing.services import licence_issue, licence_revoke, package_get
from exchange.money.currencies import format_minor
from exchange.money.splits import sale_split
from exchange.purchases.models import Invoice, Purchase, PurchaseState, Settlement


class PurchaseClosedError(ServiceError):
    status_code = 409
    code = "purchase_closed"


# What a sale reads of the work and its owner (the seller's name goes on the invoice).
_SALE_FIELDS = ("owner", "title", "status", "price_minor", "currency", "allowed_uses",
                "licence_days", "byte_allowance_multiple", "owner__username",
                "owner__first_name", "owner__last_name")


def _work_on_sale(work_id: uuid.UUID | str) -> Work:
    try:
        key = uuid.UUID(str(work_id))
    except ValueError:
        key = None
    work = (Work.objects.select_related("owner").only(*_SALE_FIELDS).filter(pk=key).first()
            if key else None)
    if work is None or work.status not in (WorkStatus.READY, WorkStatus.WITHDRAWN):
        raise ServiceError(_("No such work."), code="not_found", status_code=404,
                           field="work")
    if work.status == WorkStatus.WITHDRAWN:
        raise ServiceError(_("This work has been withdrawn from sale."), code="work_withdrawn",
                           status_code=409, field="work")
    return work


def _device_of(buyer: User, device_id: str) -> Device:
    device = (Device.objects.only("user", "signing_public", "kem_public", "revoked_at")
              .filter(device_id=str(device_id)[:64], user=buyer).first())
    if device is None:
        raise ServiceError(_("No such device on your account; run `init` first."),
                           code="unknown_device", status_code=400, field="device")
    return device


def _buyer_accounts(buyer: User, currency: str) -> tuple[Account, Account]:
    """The buyer's wallet and escrow account in ``currency`` (one query when both exist)."""
    found = {a.kind: a for a in Account.objects.only("kind", "currency", "guarded").filter(
        kind__in=(AccountKind.WALLET, AccountKind.ESCROW), owner=buyer, currency=currency,
        reference="")}
    wallet = found.get(AccountKind.WALLET)
    if wallet is not None:
        escrow = found.get(AccountKind.ESCROW) or account_get_or_create(
            kind=AccountKind.ESCROW, owner=buyer, currency=currency)
        return wallet, escrow
    others = sorted(Account.objects.filter(kind=AccountKind.WALLET, owner=buyer, reference="",
                                           balance__gt=0).values_list("currency", flat=True))
    if others:
        raise ServiceError(
            _("This work is sold in %(currency)s; your wallet holds %(held)s. "
              "Top up in %(currency)s to buy it.")
            % {"currency": currency, "held": ", ".join(others)},
            code="currency_mismatch", status_code=409, field="work",
        )
    raise InsufficientFundsError(_("Your %(currency)s wallet is empty; top up first.")
                                 % {"currency": currency})


def purchase_create(*, buyer: User, work_id: uuid.UUID | str, device_id: str,
                    expected_price_minor: int | None = None,
                    expected_currency: str | None = None,
                    now: dt.datetime | None = None) -> Purchase:
    """Buy a work for one of the buyer's devices: wallet to escrow, licence issued.

    Three reads (the work with its owner, the device, the buyer's accounts), then one
    transaction of eight writes: the wallet debited and checked in one conditional
    UPDATE, the escrow credited, the journal entry and its postings, the licence, the
    purchase, the invoice and the audit row.
    """
    now = now or timezone.now()
    work = _work_on_sale(work_id)
    if work.owner_id == buyer.pk:
        raise ServiceError(_("You cannot buy your own work."), code="own_work", status_code=409,
                           field="work")
    if (expected_price_minor is not None and expected_price_minor != work.price_minor) or (
        expected_currency is not None and expected_currency != work.currency
    ):
        raise ServiceError(
            _("The price is now %(price)s.")
            % {"price": format_minor(work.price_minor, work.currency)},
            code="price_changed", status_code=409, field="expected_price_minor",
        )
    device = _device_of(buyer, device_id)
    package = package_get(work.pk)
    if package is None:
        raise ServiceError(_("This work is not ready yet."), code="not_ready", status_code=409,
                           field="work")
    wallet, escrow = _buyer_accounts(buyer, work.currency)
    purchase_id = uuid.uuid4()
    # All or nothing, as part of the caller's transaction if there is one (the API's,
    # which also stores the response): no savepoint of its own, so a failure here
    # rolls back the caller's transaction too rather than leaving it half done.
    with transaction.atomic(savepoint=False):
        ledger_post(kind=EntryKind.PURCHASE, reference=str(purchase_id),
                    memo=f"{work.title[:150]} into escrow",
                    legs=[Leg(wallet, -work.price_minor), Leg(escrow, work.price_minor)],
                    fresh_reference=True)
        licence = licence_issue(
            buyer=buyer, device=device, package=package, uses=list(work.allowed_uses),
            lifetime=dt.timedelta(days=work.licence_days),
            byte_allowance=package.ciphertext_size * work.byte_allowance_multiple, now=now,
        )
        purchase = Purchase.objects.create(
            id=purchase_id, buyer=buyer, work=work, licence=licence,
            price_minor=work.price_minor, currency=work.currency,
            fee_bps=settings.PLATFORM_FEE_BPS, seeding_bps=settings.SEEDING_SHARE_BPS,
            receipt_due_at=now + dt.timedelta(hours=settings.RECEIPT_WINDOW_HOURS),
        )
        Invoice.objects.create(
            purchase=purchase, buyer_name=buyer.get_full_name() or buyer.username,
            seller_name=work.owner.get_full_name() or work.owner.username,
            description=f"Licence to “{work.title[:200]}” ({', '.join(work.allowed_uses)})",
            amount_minor=work.price_minor, currency=work.currency,
        )
        audit_record(actor=buyer, action="purchase.create", target=purchase,
                     data={"work": str(work.pk), "price_minor": work.price_minor,
                           "currency": work.currency, "licence": str(licence.pk)})
    return purchase


def _lock_held(purchase_id: uuid.UUID | str) -> Purchase:
    purchase = (Purchase.objects.select_for_update(of=("self",))
                .select_related("work", "work__owner", "buyer").get(pk=purchase_id))
    if purchase.state != PurchaseState.HELD:
        raise PurchaseClosedError(_("This purchase is already %(state)s.")
                                  % {"state": purchase.state})
    return purchase


def _escrow_of(purchase: Purchase) -> Account:
    return account_get_or_create(kind=AccountKind.ESCROW, owner=purchase.buyer,
                                 currency=purchase.currency)


def purchase_settle(*, purchase_id: uuid.UUID | str, peer_bytes: Mapping[int, int],
                    settle_minor: int | None = None) -> Settlement:
    """Release escrow: royalty, platform fee, seeding credit pro rata to verified bytes per
    serving user; any part not settled goes back to the buyer. Once per purchase."""
    with transaction.atomic():
        purchase = _lock_held(purchase_id)
        amount = purchase.price_minor if settle_minor is None else settle_minor
        if not 0 <= amount <= purchase.price_minor:
            raise ValueError("a settlement is between nothing and the whole price")
        # The buyer is never paid for serving their own purchase.
        served = {int(user): int(count) for user, count in peer_bytes.items()
                  if int(user) != purchase.buyer_id and count > 0}
        package = package_get(purchase.work_id)
        assert package is not None  # a work is on sale only once packaged
        split = sale_split(amount, fee_bps=purchase.fee_bps, seeding_bps=purchase.seeding_bps,
                           peer_bytes=served, size=package.ciphertext_size)
        currency = purchase.currency
        legs = [Leg(_escrow_of(purchase), -purchase.price_minor)]
        owner = purchase.work.owner
        parts = [
            (account_get_or_create(kind=AccountKind.EARNINGS, owner=owner, currency=currency),
             split.royalty),
            (platform_account(kind=AccountKind.FEES, currency=currency), split.fee),
        ]
        users = {u.pk: u for u in User.objects.filter(pk__in=split.peers)}
        parts += [
            (account_get_or_create(kind=AccountKind.SEEDING, owner=users[peer],
                                   currency=currency), credit)
            for peer, credit in split.peers.items()
        ]
        refund = purchase.price_minor - amount
        if refund:
            parts.append((account_get_or_create(kind=AccountKind.WALLET, owner=purchase.buyer,
                                                currency=currency), refund))
        legs += [Leg(account, value) for account, value in parts if value]
        ledger_post(kind=EntryKind.SETTLEMENT, reference=str(purchase.pk),
                    memo=f"settlement of {purchase.work.title[:150]}", legs=legs)
        Purchase.objects.filter(pk=purchase.pk).update(state=PurchaseState.SETTLED,
                                                       closed_at=timezone.now())
        settlement = Settlement.objects.create(
            purchase=purchase, settled_minor=amount, refunded_minor=refund,
            royalty_minor=split.royalty, fee_minor=split.fee, seeding_minor=split.seeding,
            peer_bytes={str(k): v for k, v in served.items()},
            peer_credit={str(k): v for k, v in split.peers.items()},
        )
        audit_record(actor=None, action="purchase.settle", target=purchase,
                     data={"royalty": split.royalty, "fee": split.fee,
                           "seeding": split.seeding, "refund": refund})
    return settlement


def purchase_refund(*, purchase_id: uuid.UUID | str, reason: str,
                    actor: User | None = None) -> Purchase:
    """Void the hold: all of the escrow back to the buyer, and the licence revoked."""
    with transaction.atomic():
        purchase = _lock_held(purchase_id)
        wallet = account_get_or_create(kind=AccountKind.WALLET, owner=purchase.buyer,
                                       currency=purchase.currency)
        ledger_post(kind=EntryKind.REFUND, reference=str(purchase.pk), memo=f"refund: {reason}",
                    legs=[Leg(_escrow_of(purchase), -purchase.price_minor),
                          Leg(wallet, purchase.price_minor)])
        Purchase.objects.filter(pk=purchase.pk).update(state=PurchaseState.REFUNDED,
                                                       closed_at=timezone.now())
        if purchase.licence is not None:
            # The purchase paid for its licence's re-issues to the buyer's other devices
            # too (``exchange.licensing.library``): a refund revokes them all. Locking the
            # buyer's licences for the work, in id order as a re-issue or a move does,
            # waits out one in progress without the two ever waiting on each other, so
            # the query below sees the licence it made.
            list(Licence.objects.select_for_update()
                 .filter(buyer_id=purchase.buyer_id, work_id=purchase.licence.work_id)
                 .order_by("pk").values_list("pk", flat=True))
            for licence in Licence.objects.filter(
                    Q(pk=purchase.licence.pk) | Q(origin=purchase.licence.pk),
                    revoked_at__isnull=True):
                licence_revoke(licence=licence, reason=f"refunded: {reason}", actor=actor)
        audit_record(actor=actor, action="purchase.refund", target=purchase,
                     data={"reason": reason})
    purchase.refresh_from_db()
    return purchase


def purchases_refund_overdue(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Refund every held purchase whose receipt window has passed. Each in its own
    transaction, so one failure never blocks the rest; safe to run from several workers."""
    now = now or timezone.now()
    # A receipt from any of the purchase's licences (a re-issue's too) confirms delivery.
    delivered = Licence.objects.filter(Q(pk=OuterRef("licence")) | Q(origin=OuterRef("licence")),
                                       receipt__isnull=False)
    due = list(Purchase.objects.filter(state=PurchaseState.HELD, receipt_due_at__lt=now)
               .exclude(Exists(delivered))
               .order_by("receipt_due_at").values_list("pk", flat=True)[:limit])
    refunded = 0
    for purchase_id in due:
        try:
            purchase_refund(purchase_id=purchase_id, reason="no receipt within the window")
        except PurchaseClosedError:
            continue  # settled or refunded meanwhile by another worker
        refunded += 1
    return refunded
