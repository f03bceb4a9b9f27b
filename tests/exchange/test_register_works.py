"""Bulk registration from a folder: each file through the upload service, bad ones refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from exchange.catalogue.models import Work, WorkStatus
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def test_it_registers_each_file_once_and_reports_the_bad_ones(rita, tmp_path: Path,
                                                              capsys) -> None:
    (tmp_path / "harbour_at_dawn.png").write_bytes(png_bytes(seed=1))
    (tmp_path / "night.png").write_bytes(png_bytes(seed=2))
    (tmp_path / "notes.txt").write_text("not a work")
    call_command("register_works", str(tmp_path), owner="rita", price_minor=1200,
                 currency="EUR")
    out = capsys.readouterr().out
    assert "registered 2, already there 0, refused 1" in out
    assert "notes.txt" in out
    assert {w.title for w in Work.objects.all()} == {"harbour at dawn", "night"}
    assert {w.status for w in Work.objects.all()} == {WorkStatus.READY}
    call_command("register_works", str(tmp_path), owner="rita", price_minor=1200,
                 currency="EUR")
    assert "registered 0, already there 2" in capsys.readouterr().out
    assert Work.objects.count() == 2


@pytest.mark.parametrize(
    ("owner", "price", "currency", "message"),
    [("bob", 100, "EUR", "not a rights holder"), ("rita", 0, "EUR", "greater than zero"),
     ("rita", 100, "XYZ", "Unknown")],
)
def test_it_refuses_bad_arguments(rita, bob, tmp_path: Path, owner, price, currency,
                                  message) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("register_works", str(tmp_path), owner=owner, price_minor=price,
                     currency=currency)


@pytest.mark.parametrize(("terms", "message"), [
    ({"licence_days": 0}, "Licence lifetime"),
    ({"licence_days": 999_999}, "Licence lifetime"),
    ({"byte_allowance_multiple": 0}, "byte allowance"),
])
def test_it_refuses_terms_out_of_range(rita, tmp_path: Path, terms, message) -> None:
    (tmp_path / "a.png").write_bytes(b"not read: the terms are refused first")
    with pytest.raises(CommandError, match=message):
        call_command("register_works", str(tmp_path), owner="rita", price_minor=100,
                     currency="EUR", **terms)
