"""The index's query-string reader against the standard library's (``parse_qs`` with blank
values kept, the last of a repeated name winning): the same values for any ASCII query,
and the same refusals."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from peerindex.inputs import InvalidError, Query

# the characters that matter to a query string, and some that do not
ALPHABET = st.sampled_from([*"ab=&+%;_-.~", "%41", "%3D", "%26", "%2B", "%C3%A9", "%z"])


def reference(raw: bytes) -> dict[str, str]:
    parsed = parse_qs(raw.decode("ascii"), keep_blank_values=True, strict_parsing=False,
                      max_num_fields=20)
    return {name: values[-1] for name, values in parsed.items()}


@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_the_same_values_as_the_standard_library(text: str) -> None:
    raw = text.encode()
    try:
        expected = reference(raw)
    except ValueError:
        with pytest.raises(InvalidError):
            Query.parse(raw)
        return
    assert Query.parse(raw).values == expected


def test_the_agents_announce_by_hand() -> None:
    raw = b"work=3f2a&port=7000&bitfield=_-A&numwant=50&event="
    assert Query.parse(raw).values == {"work": "3f2a", "port": "7000", "bitfield": "_-A",
                                       "numwant": "50", "event": ""}


@pytest.mark.parametrize("raw", ["é=1".encode(), b"&".join([b"a=1"] * 21)],
                         ids=["not-ascii", "too-many-fields"])
def test_refused(raw: bytes) -> None:
    with pytest.raises(InvalidError, match="malformed"):
        Query.parse(raw)
