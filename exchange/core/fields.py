"""Serializer fields stricter than DRF's defaults where money and limits are concerned."""

from __future__ import annotations

import re

from rest_framework import serializers

_INTEGER_TEXT = re.compile(r"^-?[0-9]{1,30}$")
# Beyond a signed 64-bit integer the database cannot store it; reject before it gets there.
INT64_MAX = 2**63 - 1


class StrictIntegerField(serializers.IntegerField):
    """An integer, and nothing that merely rounds to one.

    DRF's IntegerField accepts ``10.0`` and ``"10.0"``; for amounts of money that hides a
    client bug (floats), so only JSON integers, or digit strings from form bodies, pass.
    """

    default_error_messages = {
        "invalid": "A whole number is required (no decimals, no floats).",
        "out_of_range": "The number is out of range.",
    }

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, int):
            value = data
        elif isinstance(data, str) and _INTEGER_TEXT.match(data.strip()):
            value = int(data.strip())
        else:
            self.fail("invalid")
        if abs(value) > INT64_MAX:
            self.fail("out_of_range")
        return int(super().to_internal_value(value))


class StrictCharField(serializers.CharField):
    """Text, and nothing that merely turns into text.

    DRF's CharField takes ``5`` as ``"5"``: for an API whose schema says "string" that
    hides a client bug, so input serializers use this one (output ones need not).
    """

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    """``true`` or ``false``; DRF's BooleanField also takes ``"yes"``, ``1``, ``"on"``..."""

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
