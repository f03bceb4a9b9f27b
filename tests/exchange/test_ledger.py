"""The ledger: balanced entries, guarded accounts, append-only, also in the database."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError

from exchange.ledger.models import AccountKind, JournalEntry, Posting
from exchange.ledger.selectors import account_balance
from exchange.ledger.services import (
    EntryAlreadyPostedError,
    InsufficientFundsError,
    Leg,
    UnbalancedEntryError,
    account_get_or_create,
    ledger_post,
    platform_account,
)

pytestmark = pytest.mark.django_db


def _wallet(user, currency="EUR"):
    return account_get_or_create(kind=AccountKind.WALLET, owner=user, currency=currency)


def _fund(user, amount, currency="EUR", reference="seed"):
    clearing = platform_account(kind=AccountKind.CLEARING, currency=currency)
    wallet = _wallet(user, currency)
    with transaction.atomic():
        ledger_post(kind="topup", reference=reference, memo="",
                    legs=[Leg(clearing, -amount), Leg(wallet, amount)])
    wallet.refresh_from_db()
    return wallet


def test_a_balanced_entry_moves_money_and_the_cache_matches_the_sum(bob) -> None:
    wallet = _fund(bob, 1000)
    assert wallet.balance == 1000 == account_balance(wallet)
    clearing = platform_account(kind=AccountKind.CLEARING, currency="EUR")
    assert account_balance(clearing) == -1000
    assert clearing.balance == 0  # unguarded accounts keep no cache: no hot row


def test_an_unbalanced_entry_is_refused(bob) -> None:
    wallet = _wallet(bob)
    fees = platform_account(kind=AccountKind.FEES, currency="EUR")
    with pytest.raises(UnbalancedEntryError), transaction.atomic():
        ledger_post(kind="topup", reference="x", memo="", legs=[Leg(fees, -5), Leg(wallet, 4)])
    assert not JournalEntry.objects.exists()


def test_currencies_balance_separately(bob) -> None:
    eur, jpy = _wallet(bob, "EUR"), _wallet(bob, "JPY")
    with pytest.raises(UnbalancedEntryError), transaction.atomic():
        ledger_post(kind="topup", reference="x", memo="", legs=[Leg(eur, 5), Leg(jpy, -5)])


@pytest.mark.parametrize("amount", [0, 2**63, True, 1.5])
def test_it_refuses_amounts_that_are_not_whole_non_zero_int64(bob, amount) -> None:
    wallet = _wallet(bob)
    fees = platform_account(kind=AccountKind.FEES, currency="EUR")
    with pytest.raises(UnbalancedEntryError), transaction.atomic():
        ledger_post(kind="topup", reference="x", memo="",
                    legs=[Leg(fees, -amount), Leg(wallet, amount)])


def test_a_guarded_account_never_goes_negative(bob) -> None:
    wallet = _fund(bob, 100)
    fees = platform_account(kind=AccountKind.FEES, currency="EUR")
    with pytest.raises(InsufficientFundsError, match="100 EUR available, 101 needed"), \
            transaction.atomic():
        ledger_post(kind="purchase", reference="p", memo="",
                    legs=[Leg(wallet, -101), Leg(fees, 101)])
    wallet.refresh_from_db()
    assert wallet.balance == 100 == account_balance(wallet)
    assert JournalEntry.objects.count() == 1


def test_the_same_event_posts_once(bob) -> None:
    _fund(bob, 100, reference="evt-1")
    with pytest.raises(EntryAlreadyPostedError):
        _fund(bob, 100, reference="evt-1")
    assert _wallet(bob).balance == 100


def test_a_refused_entry_cannot_be_half_committed_even_if_the_error_is_caught(bob) -> None:
    # Balances move in ascending id order, so the wallet (older, lower id) has moved by
    # the time the empty escrow refuses: the whole block must roll back.
    wallet = _fund(bob, 100)
    escrow = account_get_or_create(kind=AccountKind.ESCROW, owner=bob, currency="EUR")
    assert wallet.pk < escrow.pk
    with transaction.atomic():
        with pytest.raises(InsufficientFundsError, match="0 EUR available, 40 needed"):
            ledger_post(kind="refund", reference="r-1", memo="",
                        legs=[Leg(escrow, -40), Leg(wallet, 40)])
        with pytest.raises(TransactionManagementError):
            JournalEntry.objects.count()  # the transaction can only roll back now
    wallet.refresh_from_db()
    escrow.refresh_from_db()
    assert (wallet.balance, escrow.balance) == (100, 0)
    assert account_balance(wallet) == 100
    assert account_balance(escrow) == 0
    assert JournalEntry.objects.count() == 1  # the top-up alone


def test_a_replayed_event_cannot_be_half_committed_even_if_the_error_is_caught(bob) -> None:
    _fund(bob, 100, reference="evt-1")
    clearing = platform_account(kind=AccountKind.CLEARING, currency="EUR")
    wallet = _wallet(bob)
    with transaction.atomic():
        with pytest.raises(EntryAlreadyPostedError):
            ledger_post(kind="topup", reference="evt-1", memo="",
                        legs=[Leg(clearing, -100), Leg(wallet, 100)])
        with pytest.raises(TransactionManagementError):
            JournalEntry.objects.count()
    wallet.refresh_from_db()
    assert wallet.balance == 100 == account_balance(wallet)


@pytest.mark.django_db(transaction=True)
def test_it_must_run_inside_a_transaction(bob) -> None:
    wallet = _wallet(bob)
    fees = platform_account(kind=AccountKind.FEES, currency="EUR")
    assert not connection.in_atomic_block
    with pytest.raises(RuntimeError, match="inside transaction"):
        ledger_post(kind="topup", reference="x", memo="", legs=[Leg(fees, -1), Leg(wallet, 1)])


@pytest.mark.postgres
class TestTheDatabaseRefusesTampering:
    """Raw SQL, bypassing the code: PostgreSQL's own triggers must say no."""

    def _entry(self, bob):
        _fund(bob, 500)
        return JournalEntry.objects.get(), _wallet(bob)

    def test_an_unbalanced_raw_insert_fails_at_commit(self, bob) -> None:
        _, wallet = self._entry(bob)

        def forge() -> None:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("INSERT INTO ledger_journalentry (kind, reference, memo, created_at)"
                               " VALUES ('topup', 'forged', '', now()) RETURNING id")
                forged = cursor.fetchone()[0]
                cursor.execute("INSERT INTO ledger_posting (entry_id, account_id, currency, amount)"
                               " VALUES (%s, %s, 'EUR', 1000000)", [forged, wallet.pk])
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

        with pytest.raises(DatabaseError, match="does not sum to zero"):
            forge()

    def test_an_update_of_a_posting_fails(self, bob) -> None:
        self._entry(bob)
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_posting SET amount = amount * 2")
        assert sorted(Posting.objects.values_list("amount", flat=True)) == [-500, 500]

    def test_a_delete_of_an_entry_fails(self, bob) -> None:
        self._entry(bob)
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute("DELETE FROM ledger_posting")

    def test_a_posting_in_another_currency_than_its_account_fails(self, bob) -> None:
        entry, wallet = self._entry(bob)
        with pytest.raises(DatabaseError, match="currency"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute("INSERT INTO ledger_posting (entry_id, account_id, currency, amount)"
                           " VALUES (%s, %s, 'USD', 1)", [entry.pk, wallet.pk])

    def test_a_negative_guarded_balance_fails(self, bob) -> None:
        _, wallet = self._entry(bob)
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_account SET balance = -1 WHERE id = %s", [wallet.pk])


@pytest.mark.postgres
def test_a_sales_statements_are_bound_on_the_server_and_prepared(rita, bob, make_work, fund,
                                                                 device_of) -> None:
    # Django's documented options: parameters bound on the server, so psycopg prepares
    # each statement on its fifth use per connection and the server stops re-planning.
    from django.conf import settings

    from exchange.purchases.services import purchase_create

    options = settings.DATABASES["default"]["OPTIONS"]
    assert (options["server_side_binding"], options["prepare_threshold"]) == (True, 5)
    work = make_work(rita, price_minor=10)
    fund(bob, 1000)
    _keys, device = device_of(bob)
    for _ in range(6):
        purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(text.startswith('UPDATE "ledger_account" SET balance') for text in prepared)
    assert any('INSERT INTO "ledger_posting"' in text for text in prepared)
    assert any('FROM "catalogue_work"' in text for text in prepared)


class TestComputeCreditStatements:
    """Compute credit, earned through the compute market, is an account of its own in
    the statements (API and CSV), and the market's entries say what they are."""

    @pytest.fixture
    def period(self, rob, bob, carol, fund, device_of, django_capture_on_commit_callbacks):
        from django.utils import timezone

        from tests.exchange.compute_market.support import compute_earned

        compute_earned(rob, [bob, carol], fund, device_of, django_capture_on_commit_callbacks)
        return timezone.now().strftime("%Y-%m")

    def test_a_contributors_statement_shows_compute_credit(self, period, bob, api) -> None:
        body = api(bob).get(f"/api/v1/statements/{period}/").json()
        (compute,) = body["accounts"]
        assert (compute["kind"], compute["opening_minor"], compute["closing_minor"]) == (
            "compute", 0, 1500)
        assert [(line["kind"], line["kind_label"], line["memo"], line["amount_minor"])
                for line in compute["lines"]] == [
            ("compute_pay", "Compute units paid", "render: 1 unit(s)", 1500)]

    def test_the_csv_names_the_compute_credit_account(self, period, bob, api) -> None:
        rows = api(bob).get(f"/api/v1/statements/{period}.csv").content.decode().splitlines()
        assert rows[1] == "Compute credit,EUR,,,opening,,,0"
        assert rows[2].startswith("Compute credit,EUR,")
        assert rows[2].endswith(",compute_pay,render: 1 unit(s),1500,1500")
        assert rows[3] == "Compute credit,EUR,,,closing,,,1500"

    def test_the_customers_statement_labels_hold_pay_and_return(self, period, rob,
                                                                 api) -> None:
        body = api(rob).get(f"/api/v1/statements/{period}/").json()
        lines = {account["kind"]: [(line["kind_label"], line["amount_minor"])
                                   for line in account["lines"]]
                 for account in body["accounts"]}
        assert lines["wallet"] == [("Top-up", 10_000),
                                   ("Compute job budget into escrow", -4_400),
                                   ("Compute budget returned", 1_100)]
        assert lines["escrow"] == [("Compute job budget into escrow", 4_400),
                                   ("Compute units paid", -3_300),
                                   ("Compute budget returned", -1_100)]

    def test_the_platforms_statement_shows_the_compute_fee(self, period, admin_user,
                                                           api) -> None:
        body = api(admin_user).get(f"/api/v1/statements/{period}/?party=platform").json()
        (fees,) = [account for account in body["accounts"] if account["kind"] == "fees"]
        assert [(line["kind_label"], line["amount_minor"]) for line in fees["lines"]] == [
            ("Compute units paid", 300)]

    def test_a_kind_the_code_no_longer_knows_is_shown_as_stored(self) -> None:
        import datetime as dt

        from exchange.ledger.statements import StatementLine

        line = StatementLine(at=dt.datetime.now(tz=dt.UTC), entry_id=1, kind="retired",
                             memo="", amount_minor=1, balance_minor=1)
        assert line.kind_label == "retired"
