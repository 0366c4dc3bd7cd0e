"""One shared HTTP client per remote: a request budget, tenacity retries, and the remote's own rate-limit hints.

Policy reads as a sentence (tenacity style): retry *transport errors, 5xx and 429*, waiting *what the server asked
for, else exponential backoff with jitter*, stopping *after N attempts*. Everything else (4xx) is the caller's to
handle and is raised at once as :class:`RemoteError` carrying the status and the parsed body.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connector import __version__
from connector.core.logs import log

USER_AGENT = f"CardBridge/{__version__} (+https://github.com/cardbridge/cardbridge)"
_PLAIN_WAIT = re.compile(r"(\d+)\s*seconds?")


class RemoteError(Exception):
    """A remote answered with an error status. ``body`` is the parsed JSON (or the text) of the answer."""

    def __init__(self, remote: str, method: str, path: str, status: int, body: Any) -> None:
        self.remote, self.method, self.path, self.status, self.body = remote, method, path, status, body
        super().__init__(f"{remote}: {method} {path} answered {status}: {describe_body(body)}")


class RateLimited(RemoteError):
    """429: ``retry_after`` is the wait the server asked for, in seconds."""

    def __init__(self, remote: str, method: str, path: str, body: Any, retry_after: float) -> None:
        super().__init__(remote, method, path, 429, body)
        self.retry_after = retry_after


def describe_body(body: Any) -> str:
    """A short, human reason from the usual error shapes (Discourse ``errors``, WordPress ``message``)."""
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list) and body["errors"]:
            return "; ".join(str(e) for e in body["errors"])[:300]
        for key in ("message", "error", "failed"):
            if body.get(key):
                return str(body[key])[:300]
    text = str(body).strip()
    return text[:300] if text else "(empty body)"


def describe_error(error: BaseException) -> str:
    """One line for a failed remote read. HTTP errors say what the remote answered; anything else (a database driver,
    a third-party adapter) gives its type and first line only, so no SQL statement or parameter (an email) shows."""
    if isinstance(error, RemoteError | httpx.HTTPError):
        return str(error)
    text = str(error).strip()
    first = text.splitlines()[0][:300] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def parse_body(response: httpx.Response) -> Any:
    """JSON when the remote says so and it parses; the text otherwise (a 429 may be plain text)."""
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def retry_after_seconds(response: httpx.Response, body: Any, default: float = 10.0) -> float:
    """``Retry-After`` first, then Discourse's ``extras.wait_seconds``, then a number in a plain-text body."""
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    if isinstance(body, dict):
        extras = body.get("extras") or {}
        if isinstance(extras, dict) and isinstance(extras.get("wait_seconds"), (int, float)):
            return float(extras["wait_seconds"])
        if isinstance(body.get("retry_after"), (int, float)):
            return float(body["retry_after"])
    if isinstance(body, str):
        match = _PLAIN_WAIT.search(body)
        if match:
            return float(match.group(1))
    return default


class Budget(Protocol):
    """Pacing for one remote: asked before each request, told about each answer. See :class:`RequestBudget`."""

    def acquire(self, method: str, path: str) -> None: ...

    def observe(self, method: str, path: str, response: httpx.Response) -> None: ...

    def penalise(self, seconds: float, response: httpx.Response | None = None) -> None: ...


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
        self.waited = 0.0

    def acquire(self, method: str = "", path: str = "") -> None:
        while True:
            with self._lock:
                now = self._clock()
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

    def penalise(self, seconds: float, response: httpx.Response | None = None) -> None:
        """After a 429, hold every caller back for ``seconds`` (the server's window is fuller than ours thought)."""
        with self._lock:
            until = self._clock() + seconds - self.window
            # Fill the window with stamps that expire exactly when the server said we may go again.
            self._sent = deque([until] * self.per_minute)


@dataclass
class Stats:
    """Counts for `status`, the benchmarks and the failure summary."""

    requests: int = 0
    writes: int = 0
    rate_limited: int = 0
    retries: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


def _transient(error: BaseException) -> bool:
    if isinstance(error, RateLimited):
        return True
    if isinstance(error, RemoteError):
        return error.status >= 500
    return isinstance(error, httpx.TransportError)


def _wait(fallback: Callable[[RetryCallState], float]) -> Callable[[RetryCallState], float]:
    """Wait what a 429 asked for; otherwise use ``fallback``."""

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            return error.retry_after
        return fallback(state)

    return wait


class RemoteClient:
    """A thin, shared client for one remote (a shop or a community)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 30.0,
        budget: Budget | None = None,
        attempts: int = 5,
        backoff_max: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.budget = budget
        self.stats = Stats()
        self._client = httpx.Client(
            base_url=base_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            auth=auth,
            timeout=timeout,
            transport=transport,
        )
        self._retrying = Retrying(
            retry=retry_if_exception(_transient),
            wait=_wait(wait_exponential_jitter(multiplier=0.5, max=backoff_max, jitter=0.5)),
            stop=stop_after_attempt(attempts),
            sleep=sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.warning(
            "retrying",
            remote=self.name,
            attempt=state.attempt_number,
            wait=round(state.upcoming_sleep, 2),
            error=str(error)[:300],
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        json: Any = None,
        ok: tuple[int, ...] = (200, 201, 204),
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send with budget and retries; statuses outside ``ok`` raise :class:`RemoteError` (4xx at once)."""
        return self._retrying(self._send_once, method, path, params, data, json, ok, headers)

    def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        json: Any,
        ok: tuple[int, ...],
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if self.budget is not None:
            self.budget.acquire(method, path)
        self.stats.requests += 1
        if method != "GET":
            self.stats.writes += 1
        response = self._client.request(method, path, params=params, data=data, json=json, headers=headers)
        if self.budget is not None:
            self.budget.observe(method, path, response)
        self.stats.by_status[response.status_code] = self.stats.by_status.get(response.status_code, 0) + 1
        if response.status_code in ok:
            return response
        body = parse_body(response)
        if response.status_code == 429:
            self.stats.rate_limited += 1
            wait = retry_after_seconds(response, body)
            if self.budget is not None:
                self.budget.penalise(wait, response)
            raise RateLimited(self.name, method, path, body, wait)
        raise RemoteError(self.name, method, path, response.status_code, body)

    def close(self) -> None:
        self._client.close()
