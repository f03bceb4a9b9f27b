"""The hot path's rows (exchange/rows.py) read and write exactly what the ORM would."""

from __future__ import annotations

import datetime as dt
import uuid

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
