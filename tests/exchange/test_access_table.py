"""Who may do what: one table of endpoint x persona x expected status.

Every row runs against real bearer tokens. "own" is a work of Rita's; "other" a work
of Rob's (another rights holder); "hidden" a work of Rob's still being processed.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.django_db

ANON, RITA, BOB, ADMIN = "anonymous", "rita", "bob", "admin"

# (method, path, body, persona, expected status)
TABLE: list[tuple[str, str, dict[str, Any] | None, str, int]] = [
    ("get", "/api/v1/works/", None, ANON, 200),
    ("get", "/api/v1/works/{own}/", None, ANON, 200),
    ("get", "/api/v1/works/{hidden}/", None, ANON, 404),
    ("get", "/api/v1/works/{hidden}/", None, RITA, 404),
    ("get", "/api/v1/works/{hidden}/", None, BOB, 404),
    ("get", "/api/v1/works/{hidden}/", None, ADMIN, 200),
    ("patch", "/api/v1/works/{own}/", {"price_minor": 900}, ANON, 401),
    ("patch", "/api/v1/works/{own}/", {"price_minor": 900}, BOB, 403),
    ("patch", "/api/v1/works/{own}/", {"price_minor": 900}, RITA, 200),
    ("patch", "/api/v1/works/{other}/", {"price_minor": 900}, RITA, 403),
    ("patch", "/api/v1/works/{hidden}/", {"price_minor": 900}, RITA, 404),
    ("patch", "/api/v1/works/{other}/", {"price_minor": 900}, ADMIN, 403),
    ("post", "/api/v1/works/{own}/withdraw/", None, ANON, 401),
    ("post", "/api/v1/works/{own}/withdraw/", None, BOB, 403),
    ("post", "/api/v1/works/{other}/withdraw/", None, RITA, 403),
    ("post", "/api/v1/works/{own}/withdraw/", None, RITA, 200),
    ("get", "/api/v1/works/{own}/preview/", None, ANON, 200),
    ("get", "/api/v1/works/{hidden}/preview/", None, BOB, 404),
    ("get", "/api/v1/me/", None, ANON, 401),
    ("get", "/api/v1/me/", None, BOB, 200),
    ("get", "/api/v1/auth/tokens/", None, ANON, 401),
    ("get", "/api/v1/auth/tokens/", None, BOB, 200),
    ("get", "/api/v1/schema/", None, ANON, 200),
    ("delete", "/api/v1/works/{own}/", None, RITA, 405),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "persona", "expected"),
    TABLE,
    ids=[f"{m.upper()} {p} as {who}" for m, p, _b, who, _e in TABLE],
)
def test_access(
    method, path, body, persona, expected, rita, rob, bob, admin_user, make_work, api
) -> None:
    works = {
        "own": make_work(rita, title="Rita's"),
        "other": make_work(rob, title="Rob's"),
        "hidden": make_work(rob, title="Rob's unfinished", ready=False),
    }
    people = {ANON: None, RITA: rita, BOB: bob, ADMIN: admin_user}
    url = path.format(**{name: work.pk for name, work in works.items()})
    response = getattr(api(people[persona]), method)(url, body, format="json")
    assert response.status_code == expected, getattr(response, "data", response)
    if expected >= 400:
        assert set(response.json()["error"]) == {"code", "message", "fields"}
