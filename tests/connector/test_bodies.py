"""Request bodies bounded while they are read (issue 12, item 3): in bytes, chunked or not, and in time."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from connector.server.bodies import BodyIncomplete, BodyTimeout, BodyTooLarge, read_body


def request(chunks, headers=(), delay=0.0, disconnect=False):
    """A request whose body arrives in ``chunks``; records how many chunks were pulled."""
    pulled = []

    async def receive():
        if delay:
            await asyncio.sleep(delay)
        if len(pulled) < len(chunks):
            pulled.append(1)
            return {"type": "http.request", "body": chunks[len(pulled) - 1], "more_body": True}
        if disconnect:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }
    return Request(scope, receive), pulled


def test_a_body_within_the_limit_is_read_whole():
    req, _ = request([b"abc", b"def"])
    assert asyncio.run(read_body(req, limit=6, timeout=5)) == b"abcdef"


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit():
    req, pulled = request([b"x" * 1000] * 1000)  # no Content-Length: chunked
    with pytest.raises(BodyTooLarge) as error:
        asyncio.run(read_body(req, limit=4096, timeout=5))
    assert error.value.status == 413
    assert len(pulled) == 5  # stopped at the chunk that passed the limit, not at the end


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    req, pulled = request([b"x" * 10], headers=[("Content-Length", "999999")])
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(req, limit=100, timeout=5))
    assert pulled == []


@pytest.mark.parametrize("value", ["-1", "12a", "١٢", " "])
def test_a_malformed_length_is_a_bad_request(value):
    req, _ = request([b"x"], headers=[("Content-Length", value)])
    with pytest.raises(BodyIncomplete) as error:
        asyncio.run(read_body(req, limit=100, timeout=5))
    assert error.value.status == 400


def test_a_slow_sender_times_out():
    req, _ = request([b"x"] * 100, delay=0.05)
    with pytest.raises(BodyTimeout) as error:
        asyncio.run(read_body(req, limit=10_000, timeout=0.3))
    assert error.value.status == 408


def test_a_client_gone_before_the_end_is_a_bad_request():
    req, _ = request([b"x"], disconnect=True)
    with pytest.raises(BodyIncomplete):
        asyncio.run(read_body(req, limit=100, timeout=5))
