"""Top-ups and payouts: starting them, and applying the provider's webhooks to them.

Money moves only when a verified webhook says so: a top-up credits the wallet on
``topup.succeeded``; a payout moves funds to a payout-pending account when requested and
then out (``payout.paid``) or back (``payout.failed``). State changes are compare-and-swap
updates on the state column, so each transition happens once however often, and in
whatever order, the events arrive.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from exchange.accounts.models import User
from exchange.audit.services import audit_record
from exchange.core.errors import ServiceError
from exchange.ledger.models import AccountKind, EntryKind
from exchange.ledger.services import Leg, account_get_or_create, ledger_post, platform_account
from exchange.money.currencies import format_minor, is_known_currency, minor_unit_exponent
from exchange.money.limits import limit_minor
from exchange.payments.models import Payout, PayoutSource, PayoutState, TopUp, TopUpState
from exchange.payments.providers import options_clean, provider_get


def _check_amount(amount_minor: int, currency: str, *, ceiling_major: int,
                  scaled: bool = True) -> None:
    if not is_known_currency(currency):
        raise ServiceError(_("Unknown currency %(code)r.") % {"code": currency}, code="invalid",
                           field="currency")
    if amount_minor <= 0:
        raise ServiceError(_("The amount must be greater than zero."), code="invalid",
                           field="amount_minor")
    ceiling = (limit_minor(ceiling_major, currency) if scaled
               else ceiling_major * 10 ** minor_unit_exponent(currency))
    if amount_minor > ceiling:
        raise ServiceError(
            _("The amount is above the limit of %(limit)s.")
            % {"limit": format_minor(ceiling, currency)},
            code="invalid", field="amount_minor",
        )


def topup_create(*, user: User, amount_minor: int, currency: str,
                 options: Mapping[str, str] | None = None) -> TopUp:
    """Ask the provider to collect money for ``user``'s wallet. Nothing is credited yet.

    ``options`` are the configured provider's own (``PaymentProvider.options``)."""
    _check_amount(amount_minor, currency, ceiling_major=settings.MAX_TOPUP_MAJOR)
    provider = provider_get()
    chosen = options_clean(provider, "topup", options or {})
    with transaction.atomic():
        topup = TopUp.objects.create(
            user=user, amount_minor=amount_minor, currency=currency, provider=provider.name,
            provider_ref=provider.reference_new(),
        )
        audit_record(actor=user, action="topup.create", target=topup,
                     data={"amount_minor": amount_minor, "currency": currency})
        transaction.on_commit(
            lambda: provider.topup_start(
                reference=topup.provider_ref, amount_minor=amount_minor, currency=currency,
                options=chosen,
            )
        )
    return topup


def payout_minimum(currency: str) -> int:
    return limit_minor(settings.PAYOUT_MINIMUM_MAJOR, currency)


PAYOUT_ACCOUNTS: dict[str, AccountKind] = {
    PayoutSource.EARNINGS: AccountKind.EARNINGS,
    PayoutSource.SEEDING: AccountKind.SEEDING,
    PayoutSource.COMPUTE: AccountKind.COMPUTE,
}
"""The account each payout source draws on (and a returned payout goes back to)."""


def payout_request(*, user: User, source: str, amount_minor: int, currency: str,
                   options: Mapping[str, str] | None = None) -> Payout:
    """Move ``amount_minor`` from the user's earnings, seeding credit or compute credit to
    payout-pending, and ask the provider to pay it out. ``options`` as for
    ``topup_create``."""
    if source not in PAYOUT_ACCOUNTS:
        names = list(PAYOUT_ACCOUNTS)
        raise ServiceError(_("Pay out from %(sources)s.")
                           % {"sources": ", ".join(names[:-1]) + " or " + names[-1]},
                           code="invalid", field="source")
    _check_amount(amount_minor, currency, ceiling_major=10**12, scaled=False)
    minimum = payout_minimum(currency)
    if amount_minor < minimum:
        raise ServiceError(
            _("Payouts start at %(minimum)s.") % {"minimum": format_minor(minimum, currency)},
            code="below_threshold",
            field="amount_minor",
        )
    provider = provider_get()
    chosen = options_clean(provider, "payout", options or {})
    with transaction.atomic():
        payout = Payout.objects.create(
            user=user, source=source, amount_minor=amount_minor, currency=currency,
            provider=provider.name, provider_ref=provider.reference_new(),
        )
        funds = account_get_or_create(kind=PAYOUT_ACCOUNTS[source], owner=user,
                                      currency=currency)
        pending = account_get_or_create(kind=AccountKind.PAYOUT_PENDING, owner=user,
                                        currency=currency)
        ledger_post(kind=EntryKind.PAYOUT, reference=str(payout.pk),
                    memo=f"payout requested from {source}",
                    legs=[Leg(funds, -amount_minor), Leg(pending, amount_minor)])
        audit_record(actor=user, action="payout.request", target=payout,
                     data={"amount_minor": amount_minor, "currency": currency, "source": source})
        transaction.on_commit(
            lambda: provider.payout_start(
                reference=payout.provider_ref, amount_minor=amount_minor, currency=currency,
                options=chosen,
            )
        )
    return payout


