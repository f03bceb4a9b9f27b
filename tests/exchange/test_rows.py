"""The hot path's rows (exchange/rows.py) read and write exactly what the ORM would."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from exchange import rows
from exchange.audit.models import AuditEvent
from exchange.catalogue.models import Work
from exchange.ledger.models import Account, AccountKind, JournalEntry
from exchange.purchases.models import Purchase

pytestmark = pytest.mark.django_db


def test_insert_fills_the_auto_key_and_the_creation_time(bob) -> None:
    before = dt.datetime.now(dt.UTC)
    event = rows.insert(AuditEvent(actor=bob, action="test.row", target_type="x",
                                   target_id="1", data={"nested": [1, "two", None]}))
    assert event.pk is not None
    assert not event._state.adding
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.actor_id == bob.pk
    assert stored.data == {"nested": [1, "two", None]}
    assert stored.created_at == event.created_at
    assert stored.created_at >= before - dt.timedelta(seconds=1)
    second = rows.insert(AuditEvent(action="test.row", target_type="x", target_id="2"))
    assert second.pk > event.pk
    assert AuditEvent.objects.get(pk=second.pk).data == {}


def test_insert_keeps_the_unique_constraints() -> None:
    rows.insert(JournalEntry(kind="topup", reference="once", memo="first"))
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert(JournalEntry(kind="topup", reference="once", memo="again"))
    assert JournalEntry.objects.filter(reference="once").count() == 1


def test_select_matches_the_orm_with_deferred_fields_and_a_join(
        rita, make_work, django_assert_num_queries) -> None:
    work = make_work(rita, price_minor=700)
    [found] = rows.select(Work, fields=("owner", "title", "price_minor", "allowed_uses"),
                          where={"id": work.pk}, related=("owner", ("username",)))
    orm = Work.objects.get(pk=work.pk)
    assert found.pk == orm.pk
    assert isinstance(found.pk, uuid.UUID)
    assert (found.title, found.price_minor, found.allowed_uses) == (
        orm.title, orm.price_minor, orm.allowed_uses)
    assert "description" in found.get_deferred_fields()
    # The owner came with the row: reading it costs no query.
    with django_assert_num_queries(0):
        assert found.owner.username == rita.username
    # A deferred field still loads on first use, as with only().
    assert found.description == orm.description


def test_select_in_and_no_match(bob) -> None:
    wallet = Account.objects.create(kind=AccountKind.WALLET, owner=bob, currency="EUR",
                                    guarded=True)
    escrow = Account.objects.create(kind=AccountKind.ESCROW, owner=bob, currency="EUR",
                                    guarded=True)
    found = rows.select(Account, fields=("kind", "guarded"),
                        where={"kind": (AccountKind.WALLET.value, AccountKind.ESCROW.value),
                               "owner": bob.pk, "currency": "EUR", "reference": ""})
    assert sorted(a.pk for a in found) == sorted([wallet.pk, escrow.pk])
    assert all(a.guarded for a in found)
    assert rows.select(Account, fields=("kind",),
                       where={"owner": bob.pk, "currency": "JPY"}) == []


def test_select_converts_dates_back_to_aware_datetimes(rita, bob, make_work, fund,
                                                       device_of) -> None:
    from exchange.purchases.services import purchase_create

    work = make_work(rita, price_minor=100)
    fund(bob, 500)
    _keys, device = device_of(bob)
    purchase = purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
    [found] = rows.select(Purchase, fields=("receipt_due_at", "created_at", "closed_at"),
                          where={"id": purchase.pk})
    orm = Purchase.objects.get(pk=purchase.pk)
    assert found.receipt_due_at == orm.receipt_due_at
    assert found.receipt_due_at.tzinfo is not None
    assert found.created_at == orm.created_at
    assert found.closed_at is None


def test_a_name_that_is_not_a_column_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a column"):
        rows.select(Work, fields=("purchases",), where={"id": uuid.uuid4()})
    with pytest.raises(Exception, match="has no field"):
        rows.select(Work, fields=("title",), where={"no_such_field": 1})


def test_update_writes_only_the_named_fields(bob) -> None:
    event = rows.insert(AuditEvent(actor=bob, action="before", target_type="x", target_id="1"))
    event.action, event.target_id = "after", "changed in memory only"
    rows.update(event, ["action"])
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.target_id) == ("after", "1")


def test_none_selects_null_rows(bob) -> None:
    from exchange.accounts.models import ApiToken
    from exchange.accounts.services import api_token_create

    live = api_token_create(user=bob, name="live").token
    gone = api_token_create(user=bob, name="gone").token
    ApiToken.objects.filter(pk=gone.pk).update(revoked_at=dt.datetime.now(dt.UTC))
    found = rows.select(ApiToken, fields=("name",), where={"user": bob.pk, "revoked_at": None})
    assert [t.pk for t in found] == [live.pk]


def test_null_one_item_in_and_equality_are_different_plans(bob) -> None:
    from exchange.accounts.models import ApiToken
    from exchange.accounts.services import api_token_create

    token = api_token_create(user=bob, name="t").token
    assert [t.pk for t in rows.select(ApiToken, fields=("name",),
                                      where={"revoked_at": None})] == [token.pk]
    assert rows.select(ApiToken, fields=("name",), where={"user": (bob.pk,)})[0].pk == token.pk
    assert rows.select(ApiToken, fields=("name",), where={"user": bob.pk})[0].pk == token.pk
    assert rows.select(ApiToken, fields=("name",), where={"user": ()}) == []


def test_updating_a_row_that_is_not_there_is_an_error() -> None:
    from django.db import DatabaseError

    ghost = AuditEvent(pk=10**9, action="x", target_type="x", target_id="x")
    with pytest.raises(DatabaseError, match="no such row"):
        rows.update(ghost, ["action"])


@pytest.mark.django_db(transaction=True)
def test_updating_a_missing_row_outside_a_transaction_is_the_same_error() -> None:
    # As the idempotency key's stored response is written after an aborted request.
    from django.db import DatabaseError

    ghost = AuditEvent(pk=10**9, action="x", target_type="x", target_id="x")
    with pytest.raises(DatabaseError, match="no such row"):
        rows.update(ghost, ["action"])


# --- one_statement: the sale's writes sent together ----------------------------------

_POSTINGS = "INSERT INTO ledger_posting (entry_id, account_id, currency, amount) VALUES "


def _accounts(bob) -> tuple[Account, Account]:
    wallet = Account.objects.create(kind=AccountKind.WALLET, owner=bob, currency="EUR",
                                    guarded=True, balance=0)
    clearing = Account.objects.create(kind=AccountKind.CLEARING, currency="EUR",
                                      guarded=False)
    return wallet, clearing


def test_one_statement_writes_in_one_trip_and_links_an_auto_key(
        bob, django_assert_num_queries) -> None:
    from django.db import connection

    wallet, clearing = _accounts(bob)
    with transaction.atomic():
        trips = 1 if connection.vendor == "postgresql" else 4
        with django_assert_num_queries(trips), rows.one_statement():
            entry = rows.insert(JournalEntry(kind="topup", reference="batch", memo="m"))
            entry_id = rows.pk_of(entry)
            rows.execute(_POSTINGS + "(%s, %s, %s, %s), (%s, %s, %s, %s)",
                         [entry_id, clearing.pk, "EUR", -70, entry_id, wallet.pk, "EUR", 70])
            rows.execute("UPDATE ledger_account SET balance = balance + %s WHERE id = %s",
                         [70, wallet.pk], expect=1)
            event = rows.insert(AuditEvent(action="batch", target_type="x", target_id="1"))
    assert entry.pk is not None  # filled in when the block ended
    assert event.pk is not None
    stored = JournalEntry.objects.get(pk=entry.pk)
    assert stored.reference == "batch"
    assert sorted(stored.postings.values_list("amount", flat=True)) == [-70, 70]
    assert Account.objects.get(pk=wallet.pk).balance == 70
    assert AuditEvent.objects.filter(pk=event.pk, action="batch").exists()


class RefusedError(Exception):
    pass


def _refuse() -> None:
    raise RefusedError


def _overdraw(wallet: Account, **handler: Any) -> None:
    with transaction.atomic(), rows.one_statement():
        rows.insert(JournalEntry(kind="topup", reference="refused", memo="m"))
        rows.execute("UPDATE ledger_account SET balance = balance + %s "
                     "WHERE id = %s AND balance + %s >= 0", [-5, wallet.pk, -5],
                     expect=1, **handler)


def test_one_statement_row_count_mismatch_refuses_and_rolls_everything_back(bob) -> None:
    wallet, _clearing = _accounts(bob)
    with pytest.raises(RefusedError):
        _overdraw(wallet, on_mismatch=_refuse)
    assert not JournalEntry.objects.filter(reference="refused").exists()
    assert Account.objects.get(pk=wallet.pk).balance == 0


def test_one_statement_without_a_handler_still_refuses_a_mismatch(bob) -> None:
    from django.db import DatabaseError

    wallet, _clearing = _accounts(bob)
    with pytest.raises(DatabaseError, match="unexpected row count"):
        _overdraw(wallet)
    assert not JournalEntry.objects.filter(reference="refused").exists()


def _write_then(fail: Callable[[], object]) -> None:
    with transaction.atomic(), rows.one_statement():
        rows.insert(AuditEvent(action="lost", target_type="x", target_id="1"))
        fail()


def test_one_statement_that_raises_sends_nothing() -> None:
    with pytest.raises(ZeroDivisionError):
        _write_then(lambda: 1 / 0)
    assert not AuditEvent.objects.filter(action="lost").exists()


def test_one_statement_keeps_constraints() -> None:
    rows.insert(JournalEntry(kind="topup", reference="dup", memo="first"))
    with pytest.raises(IntegrityError):
        _write_then(lambda: rows.insert(JournalEntry(kind="topup", reference="dup", memo="2")))
    assert not AuditEvent.objects.filter(action="lost").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_statement_needs_a_transaction_on_postgresql() -> None:
    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"):
        rows.one_statement().__enter__()


@pytest.mark.postgres
def test_a_statement_of_many_parameters_is_converted_once() -> None:
    # psycopg itself caches only statements of up to 50 parameters; the sale's has more.
    from django.db import connection

    values = ", ".join(["(%s)"] * 60)
    sql = f"INSERT INTO test_many (n) SELECT v FROM (VALUES {values}) AS t(v) WHERE false"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE test_many (n int)")
    rows.execute(sql, list(range(60)))
    converted = rows._fixed_text_cursor()._query_cls.converted
    before = converted.cache_info()
    rows.execute(sql, list(range(60, 120)))
    after = converted.cache_info()
    assert (after.hits, after.misses) == (before.hits + 1, before.misses)


@pytest.mark.postgres
def test_the_sales_statements_are_prepared_on_postgresql(rita, bob, make_work, fund,
                                                         device_of) -> None:
    from django.conf import settings
    from django.db import connection

    from exchange.purchases.services import purchase_create

    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold == 5
    work = make_work(rita, price_minor=10)
    fund(bob, 1000)
    _keys, device = device_of(bob)
    for _ in range(threshold + 1):
        purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any(text.startswith("WITH w0 AS (UPDATE ledger_account") for text in prepared)
    assert any('FROM "catalogue_work"' in text for text in prepared)


def test_a_refusal_caught_inside_the_transaction_still_rolls_it_back(bob) -> None:
    import contextlib

    wallet, _clearing = _accounts(bob)
    with transaction.atomic():
        with contextlib.suppress(RefusedError), rows.one_statement():
            rows.insert(JournalEntry(kind="topup", reference="caught", memo="m"))
            rows.execute("UPDATE ledger_account SET balance = balance + %s "
                         "WHERE id = %s AND balance + %s >= 0", [-5, wallet.pk, -5],
                         expect=1, on_mismatch=_refuse)
        assert transaction.get_rollback()  # the caller cannot commit what was sent
    assert not JournalEntry.objects.filter(reference="caught").exists()


def test_an_unsaved_related_row_is_refused_not_stored_as_null() -> None:
    from exchange.audit.services import audit_record

    entry = JournalEntry(kind="topup", reference="unsaved", memo="m")  # never inserted
    with pytest.raises(ValueError, match="unsaved related object"):
        rows.insert(AuditEvent(action="x", target_type="x", target_id="1",
                               actor=_unsaved_user()))
    with pytest.raises(ValueError, match="unsaved"):
        audit_record(actor=None, action="x", target=entry)


def _unsaved_user() -> Any:
    from exchange.accounts.models import User

    return User(username="ghost")


@pytest.mark.postgres
def test_a_write_in_a_savepoint_inside_one_statement_is_refused() -> None:
    def write_in_a_savepoint() -> None:
        with transaction.atomic(), rows.one_statement(), transaction.atomic():
            rows.insert(AuditEvent(action="nested", target_type="x", target_id="1"))

    with pytest.raises(RuntimeError, match="inside a savepoint"):
        write_in_a_savepoint()
    assert not AuditEvent.objects.filter(action="nested").exists()
