"""The peer index's fast path, with the platform's own API behind it.

Why: announces, heartbeats and source lookups from every serving agent are most of the
platform's traffic. Where the platform runs the index service (peerindex/,
docs/INDEX.md), it hands each device a short-lived credential and the index answers
those three calls from Redis, never touching the platform. Where it does not (404
``index_not_offered``), or the index is unreachable, broken (5xx) or busy (503 or 429
with ``Retry-After``), the agent uses the present ``/api/v1/peers/...`` endpoints
instead, so it keeps working either way; the callers (daemon.py, workflow.py) cannot
tell which path answered, except that a heartbeat the index asked to wait for is
skipped (``heartbeat`` answers None).

The credential is opaque here (the agent imports nothing of the server package). It is
renewed at half its life on the platform's clock, and at once when the index answers 401
``credential_expired``; after 401 ``credential_revoked`` the fast path is left for a
long while and the platform's API, which refuses a revoked device in its own clear
words, answers instead.

Synchronous (httpx), like ``PlatformClient``: the daemon calls it from worker threads,
so the little state it keeps (the credential, the pauses) is guarded by a lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from agent import __version__
from agent.config import write_private
from agent.platform import PlatformClient, PlatformError, PlatformUnreachableError

log = logging.getLogger("agent.index")

CREDENTIAL_PATH = "/api/v1/peers/index-credential/"
# The index should answer in milliseconds; a slow one costs this much before the
# platform is asked instead.
TIMEOUT = httpx.Timeout(5.0, connect=2.0)
# Retry-After is obeyed up to this long, stretched by up to JITTER so that agents told
# the same moment do not all come back in it.
MAX_PAUSE_SECONDS = 300.0
JITTER = 0.25
# After the index is unreachable or broken: the first pause, doubled per failure in a
# row up to MAX_PAUSE_SECONDS.
DOWN_PAUSE_SECONDS = 15.0
# How long before asking the platform for a credential again after it refused one
# (no index offered, an old platform without the endpoint, a refused device).
REFUSED_PAUSE_SECONDS = 600.0
# After 401 credential_revoked: the platform's API answers (and refuses) meanwhile.
REVOKED_PAUSE_SECONDS = 3600.0
# A credential is not used in its last seconds, when it could expire on the way.
EXPIRY_MARGIN_SECONDS = 10.0
# Sources asked of the index per lookup (it allows 1 to 200; the downloader's workers
# use a few at a time and the rest replace those that fail).
SOURCES_WANTED = 50
# Holdings per announce: the index refuses more in one request.
MAX_HOLDINGS = 1000
# Holdings expire from the index's Redis (which the platform's API shares) unless
# announced again: a full announce this often, or as often as the credential says.
REANNOUNCE_SECONDS = 1800.0

OPERATIONS = ("announce", "heartbeat", "sources")


class _UsePlatformError(Exception):
    """The fast path cannot answer this call: ask the platform's API."""


class _IndexBusyError(_UsePlatformError):
    """The index asked to wait (Retry-After) before the next call of this kind:
    ``limited`` when this agent is over its rate (429), else the index is unavailable
    (503: its Redis is away)."""

    def __init__(self, reason: str, *, limited: bool) -> None:
        super().__init__(reason)
        self.limited = limited


@dataclass(frozen=True)
class IndexCredential:
    """A credential as the platform issued it, with its life on the local clock."""

    token: str
    index_url: str
    refresh_at: float
    expires_at: float


