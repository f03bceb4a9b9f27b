"""What members write for one another (messages, reviews, replies, chat lines, bios):
checked for size and characters, and HTML sanitised with nh3 (the Rust ammonia
sanitiser: a maintained allow-list parser, never a hand-written filter).

Two kinds of body:
- ``plain_text``: stored as typed, shown escaped by the templates' autoescape. Control
  characters (but newline and tab), invisible format characters (bidirectional
  overrides, zero-width spaces), lone surrogates and NUL are refused, not dropped, so a
  member learns their text was not what they meant.
- ``rich_text``: a small allow-list of inline and block tags, links only to http(s) and
  mailto with ``rel="noopener noreferrer nofollow"``; scripts, styles, event handlers and
  every other attribute are removed by nh3. The sanitised HTML is what is stored, so a
  later template mistake cannot bring a script back.
"""

from __future__ import annotations

import unicodedata
from typing import Final

import nh3
from django.utils.translation import gettext as _

from exchange.core.errors import ServiceError

RICH_TAGS: Final = frozenset({"a", "b", "blockquote", "br", "code", "em", "i", "li", "ol",
                              "p", "pre", "s", "strong", "u", "ul"})
RICH_ATTRIBUTES: Final = {"a": {"href", "title"}}
RICH_SCHEMES: Final = frozenset({"http", "https", "mailto"})
_ALLOWED_CONTROLS: Final = frozenset("\n\t")
_ALLOWED_FORMAT: Final = frozenset("\u200c\u200d")
"""Invisible format characters (Unicode category Cf) are refused: a right-to-left
override makes "\u202eredlohthgir" read as another name, zero-width spaces make two
names look alike. These two stay: the zero-width non-joiner and joiner shape Persian and
Indic words and join emoji sequences. So do the tag characters of subdivision flags."""


def plain_text(value: object, *, field: str, max_chars: int, required: bool = True) -> str:
    """``value`` as a member's text: a str (not bytes), NFC-normalised, stripped, at most
    ``max_chars`` characters, no control characters. Raises `ServiceError` (400,
    ``field``) otherwise."""
    if not isinstance(value, str):
        raise ServiceError(_("Expected text."), code="invalid", field=field)
    text = unicodedata.normalize("NFC", value.replace("\r\n", "\n")).strip()
    if required and not text:
        raise ServiceError(_("This may not be empty."), code="empty", field=field)
    if len(text) > max_chars:
        raise ServiceError(
            _("At most %(limit)d characters (this has %(count)d).")
            % {"limit": max_chars, "count": len(text)},
            code="too_long", field=field,
        )
    for char in text:
        if char in _ALLOWED_CONTROLS:
            continue
        category = unicodedata.category(char)
        invisible = (category == "Cf" and char not in _ALLOWED_FORMAT
                     and not 0xE0020 <= ord(char) <= 0xE007F)
        if category in {"Cs", "Cc"} or invisible:
            raise ServiceError(
                _("The text holds a control character (U+%(code)04X).") % {"code": ord(char)},
                code="invalid_characters", field=field,
            )
    return text


def rich_text(value: object, *, field: str, max_chars: int) -> str:
    """``value`` checked as `plain_text`, then sanitised to the allow-list. The limit
    applies to what was sent: sanitising escapes ``&``, ``<`` and quotes as entities, so
    what is stored can be up to six times as long (``"`` becomes ``&quot;``), never more."""
    text = plain_text(value, field=field, max_chars=max_chars)
    return nh3.clean(
        text,
        tags=set(RICH_TAGS),
        attributes={tag: set(names) for tag, names in RICH_ATTRIBUTES.items()},
        url_schemes=set(RICH_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def utf8_text(raw: bytes, *, field: str, max_bytes: int) -> str:
    """Bytes from a wire that is not JSON (a WebSocket binary frame, an upload) as text:
    at most ``max_bytes``, valid UTF-8, or a clear 400."""
    if len(raw) > max_bytes:
        raise ServiceError(_("At most %(limit)d bytes.") % {"limit": max_bytes},
                           code="too_large", field=field)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ServiceError(_("The text is not valid UTF-8."), code="invalid_encoding",
                           field=field) from error
