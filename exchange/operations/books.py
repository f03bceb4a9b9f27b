"""Check the books: the invariants the money rules promise, read back from the database.

The ledger's own code refuses an unbalanced entry and a negative wallet as it posts, and
the database's constraints back it up. This check reads everything back afterwards, the
way an auditor would, for the times the code's promises matter most and are least
observable: after a crash (the fault drills), after a restore from backup, after a load
run, and on demand (``manage.py check_books``). Each rule is a few aggregate queries, so
the check stays cheap on a large ledger. An empty list means the books are right.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from django.db.models import Count, F, Q, Sum

from exchange.compute_market.models import ComputeJob, ComputePayment, JobEarning, JobState
from exchange.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from exchange.metering.models import MeteredOrder, Receipt
from exchange.payments.models import Payout, PayoutState, TopUp, TopUpState
from exchange.purchases.models import Purchase, PurchaseState, Settlement

Rule = Callable[[], Iterable[str]]


def entries_balance() -> Iterable[str]:
    """Every journal entry's postings sum to zero in each currency, and it has some."""
    for entry, currency, total in (
        Posting.objects.values("entry_id", "currency").annotate(total=Sum("amount"))
        .exclude(total=0).values_list("entry_id", "currency", "total")
    ):
        yield f"entry #{entry} does not balance in {currency}: {total:+d}"
    for entry in JournalEntry.objects.filter(postings__isnull=True).values_list("pk", flat=True):
        yield f"entry #{entry} has no postings"
    for posting, account in (Posting.objects.exclude(currency=F("account__currency"))
                             .values_list("pk", "account_id")):
        yield f"posting #{posting} is in another currency than its account #{account}"


def balances_hold() -> Iterable[str]:
    """No guarded account is negative, and each cached balance is its postings' sum."""
    sums = dict(Posting.objects.values("account_id").annotate(total=Sum("amount"))
                .values_list("account_id", "total"))
    for pk, kind, cached in Account.objects.filter(guarded=True).values_list(
            "pk", "kind", "balance"):
        posted = int(sums.get(pk) or 0)
        if posted < 0:
            yield f"{kind} account #{pk} is negative: {posted}"
        if cached != posted:
            yield f"{kind} account #{pk} caches {cached} but its postings sum to {posted}"


def money_in_matches_money_out() -> Iterable[str]:
    """What the platform holds for everyone = succeeded top-ups minus paid payouts, per
    currency. Money enters and leaves only through the provider's clearing account, so
    its balance is the negative of that difference."""
    expected: dict[str, int] = defaultdict(int)
    for currency, total in (TopUp.objects.filter(state=TopUpState.SUCCEEDED)
                            .values("currency").annotate(total=Sum("amount_minor"))
                            .values_list("currency", "total")):
        expected[currency] += int(total)
    for currency, total in (Payout.objects.filter(state=PayoutState.PAID)
                            .values("currency").annotate(total=Sum("amount_minor"))
                            .values_list("currency", "total")):
        expected[currency] -= int(total)
    held: dict[str, int] = defaultdict(int)
    for currency, total in (Posting.objects.exclude(account__kind=AccountKind.CLEARING)
                            .values("currency").annotate(total=Sum("amount"))
                            .values_list("currency", "total")):
        held[currency] += int(total)
    for currency in sorted(set(expected) | set(held)):
        if held[currency] != expected[currency]:
            yield (f"{currency}: accounts hold {held[currency]} but top-ups less payouts "
                   f"are {expected[currency]}")


def _entry_amounts(kind: str) -> dict[str, int]:
    """Reference → the amount the entry moved (its positive side)."""
    return {ref: int(total) for ref, total in (
        Posting.objects.filter(entry__kind=kind, amount__gt=0)
        .values("entry__reference").annotate(total=Sum("amount"))
        .values_list("entry__reference", "total"))}


