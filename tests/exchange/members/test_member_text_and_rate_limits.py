"""The shared rules for what members write and how often (exchange/core/member_text.py,
exchange/core/rate_limits.py). Expected values are written out by hand."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from exchange.core.errors import ServiceError
from exchange.core.member_text import plain_text, rich_text, utf8_text
from exchange.core.rate_limits import Rate, RateLimitedError, check, hit


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    cache.clear()


def test_plain_text_keeps_korean_and_newlines_and_strips_the_edges() -> None:
    assert plain_text("  안녕하세요,\r\n작가님\t!  ", field="body", max_chars=20) == \
        "안녕하세요,\n작가님\t!"


def test_plain_text_keeps_joiners_that_scripts_and_emoji_need() -> None:
    # "می‌خواهم" (Persian, with a zero-width non-joiner) and a family emoji (joiners)
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert plain_text(persian, field="body", max_chars=20) == persian
    assert plain_text(family, field="body", max_chars=20) == family


def test_plain_text_composes_decomposed_hangul() -> None:
    # "한" as three conjoining jamo (U+1112 U+1161 U+11AB) becomes one syllable U+D55C
    assert plain_text("\u1112\u1161\u11ab", field="body", max_chars=1) == "\ud55c"


@pytest.mark.parametrize(("value", "code"), [
    ("", "empty"),
    ("   ", "empty"),
    ("a" * 11, "too_long"),
    ("nul\x00", "invalid_characters"),
    ("bell\x07", "invalid_characters"),
    ("lone \udc80", "invalid_characters"),
    ("\u202etix", "invalid_characters"),  # a right-to-left override: reads "xit"
    ("rita\u200b", "invalid_characters"),  # zero-width space
    ("\ufeffbom", "invalid_characters"),
    (b"bytes", "invalid"),
    (None, "invalid"),
])
def test_plain_text_refuses(value: object, code: str) -> None:
    with pytest.raises(ServiceError) as raised:
        plain_text(value, field="body", max_chars=10)
    assert (raised.value.code, raised.value.field, raised.value.status_code) == \
        (code, "body", 400)


@pytest.mark.parametrize(("dirty", "clean"), [
    ("<script>alert(1)</script>hi", "hi"),
    ('<img src=x onerror="alert(1)">', ""),
    ('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>'),
    ('<a href="https://example.org" onclick="x()">x</a>',
     '<a href="https://example.org" rel="noopener noreferrer nofollow">x</a>'),
    ("<p style=\"color:red\"><b>굵게</b></p>", "<p><b>굵게</b></p>"),
    ("<!-- hidden --><em>x</em>", "<em>x</em>"),
    ("<svg><script>alert(1)</script></svg>", ""),
])
def test_rich_text_keeps_the_allow_list_only(dirty: str, clean: str) -> None:
    assert rich_text(dirty, field="body", max_chars=200) == clean


def test_utf8_text_refuses_invalid_and_oversized_bytes() -> None:
    assert utf8_text("한".encode(), field="frame", max_bytes=3) == "한"
    with pytest.raises(ServiceError) as raised:
        utf8_text(b"\xff\xfe", field="frame", max_bytes=10)
    assert raised.value.code == "invalid_encoding"
    with pytest.raises(ServiceError) as raised:
        utf8_text("한".encode(), field="frame", max_bytes=2)
    assert raised.value.code == "too_large"


@pytest.mark.parametrize(("text", "rate"), [
    ("20/min", Rate(20, 60)), ("5/10s", Rate(5, 10)), ("100/day", Rate(100, 86400)),
    (" 3 / 2 h ", Rate(3, 7200)),
])
def test_rates_parse(text: str, rate: Rate) -> None:
    assert Rate.parse(text) == rate


@pytest.mark.parametrize("text", ["", "20", "0/min", "5/0s", "-1/min", "5/fortnight"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a rate"):
        Rate.parse(text)


def test_the_third_action_in_a_window_of_two_is_refused_until_the_window_ends() -> None:
    rate = Rate(2, 60)
    # 1000.0 s is 16 windows of 60 s and 40 s into the 17th: 20 s remain
    assert hit("message", 7, rate, now=1000.0).allowed
    assert hit("message", 7, rate, now=1001.0).allowed
    with pytest.raises(RateLimitedError) as raised:
        check("message", 7, rate, now=1002.0)
    assert (raised.value.status_code, raised.value.code, raised.value.retry_after) == \
        (429, "rate_limited", 18)
    # another member and another action have budgets of their own
    assert hit("message", 8, rate, now=1002.0).allowed
    assert hit("review", 7, rate, now=1002.0).allowed
    # the next window (from 1020 s) starts afresh
    assert hit("message", 7, rate, now=1020.0).allowed
