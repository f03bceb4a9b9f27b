"""The portal and the API speak English and Korean: the Korean catalogue is complete for
the current sources, the shipped .mo is the .po compiled, every translation keeps its
placeholders, and the pages and API errors come out in Korean when asked for."""

from __future__ import annotations

import gettext
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from django.utils import translation

from tests.conftest import _skip_or_fail

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_korean_afterwards() -> Iterator[None]:
    """A request in Korean leaves Korean active in the test's thread (LocaleMiddleware
    activates it; only the next request changes it): the tests that run after these must
    not read Korean messages."""
    yield
    translation.deactivate()
LOCALE = ROOT / "locale"
LANGUAGES = ("ko", "en")


def _po_path(language: str, root: Path = ROOT) -> Path:
    return root / "locale" / language / "LC_MESSAGES" / "django.po"


def _read_po(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f)


def _messages(catalog: Catalog) -> list[Message]:
    """Every message but the header."""
    return [message for message in catalog if message.id]


def _ids(message: Message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, tuple | list) else (message.id,)


def _strings(message: Message) -> tuple[str, ...]:
    if isinstance(message.string, tuple | list):  # a .po's plural forms; a .mo's are a list
        return tuple(message.string)
    return (message.string,)


def _context(message: Message) -> str | None:
    """Babel reads a .mo's message contexts as bytes, a .po's as text."""
    context = message.context
    return context.decode() if isinstance(context, bytes) else context


def _label(message: Message) -> str:
    where = f"[{message.context}] " if message.context else ""
    return where + _ids(message)[0]


# --- (a) complete for the current sources -------------------------------------------------


@pytest.fixture(scope="module")
def fresh_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """``makemessages -l ko`` run on a copy of the sources and the shipped catalogues, as a
    developer would after changing a string: what it finds is what the shipped .po must
    already translate."""
    if shutil.which("xgettext") is None or shutil.which("msgmerge") is None:
        _skip_or_fail("needs GNU gettext (xgettext, msgmerge): apt-get install gettext")
    work = tmp_path_factory.mktemp("sources")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.mo")
    for folder in ("exchange", "templates", "locale"):
        shutil.copytree(ROOT / folder, work / folder, ignore=ignore)
    shutil.copy2(ROOT / "manage.py", work / "manage.py")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PEERMARK_DATA_DIR": str(work / "data"),
           "DJANGO_SETTINGS_MODULE": "exchange.settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ko", "--no-obsolete"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return _read_po(_po_path("ko", work))


def test_the_korean_catalogue_translates_every_string_of_the_current_sources(
        fresh_catalogue: Catalog) -> None:
    forms = fresh_catalogue.num_plurals
    untranslated = [_label(m) for m in _messages(fresh_catalogue) if not all(_strings(m))
                    or (m.pluralizable and len(_strings(m)) != forms)]
    fuzzy = [_label(m) for m in _messages(fresh_catalogue) if m.fuzzy]
    complete = not untranslated and not fuzzy
    assert complete, (
        "locale/ko/LC_MESSAGES/django.po is not complete for the current sources. Run "
        "`manage.py makemessages -l ko -l en --ignore=.venv --ignore=benchmarks "
        "--ignore=tests`, translate these in locale/ko/LC_MESSAGES/django.po, and run "
        "`manage.py compilemessages --ignore=.venv` (docs/OPERATIONS.md, \"Translations\").\n"
        "Untranslated:\n  " + "\n  ".join(untranslated)
        + "\nFuzzy (the English changed: check the translation, then drop the fuzzy flag):\n  "
        + "\n  ".join(fuzzy))
    assert not fresh_catalogue.fuzzy, "the catalogue's header is marked fuzzy"


def test_the_shipped_korean_catalogue_has_no_stale_or_fuzzy_entry() -> None:
    shipped = _read_po(_po_path("ko"))
    assert not shipped.fuzzy
    assert shipped.num_plurals == 1  # Korean has one form: "%(count)s건"
    problems = [_label(m) for m in _messages(shipped) if m.fuzzy or not all(_strings(m))]
    assert not problems, problems


