"""The OpenAPI schema is generated from the code and describes every endpoint."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_the_schema_is_served_and_lists_the_endpoints(client) -> None:
    response = client.get("/api/v1/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ["/api/v1/works/", "/api/v1/works/{work_id}/", "/api/v1/me/",
                 "/api/v1/works/{work_id}/withdraw/", "/api/v1/auth/tokens/"]:
        assert path in paths, path
    assert "bearerAuth" in schema["components"]["securitySchemes"]


def test_the_schema_has_no_generator_warnings(tmp_path) -> None:
    from django.core.management import call_command

    # --fail-on-warn raises on any warning or error of the generator
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s"))


def _response_schema(schema: dict, path: str) -> dict:
    ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    ref = ok["schema"]["$ref"].rsplit("/", 1)[-1]
    return schema["components"]["schemas"][ref]


LISTS = {
    "/api/v1/purchases/": {"count", "next", "previous", "results"},
    "/api/v1/licences/": {"count", "next", "previous", "results"},
    "/api/v1/traces/": {"count", "next", "previous", "results"},
    "/api/v1/wallet/topups/": {"count", "next", "previous", "results"},
    "/api/v1/payouts/": {"count", "next", "previous", "results"},
    "/api/v1/works/{work_id}/sources/": {"count", "next", "previous", "results", "web_seeds"},
    "/api/v1/wallet/": {"balances"},
}


@pytest.mark.parametrize("path", list(LISTS))
def test_list_bodies_have_the_shape_the_schema_documents(client, api, bob, rita, make_work,
                                                         path) -> None:
    schema = yaml.safe_load(client.get("/api/v1/schema/").content)
    documented = _response_schema(schema, path)
    assert documented["type"] == "object"
    assert set(documented["properties"]) == LISTS[path]
    url = path.format(work_id=make_work(rita).pk)
    body = api(bob).get(url).json()
    assert set(body) == LISTS[path]
    listed = "balances" if "balances" in body else "results"
    assert documented["properties"][listed]["type"] == "array"
    assert isinstance(body[listed], list)


def _schema(client) -> dict:
    return yaml.safe_load(client.get("/api/v1/schema/").content)


def _operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_error_response_has_the_error_body(client) -> None:
    for name, operation in _operations(_schema(client)):
        errors = {status: response for status, response in operation["responses"].items()
                  if status.startswith(("4", "5"))}
        assert errors, name
        for status, response in errors.items():
            body = response["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorOut"}, (name, status)


def test_the_statuses_an_operation_implies_are_documented(client) -> None:
    schema = _schema(client)
    for name, operation in _operations(schema):
        statuses = set(operation["responses"])
        where = {parameter["in"] for parameter in operation.get("parameters", [])}
        if not name.startswith("POST /api/v1/payments/webhooks/"):
            assert "401" in statuses, name  # a bad or revoked token, anywhere
        if "path" in where:
            assert "404" in statuses, name
        if "requestBody" in operation:
            assert {"400", "415"} <= statuses, name


def test_money_posts_require_an_idempotency_key(client) -> None:
    schema = _schema(client)
    for path in ["/api/v1/purchases/", "/api/v1/wallet/topups/", "/api/v1/payouts/"]:
        operation = schema["paths"][path]["post"]
        header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
        assert header["in"] == "header"
        assert header["required"] is True
        assert {"400", "409", "422"} <= set(operation["responses"]), path


def test_a_work_is_documented_in_the_owners_shape_and_the_public_one(
        client, api, rita, bob, make_work) -> None:
    schema = _schema(client)
    ok = schema["paths"]["/api/v1/works/{work_id}/"]["get"]["responses"]["200"]
    shapes = schema["components"]["schemas"][
        ok["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]["oneOf"]
    names = [shape["$ref"].rsplit("/", 1)[-1] for shape in shapes]
    assert names == ["OwnWorkOut", "WorkOut"]
    components = schema["components"]["schemas"]
    # the public shape has nothing more than it lists, so an owner's body matches only
    # the owner's shape
    assert components["WorkOut"]["additionalProperties"] is False
    work = make_work(rita)
    url = f"/api/v1/works/{work.pk}/"
    assert set(api(rita).get(url).json()) == set(components["OwnWorkOut"]["properties"])
    assert set(api(bob).get(url).json()) == set(components["WorkOut"]["properties"])


def test_page_sizes_are_bounded(client) -> None:
    parameters = _schema(client)["paths"]["/api/v1/works/"]["get"]["parameters"]
    by_name = {parameter["name"]: parameter["schema"] for parameter in parameters}
    assert by_name["page_size"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert by_name["page"]["minimum"] == 1
    assert by_name["mine"] == {"type": "boolean"}


# What fuzzing the live API against its schema (test_schema_fuzz.py) found, pinned down.

@pytest.mark.parametrize("query", ["page=0", "page=abc", "page_size=0", "page_size=101",
                                   "page_size=null", "page_size=5&page_size=6", "page="])
def test_a_page_that_is_not_a_page_is_refused_not_ignored(api, bob, query) -> None:
    response = api(bob).get(f"/api/v1/purchases/?{query}")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) <= {"page", "page_size"}


def test_a_page_past_the_end_is_a_404(api, bob) -> None:
    assert api(bob).get("/api/v1/purchases/?page=2").status_code == 404
    assert api(bob).get("/api/v1/purchases/?page=1&page_size=100").status_code == 200


def test_a_price_filter_is_a_whole_number(api) -> None:
    response = api(None).get("/api/v1/works/?min_price=0.5")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["min_price"]


def test_a_statement_has_the_documented_shape_and_refuses_an_unknown_party(api, bob) -> None:
    body = api(bob).get("/api/v1/statements/2026-01/").json()
    assert set(body) == {"period", "accounts"}
    assert body["period"] == "2026-01"
    response = api(bob).get("/api/v1/statements/2026-01/?party=me")
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["party"]
    assert api(bob).get("/api/v1/statements/2026-1/").status_code == 404


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/metering/orders/", {"orders": [0]}, "orders[0]"),
    ("/api/v1/peers/heartbeat/", {"device": 5}, "device"),
    ("/api/v1/peers/announce/", {"device": "d", "port": 1, "replace": "yes"}, "replace"),
])
def test_text_and_booleans_are_taken_only_as_such(api, bob, path, body, field) -> None:
    response = api(bob).post(path, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_an_unsupported_method_is_a_405_even_before_logging_in(api) -> None:
    response = api(None).generic("TRACE", "/api/v1/auth/tokens/")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
