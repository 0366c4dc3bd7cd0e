"""Pacing for one remote: the :class:`Budget` protocol the HTTP client asks before each request, and
:class:`RequestBudget`, a sliding window of N requests a minute (Discourse's limiter, Sellix's), counted in this process.

Several processes that call one remote (replicas of the daemon, a CLI pass beside it) share its limit through a
:class:`LimitStore` (the state store implements it: ``connector.state.rate_limits``); :class:`SharedRequestBudget` is
:class:`RequestBudget`'s window counted there."""

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


class LimitStore(Protocol):
    """Rate-limit state kept where every process of one deployment sees it (the state store), so several replicas
    spend one remote's budget together instead of each spending all of it.

    Keys name one limit (``discourse:https://forum.example.com``, ``discord:bot:…:global``); they never hold a secret.
    Every method is safe to call from many threads and processes at once, and each is one round trip in the common
    case. Times are seconds; 0.0 means "now".

    - :meth:`take` is a sliding window: at most ``limit`` takes succeed in any ``window`` seconds, across every
      process, and none while the key is held (:meth:`hold`). It returns 0.0 when a slot was taken, else the seconds
      until one may be (nothing is taken then: ask again after that long).
    - :meth:`hold` / :meth:`held`: a wait a remote imposed (a 429's ``Retry-After``), seen by every process; holds only
      ever grow until they end. ``scope`` is kept with the hold (Discord's ``X-RateLimit-Scope``) so a process that did
      not see the 429 can still say what limited it.
    - :meth:`set_bucket` / :meth:`spend`: a counter a remote reports (Discord's ``X-RateLimit-Remaining`` and
      ``-Reset-After``), decremented by each spend until it resets; :meth:`spend` returns 0.0 when the request may go
      (also for a bucket never reported), else the seconds until the bucket resets or its hold ends.
    """

    def take(self, key: str, limit: int, window: float) -> float: ...

    def hold(self, key: str, seconds: float, scope: str = "") -> None: ...

    def held(self, key: str) -> tuple[float, str]: ...

    def set_bucket(self, key: str, remaining: int, reset_after: float) -> None: ...

    def spend(self, key: str) -> float: ...


#: The largest window counted in a :class:`LimitStore`: the state store keeps one row per request a window allows, so a
#: budget set far above any real remote's limit (an import's 100,000 a minute, a benchmark's "no limit") is counted in
#: each process instead, which is what it means anyway.
MAX_SHARED_LIMIT = 10_000


class SharedRequestBudget:
    """:class:`RequestBudget`'s limit (``per_minute`` requests in any ``window`` seconds) counted in a
    :class:`LimitStore` under ``key``, so every process asking for the same key shares one window.

    Waits for a slot are this connector's own pacing and are never capped; a 429's wait is held for every process
    (:meth:`penalise`), and ``acquire`` refuses with :class:`WaitTooLong` a held wait longer than ``max_wait``.
    """

    def __init__(
        self,
        store: LimitStore,
        key: str,
        per_minute: int,
        window: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store, self.key = store, key
        self.per_minute, self.window = per_minute, window
        self._sleep = sleep
        self.waited = 0.0

    def acquire(self, method: str = "", path: str = "", max_wait: float | None = None) -> None:
        while True:
            wait = self.store.take(self.key, self.per_minute, self.window)
            if wait <= 0:
                return
            held, scope = self.store.held(self.key)
            if max_wait is not None and held > max_wait:
                raise WaitTooLong(held, scope)
            # A millisecond past the time given, so the slot has left the window when we ask again.
            wait += 0.001
            self.waited += wait
            self._sleep(wait)

    def observe(self, method: str, path: str, response: httpx.Response) -> None:
        return None

    def penalise(
        self, seconds: float, response: httpx.Response | None = None, method: str = "", path: str = ""
    ) -> None:
        """After a 429, hold every process back for ``seconds`` (the remote's window is fuller than ours thought: some
        other client of the same key, or a clock that drifted)."""
        self.store.hold(self.key, seconds)