class IndexClient:
    """Announce, heartbeat and sources for one device: by the index where the platform
    offers one, else (or meanwhile) by the platform's API.

    ``routes`` counts how each call went, ``(operation, "index" | "platform" |
    "skipped")``, for tests and for anyone curious which path the agent is on.
    """

    def __init__(self, platform: PlatformClient, *, device_id: str,
                 clock: Callable[[], float] = time.time,
                 rng: Callable[[], float] = random.random,
                 transport: httpx.BaseTransport | None = None,
                 credential_file: Path | None = None) -> None:
        self._platform = platform
        self._device = device_id
        # where the credential is kept between runs (owner-only, as the API token is)
        self._credential_file = credential_file
        self._file_read = credential_file is None
        self._clock = clock
        self._rng = rng
        self._transport = transport
        self._http: httpx.Client | None = None  # made on first use (~0.1 s: TLS setup)
        self._lock = threading.Lock()
        self._credential: IndexCredential | None = None
        self._no_credential_until = 0.0
        self._busy_until = dict.fromkeys(OPERATIONS, 0.0)
        self._limited = dict.fromkeys(OPERATIONS, False)
        self._down_until = 0.0
        self._down_in_a_row = 0
        self._answered = False  # the first answer from the index is logged, once
        self._reannounce = REANNOUNCE_SECONDS
        self._full_announce_at: float | None = None
        self.routes: Counter[tuple[str, str]] = Counter()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _client(self) -> httpx.Client:
        """The index's own HTTP client (never the platform's: that one carries the API
        token, which the index must not see)."""
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    timeout=TIMEOUT, transport=self._transport,
                    headers={"User-Agent": f"peermark-agent/{__version__}"})
            return self._http

    def __enter__(self) -> IndexClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- the three calls ---------------------------------------------------------------

    def announce(self, *, port: int, holdings: list[dict[str, str]], replace: bool,
                 host: str = "") -> dict[str, Any]:
        """Say where this device listens and what it holds (``replace``: only this).
        More holdings than one request may carry go in batches, the first replacing."""
        batches = [holdings[at:at + MAX_HOLDINGS]
                   for at in range(0, len(holdings), MAX_HOLDINGS)] or [[]]
        answer: dict[str, Any] = {}
        for number, batch in enumerate(batches):
            answer = self._announce_batch(port=port, host=host, holdings=batch,
                                          replace=replace and number == 0)
        if replace:
            self._full_announce_at = self._clock()
        return answer

    def full_announce_due(self) -> bool:
        """Whether to announce everything again (``replace``) rather than heartbeat: the
        index forgets holdings nobody announced for a while (hours), and a heartbeat
        keeps only the peer alive. Due too while no full announce has succeeded."""
        done = self._full_announce_at
        return done is None or self._clock() - done >= self._reannounce

    def _announce_batch(self, *, port: int, host: str, holdings: list[dict[str, str]],
                        replace: bool) -> dict[str, Any]:
        try:
            body = self._via_index("announce", "POST", "/index/v1/announce", json={
                "port": port, "host": host, "version": __version__, "replace": replace,
                "holdings": holdings})
            if not isinstance(body, dict):
                raise self._broken("announce", "an announce answer that is not an object")
        except _UsePlatformError:
            self.routes["announce", "platform"] += 1
            return self._platform.announce(device_id=self._device, port=port,
                                           holdings=holdings, replace=replace, host=host)
        self.routes["announce", "index"] += 1
        return body

    def heartbeat(self) -> dict[str, Any] | None:
        """Say this device is still serving; None when the index asked to wait (the
        beat is skipped: the next one comes soon enough). Raises ``PlatformError``
        ``not_announced`` when the index or the platform no longer knows this device:
        announce again, with ``replace``."""
        try:
            body = self._via_index("heartbeat", "POST", "/index/v1/heartbeat")
        except _IndexBusyError as busy:
            if not busy.limited:
                # The index's Redis is away: the platform keeps this device live in its
                # database meanwhile (its sources would otherwise lose it after the
                # peer timeout).
                self.routes["heartbeat", "platform"] += 1
                return self._platform.heartbeat(device_id=self._device)
            self.routes["heartbeat", "skipped"] += 1
            return None
        except _UsePlatformError:
            self.routes["heartbeat", "platform"] += 1
            return self._platform.heartbeat(device_id=self._device)
        self.routes["heartbeat", "index"] += 1
        return body if isinstance(body, dict) else {}

    def sources(self, work_id: str) -> dict[str, Any]:
        """A work's live sources and web seeds in the shape ``PlatformClient.sources``
        gives them (``results`` of peer_id, url, bitfield, have, last_seen_at), so the
        code downstream is the same whichever path answered."""
        try:
            body = self._via_index("sources", "GET",
                                   f"/index/v1/works/{quote(work_id, safe='')}/sources",
                                   params={"n": SOURCES_WANTED})
            converted = _as_platform_sources(body)
            if converted is None:
                raise self._broken("sources", "a sources answer of the wrong shape")
        except _UsePlatformError:
            self.routes["sources", "platform"] += 1
            return self._platform.sources(work_id)
        self.routes["sources", "index"] += 1
        return converted

    # --- the fast path -----------------------------------------------------------------

    def _via_index(self, operation: str, method: str, path: str, *,
                   json: Any = None, params: dict[str, Any] | None = None) -> Any:
        """The index's JSON answer; ``_UsePlatformError`` (``_IndexBusyError`` if the
        index asked to wait) when the platform must answer instead; ``PlatformError``
        for ``not_announced``, which the caller handles by announcing again."""
        now = self._clock()
        if now < self._busy_until[operation]:
            raise _IndexBusyError(operation, limited=self._limited[operation])
        if now < self._down_until:
            raise _UsePlatformError("the index is paused after failing")
        credential = self._usable_credential()
        http = self._client()
        for attempt in (1, 2):
            try:
                response = http.request(
                    method, credential.index_url + path, json=json, params=params,
                    headers={"Authorization": f"Bearer {credential.token}"})
            except httpx.TransportError as exc:
                raise self._broken(operation, f"unreachable ({exc})") from exc
            if response.status_code < 400:
                try:
                    body = response.json()
                except ValueError:
                    raise self._broken(operation, "an answer that is not JSON") from None
                self._down_in_a_row = 0
                if not self._answered:
                    self._answered = True
                    log.info("the index fast path answers (%s)", credential.index_url)
                return body
            status, code, message, fields = _error_body(response)
            if status == 401 and code in ("credential_expired", "unauthenticated"):
                if attempt == 1:
                    credential = self._usable_credential(refused=credential)
                    continue
                # A fresh credential refused too: the index and platform disagree (keys,
                # clocks). The platform answers until the next credential is asked for.
                self._forget_credential(REFUSED_PAUSE_SECONDS, f"{code} for a fresh one")
                raise _UsePlatformError(code)
            if code == "credential_revoked":
                self._forget_credential(REVOKED_PAUSE_SECONDS, "revoked")
                raise _UsePlatformError(code)
            retry_after = _retry_after(response, self._clock())
            if status == 429 or (status == 503 and retry_after is not None):
                pause = self._pause(DOWN_PAUSE_SECONDS if retry_after is None else retry_after)
                self._busy_until[operation] = self._clock() + pause
                self._limited[operation] = status == 429
                log.info("the index asks to wait (%s): %s for %.0f s", code,
                         "heartbeats skipped" if operation == "heartbeat" and status == 429
                         else f"{operation} by the platform", pause)
                raise _IndexBusyError(code, limited=status == 429)
            if status == 409 and code == "not_announced":
                raise PlatformError(status, code, message, fields)
            if status >= 500:
                raise self._broken(operation, f"HTTP {status} {code}")
            # Any other refusal (unknown_work, invalid, too_large, a proxy's 404): the
            # platform's verdict stands, in its own words.
            log.info("the index refused the %s (HTTP %s %s: %s); the platform answers it",
                     operation, status, code, message)
            raise _UsePlatformError(code)
        raise AssertionError("unreachable")  # pragma: no cover

    def _broken(self, operation: str, reason: str) -> _UsePlatformError:
        """Pause the fast path after the index failed (longer each time in a row)."""
        self._down_in_a_row += 1
        pause = self._pause(DOWN_PAUSE_SECONDS * 2 ** min(self._down_in_a_row - 1, 10))
        self._down_until = self._clock() + pause
        log.info("the index failed (%s: %s); the platform answers for %.0f s",
                 operation, reason, pause)
        return _UsePlatformError(reason)

    def _pause(self, seconds: float) -> float:
        return min(max(seconds, 0.0), MAX_PAUSE_SECONDS) * (1.0 + JITTER * self._rng())

    # --- the credential ----------------------------------------------------------------

    def _usable_credential(self, *, refused: IndexCredential | None = None) -> IndexCredential:
        """The credential to use now: the held one until half its life, then a fresh one
        (the held one still serves if the platform cannot give one). ``refused``: the
        index refused this one as expired, so only a fresh one will do."""
        with self._lock:
            now = self._clock()
            if not self._file_read:
                self._file_read = True
                self._credential = self._credential or self._load_credential(now)
            held = self._credential
            if held is not None and held is refused:
                held = self._credential = None
                self._drop_saved_credential()
            if held is not None and now < held.refresh_at:
                return held
            if now >= self._no_credential_until:
                try:
                    fresh = self._obtain(now)
                except PlatformUnreachableError as exc:
                    self._no_credential_until = now + self._pause(DOWN_PAUSE_SECONDS)
                    if held is None or now >= held.expires_at:
                        log.info("no index credential (the platform is unreachable: %s): "
                                 "the platform's API answers", exc)
                except PlatformError as exc:
                    self._no_credential_until = now + self._refused_pause(exc)
                    log.info("no index credential (%s): the platform's API answers", exc.code)
                else:
                    self._credential = fresh
                    self._save_credential(fresh, now)
                    return fresh
            if held is not None and now < held.expires_at:
                return held
            self._credential = None
            raise _UsePlatformError("no index credential")

    def _refused_pause(self, exc: PlatformError) -> float:
        if exc.retry_after is not None:
            return self._pause(exc.retry_after)
        return REFUSED_PAUSE_SECONDS

    def _obtain(self, now: float) -> IndexCredential:
        body, date = self._platform.index_credential(device_id=self._device)
        token, index_url = body.get("token"), body.get("index_url")
        try:
            expires = datetime.fromisoformat(str(body.get("expires_at")))
            if expires.tzinfo is None:
                raise ValueError("no time zone")
        except ValueError:
            raise _bad_credential("an unreadable expiry") from None
        if not isinstance(token, str) or not _usable_token(token):
            raise _bad_credential("no usable token")
        if not isinstance(index_url, str) or not _http_url(index_url):
            raise _bad_credential("no http(s) index URL")
        reannounce = body.get("reannounce")
        if isinstance(reannounce, int) and 60 <= reannounce <= 86_400:
            self._reannounce = float(reannounce)
        issued = _http_date(date)
        life = expires.timestamp() - (issued if issued is not None else now)
        if life <= 2 * EXPIRY_MARGIN_SECONDS:
            raise _bad_credential("a credential that is (nearly) expired")
        return IndexCredential(token=token, index_url=index_url.rstrip("/"),
                               refresh_at=now + life / 2,
                               expires_at=now + life - EXPIRY_MARGIN_SECONDS)

    # --- the credential kept between runs ------------------------------------------------
    # Times are kept as seconds left, read against the wall clock, so that a client on
    # another clock (a test's) reads them right.

    def _load_credential(self, now: float) -> IndexCredential | None:
        path = self._credential_file
        if path is None:
            return None
        try:
            data = json.loads(path.read_bytes())
            token, index_url = data["token"], data["index_url"]
            elapsed = time.time() - float(data["saved_at"])
            refresh_in = float(data["refresh_in"]) - elapsed
            expires_in = float(data["expires_in"]) - elapsed
            usable = (data["device"] == self._device and isinstance(token, str)
                      and _usable_token(token) and isinstance(index_url, str)
                      and _http_url(index_url) and math.isfinite(refresh_in)
                      and 0 < expires_in < 86_400 and elapsed >= 0)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # none kept, or unreadable: the platform gives a fresh one
        if not usable:
            return None
        return IndexCredential(token=token, index_url=index_url,
                               refresh_at=now + refresh_in, expires_at=now + expires_in)

    def _save_credential(self, credential: IndexCredential, now: float) -> None:
        path = self._credential_file
        if path is None:
            return
        data = {"device": self._device, "token": credential.token,
                "index_url": credential.index_url, "saved_at": time.time(),
                "refresh_in": credential.refresh_at - now,
                "expires_in": credential.expires_at - now}
        try:
            write_private(path, json.dumps(data).encode())
        except OSError as exc:
            log.info("the index credential is not kept for the next run: %s", exc)

    def _drop_saved_credential(self) -> None:
        if self._credential_file is not None:
            with contextlib.suppress(OSError):
                self._credential_file.unlink(missing_ok=True)

    def _forget_credential(self, pause: float, reason: str) -> None:
        with self._lock:
            self._credential = None
            self._drop_saved_credential()
            self._no_credential_until = self._clock() + pause
        log.warning("the index refused this device's credential (%s); the platform's API "
                    "answers for the next %.0f s", reason, pause)


