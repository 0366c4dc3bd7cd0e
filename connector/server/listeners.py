"""The daemon's listeners: the public one (``[server] listen``) and, when set, the operator's (``operator_listen``).

One uvicorn server serves both sockets; :class:`ByListener` hands each request to the app of the socket it came in
on (by local port, so the two listeners must differ in port). Connections are bounded however slow the sender:

- a request head must be complete within ``read_timeout_seconds`` of the connection being opened, or of the previous
  answer on it (:class:`HeadTimeoutH11`; uvicorn itself has no such deadline, so a client sending a byte of head now
  and then would hold its connection for ever); the body has the same deadline of its own
  (:mod:`connector.server.bodies`);
- idle keep-alive connections are closed after ``KEEP_ALIVE_SECONDS``;
- at most ``max_connections`` are served at once (uvicorn's ``limit_concurrency``: past it, 503 at once);
- heads are at most h11's 16 KiB (uvicorn's ``h11_max_incomplete_event_size`` default; 400 past it).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds an idle keep-alive connection stays open after an answer (uvicorn's default).
KEEP_ALIVE_SECONDS = 5


class HeadTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head; a head not complete by then closes the connection.

    The deadline is armed when the connection opens and after each answer; a new request (a new cycle) disarms it.
    """

    head_timeout: float = 15.0
    _head_timer: asyncio.TimerHandle | None = None
    _armed_for: object = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and self.cycle is not self._armed_for:
            self._disarm_head_timer()  # a new request's head is in

    def on_response_complete(self) -> None:
        finished = self.cycle
        super().on_response_complete()
        if self.cycle is finished and not self.transport.is_closing():
            self._arm_head_timer()  # no pipelined request started: the next head has its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._armed_for = self.cycle
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is self._armed_for and not self.transport.is_closing():
            self.transport.close()


def h11_with_head_timeout(seconds: float) -> type[HeadTimeoutH11]:
    """The protocol class uvicorn is given (``http=``), with the deadline set."""
    return type("HeadTimeoutH11", (HeadTimeoutH11,), {"head_timeout": seconds})


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when the host has a colon), ready for uvicorn to listen on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class ByListener:
    """An ASGI app that hands each request to the app of the listener it came in on (by local port)."""

    def __init__(self, default: ASGIApp, by_port: Mapping[int, ASGIApp]) -> None:
        self.default = default
        self.by_port = dict(by_port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        app = self.by_port.get(server[1], self.default) if server else self.default
        await app(scope, receive, send)
