"""The platform's REST API as written-down answers, for the agent's command-line tests.

No Django, no server: ``PlatformClient`` is given an httpx mock transport that answers
each ``(method, path)`` with the JSON a test put there, in the shapes of the platform's
serializers (exchange/*/serializers.py). A path nobody set answers 404 in the platform's
error shape; an answer may also be a function of the request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import AgentConfig, AgentHome
from agent.platform import PlatformClient

URL = "http://platform.test"
Answer = Any | Callable[[httpx.Request], Any]


class FakePlatform:
    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, answer: Answer) -> None:
        self.answers[(method, path)] = answer

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"error": {"code": "not_found",
                                                       "message": "Not found.", "fields": {}}})
        body = answer(request) if callable(answer) else answer
        if isinstance(body, Reply):
            return body.response()
        status = 201 if request.method == "POST" else 200
        return httpx.Response(status, content=json.dumps(body).encode(),
                              headers={"Content-Type": "application/json"})

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make every agent command talk to this fake instead of the network."""
        transport = httpx.MockTransport(self.handle)
        monkeypatch.setattr(
            "agent.context.PlatformClient",
            lambda url, token="": PlatformClient(url, token, transport=transport))


class Reply:
    """An answer with its own status: an error in the platform's shape (``Reply.error``),
    or raw bytes (a module's ``application/wasm``)."""

    def __init__(self, status: int, *, json_body: Any = None, content: bytes | None = None,
                 content_type: str = "application/json") -> None:
        self.status = status
        self.content = content if content is not None else json.dumps(json_body).encode()
        self.content_type = content_type

    @classmethod
    def error(cls, status: int, code: str, message: str = "") -> Reply:
        return cls(status, json_body={"error": {"code": code, "message": message or code,
                                                "fields": {}}})

    @classmethod
    def raw(cls, content: bytes, content_type: str = "application/octet-stream") -> Reply:
        return cls(200, content=content, content_type=content_type)

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, content=self.content,
                              headers={"Content-Type": self.content_type})


def page(results: list[dict[str, Any]], *, next_url: str | None = None) -> dict[str, Any]:
    """One page of a list endpoint (exchange/core/pagination.py)."""
    return {"count": len(results), "next": next_url, "previous": None, "results": results}


def logged_in_home(folder: Path) -> AgentHome:
    """An agent folder logged in as bob (no device keys: commands that need none)."""
    home = AgentHome(folder)
    home.save_config(AgentConfig(platform_url=URL, token="bob-token", username="bob",
                                 device_name="bob-laptop"))
    return home
