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