def provider_payments_posted() -> Iterable[str]:
    """Each succeeded top-up credited once for its amount, no other top-up credited; each
    payout requested once, and paid or returned once as its state says."""
    credited = _entry_amounts(EntryKind.TOPUP)
    for pk, state, amount in TopUp.objects.values_list("pk", "state", "amount_minor"):
        got = credited.pop(str(pk), None)
        if state == TopUpState.SUCCEEDED and got != amount:
            yield f"top-up {pk} succeeded for {amount} but was credited {got}"
        if state != TopUpState.SUCCEEDED and got is not None:
            yield f"top-up {pk} is {state} but was credited {got}"
    yield from (f"top-up entry for unknown top-up {ref}" for ref in credited)
    requested = _entry_amounts(EntryKind.PAYOUT)
    paid = _entry_amounts(EntryKind.PAYOUT_PAID)
    returned = _entry_amounts(EntryKind.PAYOUT_RETURNED)
    for pk, state, amount in Payout.objects.values_list("pk", "state", "amount_minor"):
        ref = str(pk)
        if requested.pop(ref, None) != amount:
            yield f"payout {pk} was not moved to payout-pending exactly once for {amount}"
        if (paid.pop(ref, None) is not None) != (state == PayoutState.PAID):
            yield f"payout {pk} is {state} but its paid entry says otherwise"
        if (returned.pop(ref, None) is not None) != (state == PayoutState.RETURNED):
            yield f"payout {pk} is {state} but its returned entry says otherwise"
    for ref in (*requested, *paid, *returned):
        yield f"payout entry for unknown payout {ref}"


# A purchase's state → (settlement entry, refund entry, settlement row) it must have.
_CLOSES: dict[str, tuple[bool, bool, bool]] = {
    PurchaseState.HELD: (False, False, False),
    PurchaseState.SETTLED: (True, False, True),
    PurchaseState.REFUNDED: (False, True, False),
}


def purchases_closed_once() -> Iterable[str]:
    """Each purchase paid into escrow once; held, settled or refunded, with exactly the
    entries its state implies; and each buyer's escrow holds exactly their held prices."""
    paid = _entry_amounts(EntryKind.PURCHASE)
    settled = set(JournalEntry.objects.filter(kind=EntryKind.SETTLEMENT)
                  .values_list("reference", flat=True))
    refunded = set(JournalEntry.objects.filter(kind=EntryKind.REFUND)
                   .values_list("reference", flat=True))
    with_row = {str(pk) for pk in Settlement.objects.values_list("purchase_id", flat=True)}
    escrow: dict[tuple[int, str], int] = defaultdict(int)
    for pk, state, price, buyer, currency, licence in Purchase.objects.values_list(
            "pk", "state", "price_minor", "buyer_id", "currency", "licence_id"):
        ref = str(pk)
        if paid.pop(ref, None) != price:
            yield f"purchase {pk} was not paid into escrow exactly once for {price}"
        if licence is None:
            yield f"purchase {pk} has no licence"
        closes = (ref in settled, ref in refunded, ref in with_row)
        wanted = _CLOSES.get(state)
        if closes != wanted:
            yield (f"purchase {pk} is {state} but has settlement entry {closes[0]}, "
                   f"refund entry {closes[1]}, settlement row {closes[2]}")
        settled.discard(ref)
        refunded.discard(ref)
        if state == PurchaseState.HELD:
            escrow[(buyer, currency)] += price
    for ref in (*paid, *settled, *refunded):
        yield f"purchase entry for unknown purchase {ref}"
    # A purchase's escrow is the buyer's one per currency; a compute job's has a reference.
    for owner, currency, balance in Account.objects.filter(
            kind=AccountKind.ESCROW, reference="").values_list("owner_id", "currency", "balance"):
        held = escrow.pop((owner, currency), 0)
        if balance != held:
            yield f"escrow of user {owner} in {currency} holds {balance}, held purchases {held}"
    for (owner, currency), held in escrow.items():
        yield f"user {owner} has {held} {currency} in held purchases but no escrow account"