def test_the_english_catalogue_lists_the_same_strings() -> None:
    """English is the source language: its catalogue may leave every msgstr empty (gettext
    then returns the English msgid), but it is kept up to date with the Korean one."""
    korean = {(m.context, _ids(m)) for m in _messages(_read_po(_po_path("ko")))}
    english = {(m.context, _ids(m)) for m in _messages(_read_po(_po_path("en")))}
    assert english == korean


# --- (b) the shipped .mo is the .po, compiled ----------------------------------------------


def _translator(mo: bytes) -> gettext.GNUTranslations:
    return gettext.GNUTranslations(io.BytesIO(mo))


def _lookups(messages: list[Message], translator: gettext.GNUTranslations) -> dict[str, str]:
    """What a running program reads for each message (both plural forms' counts)."""
    seen: dict[str, str] = {}
    for message in messages:
        ids = _ids(message)
        for count in (1, 2) if len(ids) > 1 else (None,):
            if count is None:
                text = (translator.pgettext(message.context, ids[0]) if message.context
                        else translator.gettext(ids[0]))
            elif message.context:
                text = translator.npgettext(message.context, ids[0], ids[1], count)
            else:
                text = translator.ngettext(ids[0], ids[1], count)
            seen[f"{_label(message)} (n={count})"] = text
    return seen


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_shipped_mo_is_the_po_compiled(language: str) -> None:
    catalog = _read_po(_po_path(language))
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    shipped_mo = (LOCALE / language / "LC_MESSAGES" / "django.mo").read_bytes()

    # The same messages, with the same translations ...
    with io.BytesIO(shipped_mo) as f:
        shipped = read_mo(f)
    translated = {(m.context, _ids(m)): _strings(m) for m in _messages(catalog)
                  if all(_strings(m)) and not m.fuzzy}
    in_mo = {(_context(m), _ids(m)): _strings(m) for m in _messages(shipped)}
    assert in_mo == translated, "run `manage.py compilemessages` and ship the .mo"
    # ... and the same text where the running program reads it.
    messages = _messages(catalog)
    assert _lookups(messages, _translator(shipped_mo)) == _lookups(
        messages, _translator(compiled.getvalue()))
    assert _translator(shipped_mo).info().get("content-type", "").lower().endswith("utf-8")


# --- (c) placeholders and markup kept exactly ---------------------------------------------

_PERCENT = re.compile(r"%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?[sdifrxXeEgGc%]")
_BRACES = re.compile(r"\{(\w*)\}")
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


def _placeholders(text: str) -> list[str]:
    found = [m.group(0) for m in _PERCENT.finditer(text) if m.group(0) != "%%"]
    found += [m.group(0) for m in _BRACES.finditer(text)]
    return sorted(found)


def _tags(text: str) -> list[str]:
    return sorted(_TAG.findall(text))


def test_every_translation_keeps_its_placeholders_and_markup() -> None:
    wrong = []
    for message in _messages(_read_po(_po_path("ko"))):
        ids = _ids(message)
        # Every form must carry what the msgid's plural says (Korean's one form is used
        # for every count, so it must name the count too).
        expected = sorted(set(_placeholders(ids[-1])) | set(_placeholders(ids[0])))
        for text in filter(None, _strings(message)):  # an untranslated one fails above
            if sorted(set(_placeholders(text))) != expected or \
                    _tags(text) != _tags(ids[0]):
                wrong.append(f"{_label(message)!r} -> {text!r}")
    assert not wrong, "\n".join(wrong)


def test_the_placeholder_check_sees_a_dropped_or_renamed_placeholder() -> None:
    assert _placeholders("%(name)s has %(count)d, at most {mib} MiB, 100%%") == sorted(
        ["%(name)s", "%(count)d", "{mib}"])
    assert _placeholders("%(name)s") != _placeholders("%(nom)s")
    assert _tags('New? <a href="%(url)s">Join</a>.') == ['</a>', '<a href="%(url)s">']


def test_the_portals_use_labels_say_what_the_licence_terms_say() -> None:
    from exchange.catalogue.terms import ALLOWED_USES, USE_LABELS, USE_NAMES

    with translation.override("en"):
        assert {use: str(text) for use, text in USE_LABELS.items()} == ALLOWED_USES
        assert {use: str(name) for use, name in USE_NAMES.items()} == {
            use: use for use in ALLOWED_USES}


