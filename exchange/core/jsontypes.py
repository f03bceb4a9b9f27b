"""Static types for JSON: what a ``JSONField`` without an encoder stores as it is.

Read-only containers (``Sequence``, ``Mapping``), so that a ``list[str]`` or a
``dict[str, int]`` passes where a JSON value is expected. A ``TypedDict`` does not (mypy
treats it as a ``Mapping[str, object]``): build a plain dict from its fields instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JSONValue: TypeAlias = (
    "str | int | float | bool | Sequence[JSONValue] | Mapping[str, JSONValue] | None"
)
JSONObject: TypeAlias = Mapping[str, JSONValue]