class EventMismatchError(ServiceError):
    code = "event_mismatch"


def _check_matches(record: TopUp | Payout, amount_minor: object, currency: object) -> None:
    if amount_minor != record.amount_minor or currency != record.currency:
        raise EventMismatchError(
            f"The event's amount {amount_minor} {currency} does not match "
            f"{record.amount_minor} {record.currency}."
        )


def topup_apply(*, event_type: str, reference: str, amount_minor: object, currency: object,
                reason: str) -> str:
    """Apply a top-up event. Runs inside the webhook's transaction."""
    topup = TopUp.objects.select_for_update().filter(provider_ref=reference).first()
    if topup is None:
        raise ServiceError(f"No top-up {reference}.", code="unknown_reference")
    _check_matches(topup, amount_minor, currency)
    if event_type == "topup.processing":
        moved = TopUp.objects.filter(pk=topup.pk, state=TopUpState.PENDING).update(
            state=TopUpState.PROCESSING)
        return "processing" if moved else f"ignored: top-up already {topup.state}"
    if event_type == "topup.failed":
        moved = TopUp.objects.filter(
            pk=topup.pk, state__in=[TopUpState.PENDING, TopUpState.PROCESSING]
        ).update(state=TopUpState.FAILED, failure_reason=reason[:200])
        if moved:
            audit_record(actor=None, action="topup.failed", target=topup, data={"reason": reason})
        return "failed" if moved else f"ignored: top-up already {topup.state}"
    # topup.succeeded
    moved = TopUp.objects.filter(
        pk=topup.pk, state__in=[TopUpState.PENDING, TopUpState.PROCESSING]
    ).update(state=TopUpState.SUCCEEDED)
    if not moved:
        return f"ignored: top-up already {topup.state}"
    wallet = account_get_or_create(kind=AccountKind.WALLET, owner=topup.user,
                                   currency=topup.currency)
    clearing = platform_account(kind=AccountKind.CLEARING, currency=topup.currency)
    ledger_post(kind=EntryKind.TOPUP, reference=str(topup.pk), memo="top-up",
                legs=[Leg(clearing, -topup.amount_minor), Leg(wallet, topup.amount_minor)])
    audit_record(actor=None, action="topup.succeeded", target=topup,
                 data={"amount_minor": topup.amount_minor, "currency": topup.currency})
    return "credited"


def payout_apply(*, event_type: str, reference: str, amount_minor: object, currency: object,
                 reason: str) -> str:
    payout = Payout.objects.select_for_update().filter(provider_ref=reference).first()
    if payout is None:
        raise ServiceError(f"No payout {reference}.", code="unknown_reference")
    _check_matches(payout, amount_minor, currency)
    paid = event_type == "payout.paid"
    moved = Payout.objects.filter(pk=payout.pk, state=PayoutState.PENDING).update(
        state=PayoutState.PAID if paid else PayoutState.RETURNED,
        failure_reason="" if paid else reason[:200],
    )
    if not moved:
        return f"ignored: payout already {payout.state}"
    pending = account_get_or_create(kind=AccountKind.PAYOUT_PENDING, owner=payout.user,
                                    currency=payout.currency)
    if paid:
        target = platform_account(kind=AccountKind.CLEARING, currency=payout.currency)
        kind, memo = EntryKind.PAYOUT_PAID, "payout paid"
    else:
        target = account_get_or_create(kind=PAYOUT_ACCOUNTS[payout.source], owner=payout.user,
                                       currency=payout.currency)
        kind, memo = EntryKind.PAYOUT_RETURNED, f"payout returned: {reason}"
    ledger_post(kind=kind, reference=str(payout.pk), memo=memo,
                legs=[Leg(pending, -payout.amount_minor), Leg(target, payout.amount_minor)])
    audit_record(actor=None, action=f"payout.{'paid' if paid else 'returned'}", target=payout,
                 data={"reason": reason} if not paid else {})
    return "paid" if paid else "returned"
