"""Tracing a leaked recording to its licence: an excerpt, re-encoded and turned down, is
placed among the owner's audio works by its fingerprint and read with the right key."""

from __future__ import annotations

import functools
import io
import time
from typing import Any

import numpy as np
import pytest
import soundfile
from django.test import Client

from exchange.catalogue.demo_audio import RATE, demo_music, demo_music_mp3, mp3_bytes
from exchange.core.errors import ServiceError
from exchange.licensing.models import Licence
from exchange.purchases.services import purchase_create
from exchange.tracing.models import MasterFingerprint, TraceOutcome, TraceReport
from exchange.tracing.perceptual import (
    AUDIO_PRINT_VERSION,
    AudioPrint,
    audio_match,
    audio_print,
    best_audio_match,
    suspect_prints,
)
from exchange.tracing.services import MAX_CANDIDATES, trace_copy
from licensing.core.keyring import KeyRing
from licensing.core.licence import read_licence
from watermark.audio.codec import embed_audio_bytes

pytestmark = pytest.mark.django_db


@functools.cache
def _track(seed: int, seconds: float = 24.0) -> bytes:
    return demo_music_mp3(seed=seed, seconds=seconds)


def _decoded(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples, rate


def _leak(data: bytes, *, start: float = 2.5, seconds: float = 20.0, gain_db: float = -3.0,
          kbps: int = 128) -> bytes:
    """What a leaker does with a song: cut an excerpt, turn it down, encode it as MP3."""
    samples, rate = _decoded(data)
    excerpt = samples[int(start * rate): int((start + seconds) * rate)]
    return mp3_bytes(excerpt * 10 ** (gain_db / 20), rate=rate, kbps=kbps)


def _delivered_copy(buyer, work, device_of) -> tuple[bytes, Any]:
    """Buy ``work`` and mark the master as the buyer's agent does on delivery."""
    keys, device = device_of(buyer)
    purchase = purchase_create(buyer=buyer, work_id=work.pk, device_id=device.device_id)
    ring = KeyRing.from_jwks(Client().get("/.well-known/jwks.json").content)
    licence = read_licence(purchase.licence.token, keyring=ring, now=int(time.time()))
    unwrapped = licence.unwrap_keys(keys)
    from django.conf import settings

    master = (settings.MASTERS_DIR / work.master_path).read_bytes()
    return embed_audio_bytes(master, unwrapped.watermark_key,
                             licence.watermark_payload), purchase.licence


@pytest.fixture
def album(rita, bob, make_work, fund, device_of) -> dict[str, Any]:
    """Four of Rita's tracks (MP3, 24 s); Bob bought the second and took a copy."""
    works = [make_work(rita, title=f"Track {seed}", data=_track(seed), price_minor=199)
             for seed in (1, 2, 3, 4)]
    fund(bob, 10_000)
    return {"works": works, "bob": _delivered_copy(bob, works[1], device_of)}


class TestFingerprint:
    """The fingerprint alone, on generated music: real expected values."""

    def test_a_marked_reencoded_quieter_excerpt_lands_near_its_master_at_its_place(self) -> None:
        from watermark.audio import embed

        master = demo_music(seed=5, seconds=30)
        marked = embed(master, RATE, b"k" * 32, 0x0123_4567_89AB_CDEF)
        leaked = _leak(mp3_bytes(marked), start=6.0)
        copies = suspect_prints(*_decoded(leaked))
        own = best_audio_match(copies, audio_print(master, RATE))
        assert own is not None
        assert own.bit_error_rate < 0.25
        # the MP3 encoder's delay (about 50 ms) moves the excerpt a couple of frames
        assert own.master_seconds == pytest.approx(6.0, abs=0.1)
        assert own.speed == 1.0
        for seed in (6, 7):
            other = best_audio_match(copies, audio_print(demo_music(seed=seed, seconds=30),
                                                         RATE))
            assert other is not None
            assert other.bit_error_rate > 0.42

    def test_a_copy_played_one_percent_fast_is_found_at_that_speed(self) -> None:
        master = demo_music(seed=5, seconds=30)
        positions = np.arange(int(master.shape[0] / 1.01)) * 1.01
        faster = np.stack([np.interp(positions, np.arange(master.shape[0]), master[:, c])
                           for c in range(2)], axis=1)[5 * RATE: 25 * RATE]
        unchanged = audio_match(audio_print(faster, RATE), audio_print(master, RATE),
                                min_seconds=5)
        found = best_audio_match(suspect_prints(faster, RATE), audio_print(master, RATE))
        # 20 s at 1% fast drift 9 frames off the master's: a third of the bits differ
        assert unchanged is not None
        assert unchanged.bit_error_rate > 0.28
        assert found is not None
        assert found.bit_error_rate < 0.12
        assert found.speed == pytest.approx(1.01)

    def test_digital_silence_matches_nothing(self) -> None:
        silence = np.zeros((20 * RATE, 2), np.float32)
        prints = suspect_prints(silence, RATE)
        assert not prints[0].loud.any()
        assert best_audio_match(prints, audio_print(silence, RATE)) is None

    def test_it_is_kept_as_bytes_and_a_stale_layout_is_not_read(self) -> None:
        made = audio_print(demo_music(seed=5, seconds=10), RATE)
        data = made.to_bytes()
        assert len(data) < 10 * 200  # about 170 bytes a second
        again = AudioPrint.from_bytes(data)
        assert again is not None
        assert np.array_equal(again.bits, made.bits)
        assert np.array_equal(again.loud, made.loud)
        assert AudioPrint.from_bytes(bytes([AUDIO_PRINT_VERSION + 1]) + data[1:]) is None


class TestNaming:
    def test_a_reencoded_quieter_excerpt_names_its_buyers_licence(self, rita, bob,
                                                                  album) -> None:
        copy, licence = album["bob"]
        report = trace_copy(owner=rita, data=_leak(copy), name="found.mp3")
        assert report.outcome == TraceOutcome.MARKED, report.details
        assert report.work == album["works"][1]
        assert list(report.licences.all()) == [licence]
        assert report.licences.get().buyer == bob
        # where the excerpt was cut, give or take the MP3 encoders' delay and a frame
        assert report.details["the copy starts in the master at"] in {"0:02.4", "0:02.5",
                                                                      "0:02.6"}
        assert float(report.details["fingerprint bits differing from the master"][:-1]) < 25
        payload = int(report.details["payload (hex)"], 16)
        assert Licence.stored_payload(payload) == licence.watermark_stored

    def test_two_buyers_excerpts_name_two_licences(self, rita, carol, album, fund,
                                                   device_of) -> None:
        fund(carol, 10_000)
        carol_copy, carol_licence = _delivered_copy(carol, album["works"][1], device_of)
        for copy, licence in (album["bob"], (carol_copy, carol_licence)):
            report = trace_copy(owner=rita, data=_leak(copy, start=1.0, seconds=15))
            assert list(report.licences.all()) == [licence]

    def test_the_delivered_copy_byte_for_byte_is_named_by_its_receipt(self, rita,
                                                                       album) -> None:
        import hashlib

        from exchange.metering.models import Receipt

        copy, licence = album["bob"]
        Receipt.objects.create(licence=licence, receipt_id="r-1", token="t",
                               output_sha256=hashlib.sha256(copy).hexdigest(), marked=True,
                               claimed_bytes={}, settle_after=licence.issued_at)
        report = trace_copy(owner=rita, data=copy)
        assert report.outcome == TraceOutcome.DELIVERED_COPY
        assert list(report.licences.all()) == [licence]

    def test_an_unmarked_excerpt_is_recognised_but_names_nobody(self, rita, album) -> None:
        report = trace_copy(owner=rita, data=_leak(_track(3)))
        assert report.outcome == TraceOutcome.NO_MARK
        assert report.work == album["works"][2]
        assert not report.licences.exists()
        # the nearest candidates were read, and none of them carried a mark
        assert 1 <= len(report.details["candidates"]) <= MAX_CANDIDATES
        assert report.details["candidates"][0]["work"] == str(album["works"][2].pk)

    def test_music_that_is_none_of_the_works_is_unknown(self, rita, album) -> None:
        report = trace_copy(owner=rita, data=_leak(_track(9)))
        assert report.outcome == TraceOutcome.UNKNOWN
        assert report.work is None
        assert report.details["candidates"] == []

    def test_each_audio_masters_fingerprint_is_made_once_and_kept(self, rita, album) -> None:
        trace_copy(owner=rita, data=_leak(_track(9)))
        stored = MasterFingerprint.objects.filter(work__in=album["works"])
        assert stored.count() == 4
        assert all(AudioPrint.from_bytes(bytes(f.audio_print)) for f in stored)
        # a fingerprint of an older layout is made again, not misread
        MasterFingerprint.objects.filter(work=album["works"][0]).update(audio_print=b"\x00")
        trace_copy(owner=rita, data=_leak(_track(9)))
        again = MasterFingerprint.objects.get(work=album["works"][0])
        assert AudioPrint.from_bytes(bytes(again.audio_print)) is not None


class TestBoundaries:
    def test_another_owners_audio_work_is_never_considered(self, rita, rob, album,
                                                           make_work) -> None:
        robs = make_work(rob, title="Rob's track", data=_track(9), price_minor=199)
        leaked = _leak(album["bob"][0])
        report = trace_copy(owner=rob, data=leaked)
        assert report.outcome == TraceOutcome.UNKNOWN
        assert report.work is None
        assert report.details["candidates"] == []
        # and Rita's trace of Rob's track does not even compare it
        mine = trace_copy(owner=rita, data=_leak(_track(9)))
        assert mine.outcome == TraceOutcome.UNKNOWN
        assert mine.details["candidates"] == []
        assert robs.pk not in {report.work_id, mine.work_id}

    @pytest.mark.parametrize(("make", "code", "message"), [
        (lambda: _track(1)[:30_000] + b"\x00" * 3, "unreadable_audio", "could not be read"),
        (lambda: _track(1, seconds=5), "too_short", "at least 7.5 s"),
        (lambda: b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\xff" * 40, "unreadable_audio",
         "could not be read"),
    ], ids=["truncated-mp3", "five-seconds", "broken-wav"])
    def test_bad_audio_gets_a_clear_error_and_leaves_no_report(self, rita, album, make, code,
                                                                message) -> None:
        with pytest.raises(ServiceError) as caught:
            trace_copy(owner=rita, data=make())
        assert caught.value.code == code
        assert message in caught.value.message
        assert caught.value.status_code == 400
        assert not TraceReport.objects.exists()


class TestPortalAndApi:
    def test_upload_an_excerpt_in_the_portal_and_read_the_buyer(self, client, rita, bob,
                                                                album) -> None:
        client.force_login(rita)
        upload = io.BytesIO(_leak(album["bob"][0]))
        upload.name = "found.mp3"
        response = client.post("/studio/trace/", {"file": upload})
        assert response.status_code == 302
        text = client.get(response["Location"]).content.decode()
        assert bob.username in text
        assert str(album["bob"][1].pk) in text

    def test_a_broken_recording_is_an_error_on_the_form_and_in_the_api(self, client, api,
                                                                        rita) -> None:
        client.force_login(rita)
        upload = io.BytesIO(_track(1)[:30_000] + b"\x00" * 3)
        upload.name = "broken.mp3"
        response = client.post("/studio/trace/", {"file": upload})
        assert response.status_code == 200
        assert "could not be read as audio" in response.content.decode()
        short = api(rita).post("/api/v1/traces/", {"file": io.BytesIO(_track(1, seconds=5))},
                               format="multipart")
        assert short.status_code == 400
        assert short.json()["error"]["code"] == "too_short"
        assert short.json()["error"]["fields"]
        assert not TraceReport.objects.exists()
