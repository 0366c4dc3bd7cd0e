"""Request bodies read as a stream, bounded while they are read: in bytes and in time.

``await request.body()`` buffers the whole body before anyone looks at it (400 MiB sent to a webhook once took the
daemon to 922 MB). :func:`read_body` reads ``request.stream()`` chunk by chunk instead and stops as soon as the
body is larger than the limit, whether the sender declared a ``Content-Length`` or streams it chunked, and as soon
as the whole body has taken longer than the timeout (a slow sender cannot hold a connection for ever).

The caller maps the typed errors to its answer; each carries the status that fits (:attr:`BodyError.status`)::

    try:
        body = await read_body(request, limit=65536, timeout=10.0)
    except BodyError as error:
        return JSONResponse({"error": str(error)}, status_code=error.status, headers={"Connection": "close"})

A refusal leaves the rest of the body unread, so the server closes the connection after answering.
"""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request


class BodyError(Exception):
    """The body could not be read within its bounds; :attr:`status` is the HTTP status that says why."""

    status = 400


class BodyTooLarge(BodyError):
    """Larger than the limit: by its declared ``Content-Length``, or as read."""

    status = 413


class BodyTimeout(BodyError):
    """The sender took longer than the timeout to send the whole body."""

    status = 408


class BodyIncomplete(BodyError):
    """The sender went away (or sent a malformed length) before the body was complete."""

    status = 400


def declared_length(request: Request) -> int | None:
    """The ``Content-Length`` the sender declared, or None when absent (chunked); malformed is refused."""
    value = request.headers.get("content-length")
    if value is None:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit():
        raise BodyIncomplete("malformed Content-Length")
    return int(value)


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The raw body, at most ``limit`` bytes, read within ``timeout`` seconds in all.

    Raises :class:`BodyTooLarge` (413) as soon as the declared length or the bytes read pass the limit,
    :class:`BodyTimeout` (408) when the whole body is not in after ``timeout`` seconds, :class:`BodyIncomplete`
    (400) when the client disconnects first. At most ``limit`` bytes plus one chunk are ever held.
    """
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body larger than {limit} bytes")
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, limit)
    except TimeoutError:
        raise BodyTimeout(f"body not received within {timeout:g} seconds") from None
    except ClientDisconnect:
        raise BodyIncomplete("the client disconnected before the body was complete") from None


async def _read(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
