"""An agent's evidence that the platform's revocation signer equivocated, kept for admins."""

from __future__ import annotations

import time

import pytest

from exchange.licensing.keys import platform_keyring
from exchange.licensing.models import RevocationEquivocation
from licensing.core.revocation import sign_revocation_list

pytestmark = pytest.mark.django_db

URL = "/api/v1/revocations/equivocations/"


def _list(version: int, *, licences: list[str] | None = None) -> str:
    now = int(time.time())
    return sign_revocation_list(keyring=platform_keyring(), version=version, issued_at=now - 60,
                                next_update=now + 3600, licences=licences or [], devices=[])


def test_a_proven_equivocation_is_stored_once_and_counted(bob, carol, api) -> None:
    first, second = _list(41), _list(41, licences=["licence-x"])
    created = api(bob).post(URL, {"first": first, "second": second}, format="json")
    assert created.status_code == 201
    assert created.json()["version"] == 41
    again = api(carol).post(URL, {"first": second, "second": first}, format="json")
    assert again.status_code == 200
    assert again.json()["reports"] == 2
    row = RevocationEquivocation.objects.get()
    assert (row.first_token, row.second_token, row.reported_by) == (first, second, bob)


@pytest.mark.parametrize("case", ["same-content", "other-version", "forged", "not-a-token"])
def test_a_report_that_proves_nothing_is_refused_and_stores_nothing(bob, api, case) -> None:
    first = _list(42)
    second = {
        "same-content": _list(42),
        "other-version": _list(43, licences=["licence-x"]),
        "forged": first.rsplit(".", 1)[0] + "." + "A" * 86,
        "not-a-token": "hello",
    }[case]
    response = api(bob).post(URL, {"first": first, "second": second}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_an_equivocation"
    assert not RevocationEquivocation.objects.exists()


def test_anonymous_reports_are_refused(api) -> None:
    response = api(None).post(URL, {"first": _list(44), "second": _list(44, licences=["l"])},
                              format="json")
    assert response.status_code in (401, 403)
    assert not RevocationEquivocation.objects.exists()
