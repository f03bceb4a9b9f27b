"""schemathesis hooks for the API fuzz test (named in ``schemathesis.toml`` beside this)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case,
                kwargs: dict[str, Any]) -> None:
    """A well-formed ``Idempotency-Key`` becomes a fresh one.

    The generator repeats keys from case to case, and a key used again for another
    request is a 422 by design (docs/API.md). A client sends a fresh key per request, so
    every case does too; a malformed key is left as it was generated.
    """
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and _KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"fuzz-{uuid.uuid4()}"