# --- (d) the portal and the API in Korean ------------------------------------------------

ENGLISH_NAVIGATION = ("Catalogue", "My works", "Sales", "Trace a copy", "Library", "Wallet",
                      "Dashboard", "Admin", "Log out", "Log in", "Sign up")


def _navigation(page: str) -> str:
    found = re.search(r"<nav\b[^>]*>(.*?)</nav>", page, re.DOTALL)
    assert found is not None
    return re.sub(r"<[^>]+>", " ", found.group(1))


def _korean(client, path: str) -> str:
    client.cookies["django_language"] = "ko"
    response = client.get(path)
    assert response.status_code == 200, path
    page = response.content.decode()
    assert '<html lang="ko">' in page, path
    return page


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "says"), [
    ("/", ["모두가 공정하게 대가를 받습니다", "판매 과정", "에이전트 받기"]),
    ("/catalogue/", ["카탈로그", "제목과 설명 검색", "작품이 없습니다."]),
    ("/login/", ["로그인", "처음이신가요?", "계정을 만드세요"]),
    ("/signup/", ["계정 만들기", "이메일", "작품을 구매하고 공유합니다", "역할"]),
])
def test_anonymous_pages_speak_korean(client, path, says) -> None:
    page = _korean(client, path)
    for text in says:
        assert text in page, (path, text)
    navigation = _navigation(page)
    for korean in ("카탈로그", "로그인", "가입하기"):
        assert korean in navigation, (path, korean)
    for english in ENGLISH_NAVIGATION:
        assert english not in navigation, (path, english)
    assert "언어" in page  # the language switcher's label


@pytest.mark.django_db
def test_a_members_wallet_and_a_works_page_speak_korean(client, rita, bob, make_work) -> None:
    work = make_work(rita, title="새벽 항구", price_minor=15000, currency="KRW")
    client.force_login(bob)

    wallet = _korean(client, "/wallet/")
    for text in ("지갑", "충전", "최근 충전", "명세서", "금액", "통화", "테스트 결제 대행사"):
        assert text in wallet, text
    navigation = _navigation(wallet)
    for korean in ("카탈로그", "보관함", "지갑", "로그아웃", "구매자 / 피어"):
        assert korean in navigation, korean
    leftover = re.findall(r"[A-Za-z]{2,}", navigation.replace(bob.username, ""))
    assert not leftover, leftover

    page = _korean(client, f"/works/{work.pk}/")
    for text in ("새벽 항구", "₩15,000", "허용되는 이용 방식", "보기, 다운로드", "365일",
                 "바이트 허용량", "작품 크기의 2배", "이미지", "판매 중", "에이전트 받기"):
        assert text in page, text
    for english in ("Allowed uses", "Licence lifetime", "Log in to buy"):
        assert english not in page, english


@pytest.mark.django_db
def test_a_korean_rights_holder_registers_a_work_in_korean(client, rita) -> None:
    client.force_login(rita)
    page = _korean(client, "/studio/works/new/")
    for text in ("작품 등록", "제목", "가격", "라이선스 유효 기간(일)",
                 "보기: 작품을 개인적으로 보거나 재생합니다."):
        assert text in page, text
    response = client.post("/studio/works/new/", {"title": "", "price": "1.5",
                                                  "currency": "KRW"})
    assert response.status_code == 400
    assert "필수 항목입니다." in response.content.decode()  # Django's own catalogue


@pytest.mark.django_db
def test_api_errors_follow_accept_language_and_keep_their_codes(api, bob) -> None:
    client = api(bob)
    korean = client.post("/api/v1/works/", {}, HTTP_ACCEPT_LANGUAGE="ko")
    assert korean.status_code == 403
    assert korean.json()["error"] == {"code": "not_a_rights_holder",
                                      "message": "권리자만 작품을 등록할 수 있습니다.",
                                      "fields": {}}
    english = client.post("/api/v1/works/", {}, HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["error"]["message"] == "Only rights holders can register works."

    missing = client.get("/api/v1/no-such-thing/", HTTP_ACCEPT_LANGUAGE="ko")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"code": "not_found",
                                       "message": "해당 엔드포인트가 없습니다.", "fields": {}}
