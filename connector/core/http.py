"""One shared HTTP client per remote: a request budget, tenacity retries, and the remote's own rate-limit hints.

Policy reads as a sentence (tenacity style): retry *transport errors, 5xx and 429*, waiting *what the server asked
for, else exponential backoff with jitter*, stopping *after N attempts*. Everything else (4xx) is the caller's to
handle and is raised at once as :class:`RemoteError` carrying the status and the parsed body.

Two exceptions to "retry":

- No single wait the server asks for is longer than ``max_wait`` (a Discord ``shared`` 429 can say ``Retry-After:
  1337``). A longer one is not slept: :class:`Deferred` is raised at once with the time the request may go again, and
  the budget remembers it, so later requests to the same limit are deferred without being sent.
- A request that is not idempotent (POST, PATCH) is never sent twice by the client once it may have reached the
  server: a 5xx answer, or a connection that failed after the request was written, raises an
  :class:`OutcomeUnknown` error. Neither Discourse nor Discord takes idempotency keys, so only a read-back can tell
  whether it took effect; the outbox marks the action to be verified before it is sent again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connector import __version__
from connector.core.budget import Budget, WaitTooLong
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


class Deferred(RateLimited):
    """The remote asked for (or its limit needs) a wait longer than the client's ``max_wait``: nothing was slept.

    ``retry_after`` is the wait in seconds from when it was raised; ``scope`` what is limited (Discord's
    ``X-RateLimit-Scope``: ``shared``, ``user``, ``global``; else ``""``). ``sent`` is False when the budget refused
    the request locally (a limit already known to be exhausted) and nothing went out. It is a :class:`RateLimited`,
    so code that knows nothing of it treats it as a 429 that outlasted the retries; the outbox defers the action to
    the time it may go again instead.
    """

    def __init__(
        self, remote: str, method: str, path: str, body: Any, retry_after: float, scope: str = "", sent: bool = True
    ) -> None:
        super().__init__(remote, method, path, body, retry_after)
        self.scope, self.sent = scope, sent


class OutcomeUnknown(Exception):
    """Mixin: a non-idempotent request may have been applied by the server, and its answer says nothing certain.

    Raised as :class:`UnsureStatus` (a 5xx answer: still a :class:`RemoteError`) or :class:`UnsureTransport` (the
    connection failed after the request was written: still an :class:`httpx.TransportError`), so existing error
    handling is unchanged; the delivery stage looks for this mixin (also in ``__cause__``) to verify before resending.
    """


class UnsureStatus(RemoteError, OutcomeUnknown):
    """A POST/PATCH answered 5xx: a gateway may have cut off an answer the application had already committed."""


class UnsureTransport(httpx.TransportError, OutcomeUnknown):
    """A POST/PATCH whose connection failed after the request was written (read timeout, dropped connection)."""


def outcome_unknown(error: BaseException | None) -> bool:
    """True if ``error`` or an error it was raised from is an :class:`OutcomeUnknown`."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OutcomeUnknown):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def deferred_by(error: BaseException | None) -> Deferred | None:
    """The :class:`Deferred` that ``error`` is, or was raised from; None otherwise."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, Deferred):
            return error
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


#: Methods a client may send again after an unclear failure: repeating them leaves the same state (RFC 9110 9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Transport errors raised before the request left this machine: repeating the request is always safe.
_NOT_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    httpx.ProxyError,
)


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


@dataclass
class Stats:
    """Counts for `status`, the benchmarks and the failure summary."""

    requests: int = 0
    writes: int = 0
    rate_limited: int = 0
    retries: int = 0
    #: Requests not retried because the wait asked for was longer than ``max_wait``, or whose outcome is unknown.
    deferred: int = 0
    unsure: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


def _transient(error: BaseException) -> bool:
    if isinstance(error, Deferred | OutcomeUnknown):
        return False  # not slept, not resent: the caller decides (defer; verify before resending)
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


def _request_of(error: httpx.TransportError) -> httpx.Request | None:
    try:
        return error.request
    except RuntimeError:  # raised without one (a mocked transport)
        return None


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
        max_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.budget = budget
        #: The longest single wait a remote may impose (a 429's ``Retry-After``, a known-exhausted limit): longer
        #: ones raise :class:`Deferred` instead of blocking the pass.
        self.max_wait = max_wait
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
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send with budget and retries; statuses outside ``ok`` raise :class:`RemoteError` (4xx at once).

        ``idempotent``: whether sending the request twice leaves the same state (default: by method, see
        :data:`IDEMPOTENT`). A request that is not is never resent once it may have reached the server.
        """
        again = method.upper() in IDEMPOTENT if idempotent is None else idempotent
        return self._retrying(self._send_once, method, path, params, data, json, ok, headers, again)

    def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        json: Any,
        ok: tuple[int, ...],
        headers: Mapping[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        if self.budget is not None:
            try:
                self.budget.acquire(method, path, self.max_wait)
            except WaitTooLong as refused:
                self.stats.deferred += 1
                raise Deferred(self.name, method, path, None, refused.seconds, refused.scope, sent=False) from None
        self.stats.requests += 1
        if method != "GET":
            self.stats.writes += 1
        try:
            response = self._client.request(method, path, params=params, data=data, json=json, headers=headers)
        except httpx.TransportError as error:
            if idempotent or isinstance(error, _NOT_SENT):
                raise
            self.stats.unsure += 1
            raise UnsureTransport(f"{type(error).__name__}: {error}", request=_request_of(error)) from error
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
                self.budget.penalise(wait, response, method, path)
            if wait > self.max_wait:
                self.stats.deferred += 1
                scope = response.headers.get("x-ratelimit-scope", "")
                raise Deferred(self.name, method, path, body, wait, scope)
            raise RateLimited(self.name, method, path, body, wait)
        if response.status_code >= 500 and not idempotent:
            self.stats.unsure += 1
            raise UnsureStatus(self.name, method, path, response.status_code, body)
        raise RemoteError(self.name, method, path, response.status_code, body)

    def close(self) -> None:
        self._client.close()
