"""Every API route is in the access table: anonymous callers, and other users' objects.

The table is checked against the URL configuration, so a new route without an entry
fails ``test_every_api_route_has_an_anonymous_row``. Expected statuses follow the access
policy (docs/API.md), not what the code happens to return: anything that needs a signed-
in user is 401 to an anonymous caller; another user's purchase, licence, top-up or
device is 404 (its existence is not disclosed); another rights holder's work is 403.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

W, P, L, T, D, S = "{work}", "{purchase}", "{licence}", "{topup}", "{device}", "{seed}"

# (method, path, expected status) for an anonymous caller with an empty body
ANONYMOUS: list[tuple[str, str, int]] = [
    ("get", "/api/v1/schema/", 200),
    ("get", "/api/v1/docs/", 200),
    ("get", "/api/v1/redoc/", 200),
    ("get", "/api/v1/me/", 401),
    ("get", "/api/v1/auth/tokens/", 401),
    ("post", "/api/v1/auth/tokens/", 400),  # signing in: no credentials given
    ("delete", "/api/v1/auth/tokens/1/", 401),
    ("get", "/api/v1/works/", 200),
    ("post", "/api/v1/works/", 401),
    ("get", f"/api/v1/works/{W}/", 200),
    ("patch", f"/api/v1/works/{W}/", 401),
    ("post", f"/api/v1/works/{W}/withdraw/", 401),
    ("get", f"/api/v1/works/{W}/preview/", 200),
    ("get", f"/api/v1/works/{W}/manifest/", 401),
    ("get", f"/api/v1/works/{W}/sources/", 401),
    ("get", f"/api/v1/works/{W}/web-seeds/", 401),
    ("post", f"/api/v1/works/{W}/web-seeds/", 401),
    ("delete", f"/api/v1/works/{W}/web-seeds/{S}/", 401),
    ("get", "/api/v1/wallet/", 401),
    ("get", "/api/v1/wallet/topups/", 401),
    ("post", "/api/v1/wallet/topups/", 401),
    ("get", f"/api/v1/wallet/topups/{T}/", 401),
    ("get", "/api/v1/payouts/", 401),
    ("post", "/api/v1/payouts/", 401),
    ("get", "/api/v1/statements/2026-11/", 401),
    ("get", "/api/v1/statements/2026-11.csv", 401),
    ("get", "/api/v1/purchases/", 401),
    ("post", "/api/v1/purchases/", 401),
    ("get", f"/api/v1/purchases/{P}/", 401),
    ("get", f"/api/v1/purchases/{P}/invoice/", 401),
    ("get", "/api/v1/devices/", 401),
    ("post", "/api/v1/devices/", 401),
    ("post", f"/api/v1/devices/{D}/revoke/", 401),
    ("get", "/api/v1/licences/", 401),
    ("get", f"/api/v1/licences/{L}/", 401),
    ("post", f"/api/v1/licences/{L}/receipt/", 401),
    ("post", "/api/v1/metering/orders/", 401),
    ("get", "/api/v1/revocations/", 200),
    ("post", "/api/v1/revocations/equivocations/", 401),
    ("post", "/api/v1/peers/announce/", 401),
    ("post", "/api/v1/peers/heartbeat/", 401),
    ("get", "/api/v1/traces/", 401),
    ("post", "/api/v1/traces/", 401),
    ("get", "/api/v1/traces/00000000-0000-0000-0000-000000000000/", 401),
    ("post", "/api/v1/payments/webhooks/testpay/", 401),  # no signature
]

# (persona, method, path, expected): Bob's and Rita's objects, tried by others
OTHERS: list[tuple[str, str, str, int]] = [
    ("carol", "get", f"/api/v1/purchases/{P}/", 404),
    ("carol", "get", f"/api/v1/purchases/{P}/invoice/", 404),
    ("carol", "get", f"/api/v1/licences/{L}/", 404),
    ("carol", "post", f"/api/v1/licences/{L}/receipt/", 404),
    ("carol", "get", f"/api/v1/wallet/topups/{T}/", 404),
    ("carol", "post", f"/api/v1/devices/{D}/revoke/", 404),
    ("rob", "get", f"/api/v1/works/{W}/web-seeds/", 403),
    ("rob", "post", f"/api/v1/works/{W}/web-seeds/", 403),
    ("rob", "delete", f"/api/v1/works/{W}/web-seeds/{S}/", 403),
    ("rob", "post", f"/api/v1/works/{W}/withdraw/", 403),
    ("bob", "get", "/api/v1/statements/2026-11/?party=platform", 403),
    # and the owners themselves, so the rows above are about who asks
    ("bob", "get", f"/api/v1/purchases/{P}/", 200),
    ("bob", "get", f"/api/v1/licences/{L}/", 200),
    ("bob", "get", f"/api/v1/wallet/topups/{T}/", 200),
    ("rita", "get", f"/api/v1/works/{W}/web-seeds/", 200),
]


def _api_routes() -> list[str]:
    """Every route under /api/v1/, as a regular expression."""
    found: list[str] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(list(entry.url_patterns), route)
            elif isinstance(entry, URLPattern) and route.startswith("api/v1/"):
                found.append(route)

    walk(list(get_resolver().url_patterns), "")
    return ["^/" + re.sub(r"<[^>]+>", "[^/]+", re.escape(r).replace(r"\<", "<")
                          .replace(r"\>", ">").replace(r"\:", ":")) + "$" for r in found]


def test_every_api_route_has_an_anonymous_row() -> None:
    paths = [path.split("?")[0].format(work="w", purchase="p", licence="l", topup="t",
                                        device="d", seed="1") for _, path, _ in ANONYMOUS]
    routes = _api_routes()
    assert len(routes) > 30  # the walk found the API
    missing = [r for r in routes if not any(re.match(r, p) for p in paths)]
    assert missing == []


@pytest.fixture
def world(rita, rob, bob, carol, make_work, fund, device_of) -> dict[str, Any]:
    from exchange.payments.services import topup_create
    from exchange.peers.services import web_seed_add
    from exchange.purchases.services import purchase_create

    work = make_work(rita, title="Rita's", price_minor=500)
    _keys, device = device_of(bob)
    fund(bob, 10_000)
    purchase = purchase_create(buyer=bob, work_id=work.pk, device_id=device.device_id)
    topup = topup_create(user=bob, amount_minor=700, currency="EUR")
    seed = web_seed_add(work=work, actor=rita, url="https://mirror.example/work")
    return {"work": work.pk, "purchase": purchase.pk, "licence": purchase.licence.pk,
            "topup": topup.pk, "device": device.device_id, "seed": seed.pk}


@pytest.mark.parametrize(("method", "path", "expected"), ANONYMOUS,
                         ids=[f"{m.upper()} {p}" for m, p, _ in ANONYMOUS])
def test_anonymous(method, path, expected, world, api) -> None:
    response = getattr(api(None), method)(path.format(**world), {}, format="json")
    assert response.status_code == expected, response.content[:300]
    if expected >= 400:
        assert set(response.json()["error"]) == {"code", "message", "fields"}


@pytest.mark.parametrize(("persona", "method", "path", "expected"), OTHERS,
                         ids=[f"{m.upper()} {p} as {who}" for who, m, p, _ in OTHERS])
def test_other_users_objects(persona, method, path, expected, world, api, rita, rob, bob,
                             carol) -> None:
    people = {"rita": rita, "rob": rob, "bob": bob, "carol": carol}
    body: dict[str, Any] = {"url": "https://elsewhere.example/x"} if method == "post" else {}
    response = getattr(api(people[persona]), method)(path.format(**world), body, format="json")
    assert response.status_code == expected, response.content[:300]
