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


def test_the_schema_has_no_generator_warnings() -> None:
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache, list(GENERATOR_STATS._warn_cache)
    assert not GENERATOR_STATS._error_cache, list(GENERATOR_STATS._error_cache)


def test_the_browsable_docs_page_is_served(client) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
