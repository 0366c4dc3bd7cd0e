"""Pacing for one remote: the :class:`Budget` protocol the HTTP client asks before each request, and
:class:`RequestBudget`, a sliding window of N requests a minute (Discourse's limiter, Sellix's)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import httpx


class WaitTooLong(Exception):
    """Raised by a :class:`Budget`'s ``acquire`` when the wait a limit needs is longer than ``max_wait``."""

    def __init__(self, seconds: float, scope: str = "") -> None:
        super().__init__(f"the rate limit needs a wait of {seconds:.0f} s")
        self.seconds, self.scope = seconds, scope


class Budget(Protocol):
    """Pacing for one remote: asked before each request, told about each answer. See :class:`RequestBudget`.

    ``acquire`` blocks until the request may be sent, but raises :class:`WaitTooLong` instead of blocking longer than
    ``max_wait`` for a limit the server set (``None``: no cap). ``penalise`` is told each 429's wait (with the method
    and path that drew it), including waits longer than the cap, so the limit is remembered without a resend.
    """

    def acquire(self, method: str, path: str, max_wait: float | None = None) -> None: ...

    def observe(self, method: str, path: str, response: httpx.Response) -> None: ...

    def penalise(
        self, seconds: float, response: httpx.Response | None = None, method: str = "", path: str = ""
    ) -> None: ...


class RequestBudget:
    """At most ``per_minute`` requests in any 60-second window (the sliding window Discourse's limiter uses).

    ``acquire`` blocks until a slot is free, so the connector stays under the remote's limit instead of bouncing off
    it. Thread-safe. ``sleep`` and ``clock`` are injectable for tests.
    """

    def __init__(
        self,
        per_minute: int,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_minute = per_minute
        self.window = window
        self._clock, self._sleep = clock, sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()
        #: Until when the server said no request may go (after a 429); our own pacing waits are never capped.
        self._blocked_until = 0.0
        self.waited = 0.0

    def acquire(self, method: str = "", path: str = "", max_wait: float | None = None) -> None:
        while True:
            with self._lock:
                now = self._clock()
                blocked = self._blocked_until - now
                if max_wait is not None and blocked > max_wait:
                    raise WaitTooLong(blocked)
                while self._sent and now - self._sent[0] >= self.window:
                    self._sent.popleft()
                if len(self._sent) < self.per_minute:
                    self._sent.append(now)
                    return
                wait = self.window - (now - self._sent[0]) + 0.001
            self.waited += wait
            self._sleep(wait)

    def observe(self, method: str, path: str, response: httpx.Response) -> None:
        return None

    def penalise(
        self, seconds: float, response: httpx.Response | None = None, method: str = "", path: str = ""
    ) -> None:
        """After a 429, hold every caller back for ``seconds`` (the server's window is fuller than ours thought)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)
            until = self._clock() + seconds - self.window
            # Fill the window with stamps that expire exactly when the server said we may go again.
            self._sent = deque([until] * self.per_minute)