def orders_settled_once() -> Iterable[str]:
    """A purchase settled on its receipt paid seeding credit for exactly the bytes of the
    orders recorded by then (each order once: the unique nonce sees to that), to each
    serving user other than the buyer. A purchase's orders and receipts are those of its
    licence and of that licence's re-issues to the buyer's other devices."""
    duplicates = (MeteredOrder.objects.values("licence_id", "nonce").annotate(n=Count("pk"))
                  .filter(n__gt=1).count())
    if duplicates:
        yield f"{duplicates} orders are recorded more than once"
    on_receipt = Settlement.objects.filter(
        Q(purchase__licence__receipt__settled_at__isnull=False)
        | Q(purchase__licence__reissues__receipt__settled_at__isnull=False)
    ).distinct().select_related("purchase")
    for settlement in on_receipt.iterator():
        purchase = settlement.purchase
        served = {str(user): int(total) for user, total in (
            MeteredOrder.objects.filter(Q(licence__purchase=purchase)
                                        | Q(licence__origin__purchase=purchase),
                                        recorded_at__lte=settlement.created_at)
            .exclude(serving_user_id=purchase.buyer_id)
            .values("serving_user_id").annotate(total=Sum("counted_bytes"))
            .filter(total__gt=0).values_list("serving_user_id", "total"))}
        if served != settlement.peer_bytes:
            yield (f"purchase {purchase.pk} settled on {settlement.peer_bytes} served bytes, "
                   f"its orders say {served}")
    closed = [PurchaseState.SETTLED, PurchaseState.REFUNDED]
    stray = Receipt.objects.filter(settled_at__isnull=False).exclude(
        Q(licence__purchase__state__in=closed) | Q(licence__origin__purchase__state__in=closed))
    for licence in stray.values_list("licence_id", flat=True):
        yield f"the receipt for licence {licence} is settled but its purchase is still held"


def compute_jobs_paid_from_their_escrow() -> Iterable[str]:
    """Each compute job held its budget once; its escrow holds the budget less what was
    paid from it and, once the job is over, nothing (the rest returned once); each payment
    is one entry of its recorded amount; what each party was paid is what it earned."""
    held = _entry_amounts(EntryKind.COMPUTE_HOLD)
    returned = _entry_amounts(EntryKind.COMPUTE_RETURN)
    paid_entries = _entry_amounts(EntryKind.COMPUTE_PAY)
    payments = {str(pk): (job, c + f) for pk, job, c, f in ComputePayment.objects.values_list(
        "pk", "job_id", "contributors_minor", "fee_minor")}
    paid_by_job: dict[str, int] = defaultdict(int)
    for ref, (job, amount) in payments.items():
        if paid_entries.pop(ref, None) != amount:
            yield f"compute payment {ref} was not posted exactly once for {amount}"
        paid_by_job[str(job)] += amount
    yield from (f"compute payment entry for unknown payment {ref}" for ref in paid_entries)
    earned = dict(JobEarning.objects.values("job_id").annotate(total=Sum("paid_minor"))
                  .values_list("job_id", "total"))
    escrows = dict(Account.objects.filter(
        kind=AccountKind.ESCROW, reference__startswith="compute:").values_list(
            "reference", "balance"))
    for pk, state, budget, refunded in ComputeJob.objects.values_list(
            "pk", "state", "budget_minor", "refunded_minor"):
        ref = str(pk)
        if held.pop(ref, 0) != budget:
            yield f"compute job {pk} did not hold its budget {budget} exactly once"
        spent = paid_by_job.get(ref, 0)
        if int(earned.get(pk) or 0) != spent:
            yield f"compute job {pk} paid {spent} but its parties earned {earned.get(pk)}"
        back = returned.pop(ref, 0)
        if back != refunded:
            yield f"compute job {pk} records {refunded} returned, its entry {back}"
        over = state != JobState.RUNNING
        balance = escrows.pop(f"compute:{pk}", 0)
        if balance != (0 if over else budget - spent) or (over and budget != spent + back):
            yield (f"compute job {pk} ({state}) has {balance} in escrow of budget {budget}, "
                   f"paid {spent}, returned {back}")
    for ref in (*held, *returned):
        yield f"compute entry for unknown job {ref}"
    for ref in escrows:
        yield f"escrow account {ref} belongs to no job"


RULES: tuple[Rule, ...] = (entries_balance, balances_hold, money_in_matches_money_out,
                           provider_payments_posted, purchases_closed_once, orders_settled_once,
                           compute_jobs_paid_from_their_escrow)


def books_check() -> list[str]:
    """Every broken invariant, one line each; empty when the books are right."""
    return [problem for rule in RULES for problem in rule()]
