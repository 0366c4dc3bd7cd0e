"""Knobs shared by every sandbox: latency and fault injection, as one ASGI middleware.

A test or benchmark arms a fault (``knobs.add_fault(...)``) and the next matching requests misbehave the way real
services do: a 5xx, a slow answer (the client times out), a connection dropped mid-response, or a request that is
processed and then never answered (the client is killed while waiting, the remote effect already happened).
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

FaultKind = Literal["status", "status_after", "delay", "drop", "hang_before", "hang_after"]


@dataclass
class Fault:
    """One armed fault.

    kind:
      - ``status``: answer ``status`` with a JSON error body, without processing the request;
      - ``status_after``: process the request (the remote effect happens), then answer ``status`` instead of the
        app's answer: a gateway or proxy that gives up on an upstream which had already committed (a 502/504 from
        Cloudflare or nginx in front of Discord or Discourse);
      - ``delay``: sleep ``seconds`` and then process normally (longer than the client's timeout = a timeout);
      - ``drop``: process, send the response headers, then cut the connection (the client sees a protocol error);
      - ``hang_before``: never process; hold the connection for ``seconds`` (the client is expected to be killed);
      - ``hang_after``: process (the remote effect happens), then hold the response for ``seconds``.
    ``times`` is how many matching requests it affects (-1: forever).
    """

    path: str
    kind: FaultKind = "status"
    method: str | None = None
    status: int = 500
    seconds: float = 30.0
    times: int = 1
    hits: int = 0
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self._pattern.search(path) is not None


class Knobs:
    """Latency and faults for one sandbox. Thread-safe: tests arm faults from the test thread."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        #: Set whenever a ``hang_*`` fault has taken a request (tests wait on it before killing the client).
        self.hung = threading.Event()

    def add_fault(self, path: str, kind: FaultKind = "status", **kwargs: Any) -> Fault:
        fault = Fault(path=path, kind=kind, **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path) and (fault.times < 0 or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None


class FaultInjector:
    """ASGI middleware applying a :class:`Knobs` to every HTTP request of the wrapped app."""

    def __init__(self, app: ASGIApp, knobs: Knobs) -> None:
        self.app = app
        self.knobs = knobs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.knobs.latency:
            await asyncio.sleep(self.knobs.latency)
        fault = self.knobs.take(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind == "status":
            await _error(send, fault.status)
            return
        if fault.kind == "status_after":

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _error(send, fault.status)
            return
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, send)
            return
        if fault.kind == "hang_before":
            self.knobs.hung.set()
            await asyncio.sleep(fault.seconds)
            return
        if fault.kind == "hang_after":
            buffered: list[Message] = []

            async def hold(message: Message) -> None:
                buffered.append(message)

            await self.app(scope, receive, hold)
            self.knobs.hung.set()
            await asyncio.sleep(fault.seconds)
            for message in buffered:
                await send(message)
            return
        # drop: let the app answer the headers, then fail before the body so the server cuts the connection.
        started = False

        async def cut(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                await send(message)
                return
            raise ConnectionAbortedError("sandbox: connection dropped by fault injection")

        await self.app(scope, receive, cut)
        if not started:  # pragma: no cover - every sandbox route answers
            raise ConnectionAbortedError("sandbox: connection dropped by fault injection")


async def _error(send: Send, status: int) -> None:
    body = b'{"errors":["injected fault"],"error_type":"sandbox_fault"}'
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
