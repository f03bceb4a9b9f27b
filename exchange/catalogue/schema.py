"""What the OpenAPI schema adds to the works API that the serializers cannot say."""

from __future__ import annotations

from typing import Any


def close_public_work(result: dict[str, Any], **_context: Any) -> dict[str, Any]:
    """The public shape of a work (``WorkOut``) has no fields besides those it lists.

    That is the promise that nothing of the owner's (``sha256``, ``failure_reason``, ...)
    reaches anyone else, and it is what lets ``GET /works/{id}/`` document its two shapes
    as a ``oneOf``: an owner's body has more fields, so it matches only the owner's shape.
    A drf-spectacular post-processing hook (``SPECTACULAR_SETTINGS``).
    """
    public = result.get("components", {}).get("schemas", {}).get("WorkOut")
    if public is not None:  # absent from a schema of other endpoints only
        public["additionalProperties"] = False
    return result
