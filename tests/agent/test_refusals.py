"""Hostile bytes at the agent's HTTP server: a 400 and one log line each, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from aiohttp import web

from agent.server import REFUSALS_LOG, OneLineRefusals, start_server
from agent.wire import BodyError, parse_json_body

GARBAGE = {
    # fixed noise, so that every run sends the same bytes
    "random-bytes": random.Random(7).randbytes(64).replace(b"\r", b"").replace(b"\n", b"")
    + b"\r\n\r\n",
    "tls-client-hello": bytes.fromhex("160301020001000001fc0303") + bytes(64),
    "smuggling": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "bad-method": b"G\x00T / HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_garbage_is_refused_with_a_400_and_one_line(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> bytes:
        app = web.Application()
        server = await start_server(app)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(GARBAGE[kind])
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(100), 10)
            writer.close()
            return answer
        finally:
            await server.stop()

    with caplog.at_level(logging.DEBUG, logger=REFUSALS_LOG.name):
        answer = asyncio.run(scenario())
    assert answer.startswith(b"HTTP/1.")
    assert b" 400 " in answer.split(b"\r\n")[0]
    refused = [r for r in caplog.records if r.name == REFUSALS_LOG.name]
    assert len(refused) == 1
    assert refused[0].exc_info is None
    assert "refused" in refused[0].getMessage()
    assert "Traceback" not in caplog.text


def test_refusals_are_rate_limited_and_the_rest_counted() -> None:
    now = [0.0]
    refusals = OneLineRefusals(per_minute=3, clock=lambda: now[0])
    from aiohttp.http import HttpProcessingError

    def record() -> logging.LogRecord:
        try:
            raise HttpProcessingError(code=400, message="garbage")
        except HttpProcessingError:
            import sys

            return logging.LogRecord("x", logging.ERROR, __file__, 1, "Error handling request",
                                     None, sys.exc_info())

    assert [refusals.filter(record()) for _ in range(5)] == [True, True, True, False, False]
    now[0] = 61.0
    line = record()
    assert refusals.filter(line)
    assert "2 more refused since the last line" in line.getMessage()


def test_a_bug_keeps_its_traceback() -> None:
    refusals = OneLineRefusals()
    try:
        raise KeyError("a bug")
    except KeyError:
        import sys

        bug = logging.LogRecord("x", logging.ERROR, __file__, 1, "Error handling request",
                                None, sys.exc_info())
    assert refusals.filter(bug)
    assert bug.exc_info is not None


def test_json_bodies_are_checked_for_size_and_depth() -> None:
    assert parse_json_body(b'{"a": [[{"b": "]]]]]]]]]]]]]]]]]]]]"}]]}', max_depth=4) == {
        "a": [[{"b": "]]]]]]]]]]]]]]]]]]]]"}]]
    }  # brackets inside strings do not count
    assert parse_json_body(b"[" * 16 + b"]" * 16) == [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]
    with pytest.raises(BodyError, match="deeper than 16"):
        parse_json_body(b"[" * 17 + b"]" * 17)
    with pytest.raises(BodyError, match="not JSON"):  # past the recursion limit
        parse_json_body(b"[" * 30_000 + b"]" * 30_000)
    with pytest.raises(BodyError, match="not JSON"):
        # one unterminated string of escaped quotes: a scan that restarts at every quote
        # would take quadratic time over it; the parser does not
        parse_json_body(b'"' + b'\\"' * 30_000)
    with pytest.raises(BodyError, match="larger than"):
        parse_json_body(b" " * 70_000)
    with pytest.raises(BodyError, match="not JSON"):
        parse_json_body(b'{"a": ')
    with pytest.raises(BodyError, match="not JSON"):
        parse_json_body(b"\xff\xfe")


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


def test_connections_that_send_no_request_head_are_closed_after_the_deadline() -> None:
    async def scenario() -> tuple[int, bytes]:
        app = web.Application()
        app.router.add_get("/", _hello)
        server = await start_server(app, head_timeout=0.5)
        try:
            idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(100)]
            slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", server.port)
            slow_writer.write(b"GET / HTTP/1.1\r\nHost: a\r\n")  # and never the blank line
            await slow_writer.drain()
            # generous: a loaded machine may be slow to run the timers
            closed = 0
            for reader, _writer in [*idle, (slow_reader, slow_writer)]:
                if await asyncio.wait_for(reader.read(), 20) == b"":
                    closed += 1
            # a well-behaved client is still served
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            answer = await asyncio.wait_for(reader.read(), 20)
            for _reader, other in [*idle, (slow_reader, slow_writer), (reader, writer)]:
                other.close()
            return closed, answer
        finally:
            await server.stop()

    closed, answer = asyncio.run(scenario())
    assert closed == 101
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"hello")


def test_one_address_cannot_hold_more_than_its_share_of_connections() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        app = web.Application()
        app.router.add_get("/", _hello)
        server = await start_server(app, max_connections_per_address=3)
        try:
            held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            over = await asyncio.wait_for(reader.read(), 20)  # closed at once
            writer.close()
            for _reader, other in held:
                other.close()
            again = b""
            for _ in range(100):  # once the server has seen them go (a loaded machine: slow)
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                again = await asyncio.wait_for(reader.read(), 20)
                writer.close()
                if again:
                    break
                await asyncio.sleep(0.2)
            return over, again
        finally:
            await server.stop()

    over, again = asyncio.run(scenario())
    assert over == b""
    assert again.startswith(b"HTTP/1.1 200")