def _usable_token(token: str) -> bool:
    """Sendable as it is in an Authorization header."""
    return bool(token) and token.isascii() and token.isprintable() and " " not in token


def _bad_credential(reason: str) -> PlatformError:
    return PlatformError(201, "bad_response", f"The platform's index credential has {reason}.")


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _http_date(text: str) -> float | None:
    """An HTTP date (``Date``, ``Retry-After``) as unix seconds; None if there is none."""
    if not text:
        return None
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _retry_after(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait, from ``Retry-After`` in seconds or as a date (judged against the
    answer's own ``Date``, so that clock skew does not stretch it)."""
    value = response.headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    until = _http_date(value)
    if until is None:
        return None
    sent = _http_date(response.headers.get("Date", ""))
    return max(0.0, until - (sent if sent is not None else now))


def _error_body(response: httpx.Response) -> tuple[int, str, str, dict[str, list[str]]]:
    """The status, code, message and fields of the platform's one error shape."""
    try:
        error = response.json()["error"]
        fields = error.get("fields") or {}
        return (response.status_code, str(error.get("code", "error")),
                str(error.get("message", "")), fields if isinstance(fields, dict) else {})
    except (ValueError, KeyError, TypeError, AttributeError):
        return (response.status_code, "http_error",
                f"The index answered {response.status_code}.", {})


def _as_platform_sources(body: Any) -> dict[str, Any] | None:
    """The index's sources answer in the platform API's shape; None if malformed. The
    index gives ``last_seen`` in unix seconds, the API ``last_seen_at`` as DRF writes a
    UTC time (ISO 8601, ``Z``)."""
    if not isinstance(body, dict):
        return None
    items, seeds = body.get("sources"), body.get("web_seeds", [])
    if not isinstance(items, list) or not isinstance(seeds, list):
        return None
    results = []
    for item in items:
        try:
            seen = datetime.fromtimestamp(int(item["last_seen"]), tz=UTC)
            results.append({
                "peer_id": str(item["peer_id"]), "url": str(item["url"]),
                "bitfield": str(item["bitfield"]), "have": int(item["have"]),
                "last_seen_at": seen.isoformat().replace("+00:00", "Z"),
            })
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            return None
    return {"results": results, "web_seeds": [str(seed) for seed in seeds]}
