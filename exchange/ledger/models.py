"""A double-entry ledger: accounts, journal entries, and postings in integer minor units.

Every entry's postings sum to zero per currency (checked in code, and on PostgreSQL by a
deferred constraint trigger). Entries and postings are append-only: a correction is a
new entry (on PostgreSQL a trigger refuses UPDATE and DELETE). A balance is the sum of an
account's postings; accounts that must never go negative (wallets, earnings, escrow)
also keep a cached ``balance`` that the spending transaction locks and checks, with a
database CHECK that it is not below zero. System accounts (fees, provider clearing) keep
no cached balance, so no purchase ever has to update a shared row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class AccountKind(models.TextChoices):
    WALLET = "wallet", _("Buyer wallet")
    EARNINGS = "earnings", _("Rights holder earnings")
    SEEDING = "seeding", _("Seeding credit")
    COMPUTE = "compute", _("Compute credit")
    ESCROW = "escrow", _("Purchase escrow")
    PAYOUT_PENDING = "payout_pending", _("Payout pending")
    FEES = "fees", _("Platform fees")
    CLEARING = "clearing", _("Payment provider clearing")


# Accounts that hold someone's money: never below zero, balance cached and locked.
GUARDED_KINDS = frozenset(
    {AccountKind.WALLET, AccountKind.EARNINGS, AccountKind.SEEDING, AccountKind.COMPUTE,
     AccountKind.ESCROW, AccountKind.PAYOUT_PENDING}
)


class Account(models.Model):
    kind = models.CharField(max_length=16, choices=AccountKind.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
        related_name="ledger_accounts",
    )
    currency = models.CharField(max_length=3)
    # Distinguishes several accounts of one kind and owner: the purchase an escrow
    # account belongs to, say. Empty for the usual one-per-owner-and-currency accounts.
    reference = models.CharField(max_length=64, blank=True, default="")
    guarded = models.BooleanField(
        help_text="Never below zero; the cached balance is locked and checked when spending."
    )
    balance = models.BigIntegerField(
        default=0, help_text="Cached sum of postings (guarded accounts only)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "owner", "currency", "reference"], name="ledger_account_unique",
                condition=Q(owner__isnull=False),
            ),
            # Platform accounts have no owner; NULLs are distinct in unique indexes, so
            # they get a constraint of their own.
            models.UniqueConstraint(
                fields=["kind", "currency", "reference"], name="ledger_platform_account_unique",
                condition=Q(owner__isnull=True),
            ),
            models.CheckConstraint(
                condition=Q(guarded=False) | Q(balance__gte=0), name="ledger_guarded_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(guarded=True) | Q(balance=0), name="ledger_unguarded_uncached"
            ),
        ]

    def __str__(self) -> str:
        who = self.owner.username if self.owner_id else "platform"  # type: ignore[union-attr]
        ref = f" {self.reference}" if self.reference else ""
        return f"{self.get_kind_display()} {who} {self.currency}{ref}"


class EntryKind(models.TextChoices):
    TOPUP = "topup", _("Top-up")
    PURCHASE = "purchase", _("Purchase into escrow")
    SETTLEMENT = "settlement", _("Settlement")
    REFUND = "refund", _("Refund")
    PAYOUT = "payout", _("Payout requested")
    PAYOUT_PAID = "payout_paid", _("Payout paid")
    PAYOUT_RETURNED = "payout_returned", _("Payout returned")
    COMPUTE_HOLD = "compute_hold", _("Compute job budget into escrow")
    COMPUTE_PAY = "compute_pay", _("Compute units paid")
    COMPUTE_RETURN = "compute_return", _("Compute budget returned")


class JournalEntry(models.Model):
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    # What caused it (a purchase id, a provider payment id): with the kind, unique, so
    # the same external event can never post twice.
    reference = models.CharField(max_length=64)
    memo = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "journal entries"
        constraints = [
            models.UniqueConstraint(fields=["kind", "reference"], name="ledger_entry_once")
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.kind} {self.reference}"


class Posting(models.Model):
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField(help_text="Minor units; positive credits the account.")

    class Meta:
        indexes = [models.Index(fields=["account", "entry"])]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="ledger_posting_not_zero")
        ]

    def __str__(self) -> str:
        return f"{self.amount:+d} {self.currency} -> {self.account_id}"
