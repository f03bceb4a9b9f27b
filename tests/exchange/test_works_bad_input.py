"""Bad input to the works API gets a clear 4xx naming the field, and writes nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from exchange.audit.models import AuditEvent
from exchange.catalogue.models import Work
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def _file(body: bytes, name: str = "upload.png") -> io.BytesIO:
    handle = io.BytesIO(body)
    handle.name = name
    return handle


def _register(client: Any, **fields: Any) -> Any:
    form = {"title": "Harbour", "price_minor": 1250, "currency": "EUR", "file": None}
    form.update(fields)
    if form["file"] is None:
        form["file"] = _file(png_bytes())
    return client.post("/api/v1/works/", form, format="multipart")


def _assert_nothing_written(settings: Any) -> None:
    assert Work.objects.count() == 0
    assert AuditEvent.objects.count() == 0
    assert list(Path(settings.MASTERS_DIR).iterdir()) == []


def _bomb_png() -> bytes:
    """A tiny file that claims 20,000 x 20,000 pixels."""
    out = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "invalid"),
        (b"just some text, not a picture", 415, "unsupported_file"),
        (png_bytes()[:200], 415, "unsupported_file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415, "unsupported_file"),
        (_bomb_png(), 415, "unsupported_file"),
    ],
    ids=["empty", "text", "truncated-png", "png-magic-only", "decompression-bomb"],
)
def test_it_refuses_a_bad_upload(rita, api, settings, body, status, code) -> None:
    response = _register(api(rita), file=_file(body))
    assert response.status_code == status, response.json()
    error = response.json()["error"]
    assert error["code"] == code
    assert "file" in error["fields"]
    _assert_nothing_written(settings)


def test_it_refuses_an_upload_over_the_limit(rita, api, settings) -> None:
    settings.MAX_UPLOAD_BYTES = 1000
    response = _register(api(rita))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert "file" in response.json()["error"]["fields"]
    _assert_nothing_written(settings)


def test_it_refuses_a_request_without_a_file(rita, api, settings) -> None:
    response = api(rita).post(
        "/api/v1/works/", {"title": "x", "price_minor": 1, "currency": "EUR"}, format="multipart"
    )
    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]
    _assert_nothing_written(settings)


@pytest.mark.parametrize(
    "price",
    ["-100", "0", "12.5", "12,50", "1e3", "abc", "", str(10**12), str(2**63), str(10**40)],
    ids=["negative", "zero", "fraction", "comma", "exponent", "letters", "blank", "absurd",
         "beyond-int64", "huge"],
)
def test_it_refuses_a_bad_price(rita, api, settings, price) -> None:
    response = _register(api(rita), price_minor=price)
    assert response.status_code == 400, response.json()
    assert "price_minor" in response.json()["error"]["fields"]
    _assert_nothing_written(settings)


@pytest.mark.parametrize("currency", ["XYZ", "eur", "EURO", "E", "DEM", "XAU", "12€"])
def test_it_refuses_an_unknown_currency(rita, api, settings, currency) -> None:
    response = _register(api(rita), currency=currency)
    assert response.status_code == 400
    assert "currency" in response.json()["error"]["fields"]
    _assert_nothing_written(settings)


def test_the_price_ceiling_follows_the_currency_exponent(rita, api, settings) -> None:
    settings.MAX_PRICE_MAJOR = 1000
    settings.MONEY_LIMIT_SCALES = {}
    assert _register(api(rita), price_minor=100_001, currency="EUR").status_code == 400
    assert _register(api(rita), price_minor=1001, currency="JPY").status_code == 400
    ok = _register(api(rita), price_minor=1_000_000, currency="KWD")  # 1,000.000 KWD
    assert ok.status_code == 201, ok.json()


def test_the_price_ceiling_is_scaled_for_currencies_of_small_units(rita, api,
                                                                   settings) -> None:
    """1,000 as a ceiling is ₩1,000,000 with KRW's scale of 1,000, ¥100,000 with JPY's
    100: a won is not a euro."""
    settings.MAX_PRICE_MAJOR = 1000
    settings.MONEY_LIMIT_SCALES = {"KRW": 1000, "JPY": 100}
    refused = _register(api(rita), price_minor=1_000_001, currency="KRW")
    assert refused.status_code == 400
    assert "₩1,000,000" in str(refused.json())
    assert _register(api(rita), price_minor=100_001, currency="JPY").status_code == 400
    assert _register(api(rita), price_minor=1_000_000, currency="KRW").status_code == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("allowed_uses", "resell"),
        ("licence_days", "0"),
        ("licence_days", "36501"),
        ("byte_allowance_multiple", "0"),
        ("byte_allowance_multiple", "101"),
        ("title", ""),
        ("title", "x" * 201),
        ("media_type", "audio"),
    ],
)
def test_it_refuses_bad_terms(rita, api, settings, field, value) -> None:
    response = _register(api(rita), **{field: value})
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    _assert_nothing_written(settings)


def test_only_rights_holders_register_works(bob, api, settings) -> None:
    response = _register(api(bob))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_a_rights_holder"
    _assert_nothing_written(settings)


def test_anonymous_users_cannot_register(api, settings) -> None:
    response = _register(api(None))
    assert response.status_code == 401
    _assert_nothing_written(settings)


def test_json_is_the_wrong_content_type_for_an_upload(rita, api, settings) -> None:
    response = api(rita).post(
        "/api/v1/works/", {"title": "x", "price_minor": 5, "currency": "EUR"}, format="json"
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


class TestChangingTerms:
    def test_it_refuses_malformed_json(self, rita, make_work, api) -> None:
        work = make_work(rita)
        response = api(rita).patch(
            f"/api/v1/works/{work.pk}/", b'{"price_minor": 12', content_type="application/json"
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_request"

    def test_it_refuses_a_form_body(self, rita, make_work, api) -> None:
        work = make_work(rita)
        response = api(rita).patch(
            f"/api/v1/works/{work.pk}/", "price_minor=5", content_type="text/plain"
        )
        assert response.status_code == 415

    @pytest.mark.parametrize(
        "body",
        [{"price_minor": 12.5}, {"price_minor": "12.5"}, {"price_minor": True},
         {"price_minor": -1}, {"price_minor": 2**64}, {"currency": "ZZZ"},
         {"allowed_uses": ["view", "resell"]}, {"allowed_uses": []}, {"sha256": "0" * 64},
         {"owner": 1}, {}],
        ids=["float", "float-text", "bool", "negative", "huge", "currency", "unknown-use",
             "no-uses", "read-only-field", "owner", "empty"],
    )
    def test_it_refuses_bad_changes_and_keeps_the_old_terms(
        self, rita, make_work, api, body
    ) -> None:
        work = make_work(rita)
        response = api(rita).patch(f"/api/v1/works/{work.pk}/", body, format="json")
        assert response.status_code == 400, response.json()
        error = response.json()["error"]
        assert error["code"] == "invalid"
        if body:
            assert set(body) <= set(error["fields"])
        work.refresh_from_db()
        assert (work.price_minor, work.currency, work.allowed_uses) == (
            1250, "EUR", ["view", "download"]
        )
        assert not AuditEvent.objects.filter(action="work.update").exists()

    def test_a_price_must_fit_the_new_currency(self, rita, make_work, api, settings) -> None:
        settings.MAX_PRICE_MAJOR = 1000
        settings.MONEY_LIMIT_SCALES = {}
        work = make_work(rita, price_minor=50_000, currency="EUR")  # 500 EUR
        response = api(rita).patch(f"/api/v1/works/{work.pk}/", {"currency": "JPY"}, format="json")
        assert response.status_code == 400
        assert "price_minor" in response.json()["error"]["fields"]


def test_a_malformed_work_id_is_a_404(api) -> None:
    response = api(None).get("/api/v1/works/not-a-uuid/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_unknown_endpoint_answers_in_json(api) -> None:
    response = api(None).get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("value", ["-1.1e-308", "yes", "", "2", "tru"])
def test_a_mine_filter_that_is_not_a_boolean_is_refused(rita, api, value) -> None:
    response = api(rita).get("/api/v1/works/", {"mine": value})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["mine"]


@pytest.mark.parametrize(("value", "own_only"), [("true", True), ("1", True), ("TRUE", True),
                                                 ("false", False), ("0", False)])
def test_a_mine_filter_takes_true_and_false(rita, rob, make_work, api, value, own_only) -> None:
    make_work(rob, title="Rob's")
    make_work(rita, title="Rita's")
    listed = api(rita).get("/api/v1/works/", {"mine": value}).json()["results"]
    titles = {w["title"] for w in listed}
    assert titles == ({"Rita's"} if own_only else {"Rita's", "Rob's"})


def _zip_bomb_epub() -> bytes:
    """An EPUB whose one chapter inflates from a few kilobytes to 200 MB of spaces."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip")
        archive.writestr("META-INF/container.xml", b"<container/>",
                         compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("OEBPS/bomb.xhtml", b" " * (200 << 20), compress_type=zipfile.ZIP_DEFLATED,
                         compresslevel=9)
    return out.getvalue()


def _media_case(name: str) -> bytes:
    """Videos, PDFs and EPUBs an agent could not mark, or built to hurt it."""
    from tests.watermark import pdf_documents, video_clips

    if name == "truncated-mp4":
        clip = video_clips.make_clip("gradients", width=160, height=96, fps=10, seconds=2.0,
                                     seed=4)
        return clip[: len(clip) // 2]
    cases = {
        "mp4-magic-only": lambda: b"\x00\x00\x00\x18ftypisom" + bytes(400),
        "webm-magic-only": lambda: b"\x1a\x45\xdf\xa3" + bytes(300),
        "truncated-pdf": lambda: pdf_documents.truncated(pdf_documents.text_pdf(pages=2), 0.5),
        "encrypted-pdf": pdf_documents.encrypted_pdf,
        "pdf-bomb": pdf_documents.bomb_pdf,
        "pdf-deep-nesting": lambda: pdf_documents.deep_nesting_pdf(600),
        "epub-magic-only": lambda: (b"PK\x03\x04" + bytes(26)
                                    + b"mimetypeapplication/epub+zip"),
        "epub-zip-bomb": _zip_bomb_epub,
    }
    return cases[name]()


@pytest.mark.parametrize("case", [
    "mp4-magic-only", "truncated-mp4", "webm-magic-only", "truncated-pdf", "encrypted-pdf",
    "pdf-bomb", "pdf-deep-nesting", "epub-magic-only", "epub-zip-bomb"])
def test_it_refuses_a_video_or_document_the_agents_could_not_mark(rita, api, settings,
                                                                  case) -> None:
    response = _register(api(rita), file=_file(_media_case(case), "upload.bin"))
    assert response.status_code == 415, response.json()
    error = response.json()["error"]
    assert error["code"] == "unsupported_file"
    assert "file" in error["fields"]
    _assert_nothing_written(settings)
