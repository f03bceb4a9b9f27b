"""The agent's client for the platform's public REST API (exactly what a third party
could use): httpx, synchronous, a timeout on every call, errors turned into one
exception that carries the platform's error code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from agent import __version__

TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class PlatformError(Exception):
    """The platform answered with an error body."""

    def __init__(self, status: int, code: str, message: str,
                 fields: dict[str, list[str]] | None = None, *,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.retry_after = retry_after  # seconds, from a 429's or 503's Retry-After

    def __str__(self) -> str:
        detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in self.fields.items())
        return f"{self.message}{f' ({detail})' if detail else ''}"


class PlatformUnreachableError(Exception):
    """No answer from the platform (down, or no network): fall back where we can."""


class PlatformClient:
    def __init__(self, base_url: str, token: str = "", *,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"User-Agent": f"peermark-agent/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                    timeout=TIMEOUT, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- plumbing ----------------------------------------------------------------------

    def _response(self, method: str, path: str, *, json: Any = None,
                  params: dict[str, Any] | None = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = self._client.request(method, path, json=json, params=params,
                                            headers=headers)
        except httpx.TransportError as exc:
            raise PlatformUnreachableError(f"cannot reach the platform: {exc}") from exc
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def _request(self, method: str, path: str, *, json: Any = None,
                 params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> Any:
        response = self._response(method, path, json=json, params=params, headers=headers)
        if response.status_code == 204 or not response.content:
            return None
        return _json_of(response)

    def _paged(self, path: str, params: dict[str, Any] | None = None) -> Iterator[Any]:
        page = 1
        while True:
            body = self._request("GET", path, params={**(params or {}), "page": page})
            yield from body["results"]
            if not body.get("next"):
                return
            page += 1

    # --- accounts -------------------------------------------------------------------------

    def token_create(self, *, username: str, password: str, name: str) -> str:
        body = self._request("POST", "/api/v1/auth/tokens/",
                             json={"username": username, "password": password, "name": name})
        return str(body["token"])

    def me(self) -> dict[str, Any]:
        return dict(self._request("GET", "/api/v1/me/"))

    def device_register(self, *, name: str, signing_key: str, kem_key: str) -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/devices/", json={
            "name": name, "signing_key": signing_key, "kem_key": kem_key}))

    # --- catalogue ------------------------------------------------------------------------

    def works_search(self, query: str = "", *, page_size: int = 20) -> list[dict[str, Any]]:
        body = self._request("GET", "/api/v1/works/",
                             params={"search": query, "page_size": page_size})
        return list(body["results"])

    def works_all(self) -> Iterator[dict[str, Any]]:
        return self._paged("/api/v1/works/", {"page_size": 100})

    def work(self, work_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/api/v1/works/{work_id}/"))

    def manifest(self, work_id: str) -> dict[str, Any]:
        return dict(self._request("GET", f"/api/v1/works/{work_id}/manifest/"))

    def sources(self, work_id: str) -> dict[str, Any]:
        """All live sources (every page) and the web seeds."""
        body = self._request("GET", f"/api/v1/works/{work_id}/sources/",
                             params={"page_size": 100})
        results = list(body["results"])
        page = 2
        while body.get("next") and page <= 20:
            body = self._request("GET", f"/api/v1/works/{work_id}/sources/",
                                 params={"page_size": 100, "page": page})
            results += body["results"]
            page += 1
        return {"results": results, "web_seeds": list(body.get("web_seeds", []))}

    # --- buying -----------------------------------------------------------------------------

    def purchase(self, *, work_id: str, device_id: str, idempotency_key: str,
                 expected_price_minor: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"work": work_id, "device": device_id}
        if expected_price_minor is not None:
            body["expected_price_minor"] = expected_price_minor
        return dict(self._request("POST", "/api/v1/purchases/", json=body,
                                  headers={"Idempotency-Key": idempotency_key}))

    def licences(self, *, work_id: str | None = None) -> list[dict[str, Any]]:
        """Your licences (every page); ``work_id``: only that work's."""
        return list(self._paged("/api/v1/licences/",
                                {"work": work_id} if work_id is not None else None))

    # --- one library on every device (part: library) -----------------------------------

    def library(self) -> Iterator[dict[str, Any]]:
        """Your works, each with its licences per device and the work's device limit."""
        return self._paged("/api/v1/library/", {"page_size": 100})

    def licence_reissue(self, *, licence_id: str, device_id: str,
                        idempotency_key: str) -> dict[str, Any]:
        """A licence for ``device_id`` re-issued from one of yours (no payment)."""
        return dict(self._request("POST", f"/api/v1/licences/{licence_id}/devices/",
                                  json={"device": device_id},
                                  headers={"Idempotency-Key": idempotency_key}))

    def licence_move(self, *, licence_id: str, to_device_id: str,
                     idempotency_key: str) -> dict[str, Any]:
        """Revoke ``licence_id`` and get one for ``to_device_id`` instead."""
        return dict(self._request("POST", f"/api/v1/licences/{licence_id}/move/",
                                  json={"to_device": to_device_id},
                                  headers={"Idempotency-Key": idempotency_key}))

    def licence_table(self, licence_id: str, *, max_bytes: int) -> bytes:
        """A sealed licence's encrypted personal table (the caller checks it against the
        licence's hash). Read as a stream and refused past ``max_bytes``, so a platform
        or proxy sending too much never fills the agent's memory."""
        try:
            with self._client.stream("GET", f"/api/v1/licences/{licence_id}/table/") as response:
                if response.status_code != 200:
                    response.read()
                    raise _error_from(response)
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise PlatformError(200, "table_too_large",
                                            f"The platform sent a table larger than the "
                                            f"{max_bytes} bytes the licence names.")
        except httpx.TransportError as exc:
            raise PlatformUnreachableError(f"cannot reach the platform: {exc}") from exc
        return bytes(data)

    def wallet(self) -> dict[str, Any]:
        return dict(self._request("GET", "/api/v1/wallet/"))

    def topups(self) -> Iterator[dict[str, Any]]:
        """Your top-ups in every state, newest first (every page)."""
        return self._paged("/api/v1/wallet/topups/", {"page_size": 100})

    def topup(self, *, amount_minor: int, currency: str) -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/wallet/topups/",
                                  json={"amount_minor": amount_minor, "currency": currency},
                                  headers={"Idempotency-Key": str(uuid.uuid4())}))

    # --- follows and notifications (part: community) -----------------------------------

    def follows(self) -> Iterator[dict[str, Any]]:
        """The rights holders you follow (every page), newest first."""
        return self._paged("/api/v1/follows/", {"page_size": 100})

    def follow(self, username: str, *, idempotency_key: str) -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/follows/", json={"username": username},
                                  headers={"Idempotency-Key": idempotency_key}))

    def unfollow(self, username: str) -> None:
        self._request("DELETE", f"/api/v1/follows/{quote(username, safe='')}/")

    def notifications_latest(self, *, count: int) -> list[dict[str, Any]]:
        """The agent's notifications, unread first, then newest."""
        body = self._request("GET", "/api/v1/notifications/",
                             params={"channel": "agent", "page_size": count})
        return list(body["results"])

    def notifications_unread(self) -> int:
        body = self._request("GET", "/api/v1/notifications/unread-count/",
                             params={"channel": "agent"})
        return int(body["unread"])

    # --- private messages (part: messaging) ---------------------------------------------

    def conversations(self) -> Iterator[dict[str, Any]]:
        """Your conversations, latest first, with their unread counts (every page)."""
        return self._paged("/api/v1/messages/conversations/", {"page_size": 100})

    def conversation(self, conversation_id: str, *, page_size: int = 100) -> dict[str, Any]:
        """A thread's latest messages, newest first; reading it marks them read."""
        return dict(self._request("GET", f"/api/v1/messages/conversations/{conversation_id}/",
                                  params={"page_size": page_size}))

    def message_send(self, *, to: str, body: str, subject: str = "",
                     idempotency_key: str) -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/messages/",
                                  json={"to": to, "body": body, "subject": subject},
                                  headers={"Idempotency-Key": idempotency_key}))

    # --- end-to-end encrypted messages (part: direct messages) -------------------------------

    def member_devices(self, username: str) -> dict[str, Any]:
        """A member's devices (keys, and the endpoint of each live one) to seal to."""
        return dict(self._request("GET", f"/api/v1/members/{quote(username, safe='')}/devices/"))

    def blocks(self) -> Iterator[dict[str, Any]]:
        """The members you have blocked (every page)."""
        return self._paged("/api/v1/blocks/", {"page_size": 100})

    def relayed_send(self, *, document: str, idempotency_key: str) -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/messages/relayed/",
                                  json={"document": document},
                                  headers={"Idempotency-Key": idempotency_key}))

    def relayed(self, *, device_id: str) -> Iterator[dict[str, Any]]:
        """Sealed messages the platform holds for this device, oldest first."""
        return self._paged("/api/v1/messages/relayed/", {"page_size": 100, "device": device_id})

    def relayed_ack(self, relayed_id: str) -> None:
        self._request("DELETE", f"/api/v1/messages/relayed/{quote(relayed_id, safe='')}/")

    # --- trust --------------------------------------------------------------------------------

    def jwks(self) -> bytes:
        try:
            response = self._client.get("/.well-known/jwks.json")
        except httpx.TransportError as exc:
            raise PlatformUnreachableError(f"cannot reach the platform: {exc}") from exc
        if response.status_code != 200:
            raise _error_from(response)
        return response.content

    def revocations(self) -> str:
        return str(self._request("GET", "/api/v1/revocations/")["token"])

    def report_equivocation(self, *, first: str, second: str) -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/revocations/equivocations/",
                                  json={"first": first, "second": second}))

    # --- serving ---------------------------------------------------------------------------

    def announce(self, *, device_id: str, port: int, holdings: list[dict[str, str]],
                 replace: bool, host: str = "") -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/peers/announce/", json={
            "device": device_id, "host": host, "port": port, "holdings": holdings,
            "replace": replace, "version": __version__}))

    def heartbeat(self, *, device_id: str) -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/peers/heartbeat/",
                                  json={"device": device_id}))

    def index_credential(self, *, device_id: str) -> tuple[dict[str, Any], str]:
        """A short-lived credential for the peer index's fast path (agent/index_client.py)
        and the answer's ``Date`` header, so that the credential's life is timed on the
        platform's clock: a skewed local clock then neither wastes nor overstays it.
        A platform that runs no index answers 404 ``index_not_offered``."""
        response = self._response("POST", "/api/v1/peers/index-credential/",
                                  json={"device": device_id})
        body = _json_of(response)
        if not isinstance(body, dict):
            raise PlatformError(response.status_code, "bad_response",
                                "The platform's index credential is not a JSON object.")
        return body, response.headers.get("Date", "")

    def orders_submit(self, tokens: list[str]) -> dict[str, Any]:
        return dict(self._request("POST", "/api/v1/metering/orders/",
                                  json={"orders": tokens}))

    def receipt_send(self, *, licence_id: str, receipt: str) -> dict[str, Any]:
        return dict(self._request("POST", f"/api/v1/licences/{licence_id}/receipt/",
                                  json={"receipt": receipt}))

    # --- contributing compute ---------------------------------------------------------------

    def compute_enroll(self, *, device_id: str, runtime: str, cores: int, memory_bytes: int,
                       hours_per_day: int, only_when_idle: bool) -> dict[str, Any]:
        """Opt this device in to contribute (the same call again updates its limits)."""
        return dict(self._request("POST", "/api/v1/compute/contributors/", json={
            "device": device_id, "runtime": runtime, "cores": cores,
            "memory_bytes": memory_bytes, "hours_per_day": hours_per_day,
            "only_when_idle": only_when_idle, "agent_version": __version__}))

    def compute_contributors(self) -> list[dict[str, Any]]:
        """Your devices that contribute, with their standing against the quorum."""
        return list(self._paged("/api/v1/compute/contributors/"))

    def compute_dispatch(self, *, device_id: str, max_units: int,
                         idempotency_key: str) -> dict[str, Any]:
        """Up to ``max_units`` units for this device. Retry a lost answer with the same
        ``idempotency_key``: the platform then answers with the same units again."""
        return dict(self._request("POST", "/api/v1/compute/dispatch/",
                                  json={"device": device_id, "max_units": max_units},
                                  headers={"Idempotency-Key": idempotency_key}))

    def compute_results(self, *, device_id: str,
                        results: list[dict[str, Any]]) -> dict[str, Any]:
        """Signed results in a batch (``assignment``, ``token``, ``output`` in base64);
        sending the same again is answered ``duplicate``, so a lost answer may be retried."""
        return dict(self._request("POST", "/api/v1/compute/results/",
                                  json={"device": device_id, "results": results}))

    def compute_module(self, sha256: str) -> bytes:
        """A job's module, as the platform stores it (the caller checks its hash)."""
        try:
            response = self._client.get(f"/api/v1/compute/modules/{sha256}/")
        except httpx.TransportError as exc:
            raise PlatformUnreachableError(f"cannot reach the platform: {exc}") from exc
        if response.status_code != 200:
            raise _error_from(response)
        return response.content


def _json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise PlatformError(response.status_code, "bad_response",
                            "The platform sent something that is not JSON.") from exc


def _error_from(response: httpx.Response) -> PlatformError:
    try:
        error = response.json()["error"]
        retry_after = response.headers.get("Retry-After", "")
        return PlatformError(response.status_code, str(error.get("code", "error")),
                             str(error.get("message", "")), error.get("fields") or {},
                             retry_after=int(retry_after) if retry_after.isdigit() else None)
    except (ValueError, KeyError, TypeError, AttributeError):
        return PlatformError(response.status_code, "http_error",
                             f"The platform answered {response.status_code}.")
