"""One shared HTTP client per remote: a request budget, tenacity retries, and the remote's own rate-limit hints.

Policy reads as a sentence (tenacity style): retry *transport errors, 5xx and 429*, waiting *what the server asked
for, else exponential backoff with jitter*, stopping *after N attempts*. Everything else (4xx) is the caller's to
handle and is raised at once as :class:`RemoteError` carrying the status and the parsed body.

Failing fast: each attempt has a connect timeout and a read timeout sized for an API call, and one request's retries
end when ``max_retry_seconds`` would pass (the last attempt's timeouts are cut to what is left). A request that ends
in a transport failure after its retries marks the remote down for ``max_retry_seconds``: the requests that follow
fail at once with the same reason (:class:`RemoteDown`) instead of each waiting out its own timeouts, so a remote
that accepts connections and never answers costs a pass about ``max_retry_seconds``, not minutes. Messages name the
URL (no credentials, no query string) and the config key that sets the time (:mod:`connector.core.http_text`).

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
from tenacity.stop import stop_base

from connector import __version__
from connector.core.budget import Budget, WaitTooLong

# Re-exported: adapters and the pass import the errors from here.
from connector.core.http_errors import Deferred as Deferred
from connector.core.http_errors import OutcomeUnknown as OutcomeUnknown
from connector.core.http_errors import RateLimited as RateLimited
from connector.core.http_errors import RemoteDown as RemoteDown
from connector.core.http_errors import RemoteError as RemoteError
from connector.core.http_errors import Unreachable as Unreachable
from connector.core.http_errors import UnsureStatus as UnsureStatus
from connector.core.http_errors import UnsureTransport as UnsureTransport
from connector.core.http_errors import deferred_by as deferred_by
from connector.core.http_errors import describe_error as describe_error
from connector.core.http_errors import outcome_unknown as outcome_unknown
from connector.core.http_errors import stopped_reason as stopped_reason
from connector.core.http_text import describe_body as describe_body
from connector.core.http_text import shown_url, transport_reason
from connector.core.logs import log

USER_AGENT = f"CardBridge/{__version__} (+https://github.com/cardbridge/cardbridge)"
_PLAIN_WAIT = re.compile(r"(\d+)\s*seconds?")


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


def _reworded(error: httpx.TransportError, message: str) -> httpx.TransportError:
    """The same kind of error (retry and outage handling look at the type) with a message that says where."""
    try:
        again = type(error)(message, request=_request_of(error))
    except TypeError:  # a subclass with another signature: keep the original
        return error
    return again


def _request_of(error: httpx.TransportError) -> httpx.Request | None:
    try:
        return error.request
    except RuntimeError:  # raised without one (a mocked transport)
        return None


@dataclass
class _Tries:
    """One request's retry time: ``deadline`` (monotonic) moves later by the time spent in pacing (the request budget,
    a 429's wait), which is the remote's pace, not its failure. ``failures``: what each transport failure said."""

    deadline: float
    failures: list[str] = field(default_factory=list)


class _RetryTime(stop_base):
    """Stop when the wait before the next attempt would end past the request's deadline. A 429's wait is not a
    failure but the remote's pacing (each is capped by ``max_wait`` and the attempts): it does not stop here."""

    def __init__(self, tries: _Tries) -> None:
        self.tries = tries

    def __call__(self, retry_state: RetryCallState) -> bool:
        if retry_state.outcome is not None and isinstance(retry_state.outcome.exception(), RateLimited):
            return False
        return time.monotonic() + (retry_state.upcoming_sleep or 0.0) > self.tries.deadline


class RemoteClient:
    """A thin, shared client for one remote (a shop or a community).

    ``keys`` names the config table the timeouts come from (``[shop]``, ``[communities.forum]``), so a failure can
    say which key to change; ``timeout`` is for reading an answer (and sending), ``connect_timeout`` for connecting.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        max_retry_seconds: float = 60.0,
        keys: str = "",
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
        self.keys, self.read_timeout, self.connect_timeout = keys, timeout, connect_timeout
        #: One request's attempts and waits end within this; a transport failure after the retries also keeps the
        #: remote marked down this long (see :class:`RemoteDown`).
        self.max_retry_seconds = max_retry_seconds
        self._down_until, self._down_reason = 0.0, ""
        self._client = httpx.Client(
            base_url=base_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            auth=auth,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )
        self.attempts = attempts
        self._retrying = Retrying(
            retry=retry_if_exception(_transient),
            wait=_wait(wait_exponential_jitter(multiplier=0.5, max=backoff_max, jitter=0.5)),
            stop=stop_after_attempt(attempts),
            sleep=sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def _before_sleep(self, state: RetryCallState, tries: _Tries | None = None) -> None:
        self.stats.retries += 1
        error = state.outcome.exception() if state.outcome else None
        if tries is not None and isinstance(error, RateLimited):
            tries.deadline += state.upcoming_sleep
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
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send with budget and retries; statuses outside ``ok`` raise :class:`RemoteError` (4xx at once).

        ``idempotent``: whether sending the request twice leaves the same state (default: by method, see
        :data:`IDEMPOTENT`). A request that is not is never resent once it may have reached the server. ``files``:
        multipart parts, as httpx takes them (bytes, so a retry can send them again).
        """
        again = method.upper() in IDEMPOTENT if idempotent is None else idempotent
        started = time.monotonic()
        if started < self._down_until:
            left = self._down_until - started
            raise RemoteDown(f"{self._down_reason}; not asked again for another {left:.0f} s")
        tries = _Tries(started + self.max_retry_seconds)
        retrying = self._retrying.copy(
            stop=stop_after_attempt(self.attempts) | _RetryTime(tries),
            before_sleep=lambda state: self._before_sleep(state, tries),
        )
        try:
            return retrying(self._send_once, method, path, params, data, json, ok, headers, again, tries, files)
        except httpx.TransportError as error:
            if _transient(error) and tries.failures:
                # The first failure says what was given (a last attempt gets only the time left), the tail how long
                # it was tried; every request after this one would wait out the same: they fail at once for a while.
                spent = time.monotonic() - started
                count = int(retrying.statistics.get("attempt_number", len(tries.failures)))
                tried = f"{count} attempt{'s' if count > 1 else ''} in {spent:.0f} s"
                error.args = (f"{tries.failures[0]} ({tried}; {self._key('max_retry_seconds')})",)
                self._down_until, self._down_reason = time.monotonic() + self.max_retry_seconds, str(error)
            raise

    def _key(self, name: str) -> str:
        return f"{self.keys} {name}".strip()

    def _explained(self, error: httpx.TransportError, method: str, timeout: httpx.Timeout) -> str:
        """``GET https://host/path timed out after 10 s reading the answer ([shop] timeout_seconds)``."""
        request = _request_of(error)
        where = f"{method} {shown_url(request.url)}" if request is not None else method
        connect, read = timeout.connect or self.connect_timeout, timeout.read or self.read_timeout
        return f"{where} {transport_reason(error, connect, read, self.keys)}"

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
        tries: _Tries | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        if self.budget is not None:
            paced = time.monotonic()
            try:
                self.budget.acquire(method, path, self.max_wait)
            except WaitTooLong as refused:
                self.stats.deferred += 1
                raise Deferred(self.name, method, path, None, refused.seconds, refused.scope, sent=False) from None
            if tries is not None:
                tries.deadline += time.monotonic() - paced
        self.stats.requests += 1
        if method != "GET":
            self.stats.writes += 1
        # The last attempt gets only what is left of max_retry_seconds (at least a second to connect and answer).
        left = max(1.0, tries.deadline - time.monotonic()) if tries is not None else self.read_timeout
        timeout = httpx.Timeout(min(self.read_timeout, left), connect=min(self.connect_timeout, left))
        try:
            response = self._client.request(
                method, path, params=params, data=data, json=json, headers=headers, timeout=timeout, files=files
            )
        except httpx.TransportError as error:
            message = self._explained(error, method, timeout)
            if tries is not None:
                tries.failures.append(message)
            if idempotent or isinstance(error, _NOT_SENT):
                reworded = _reworded(error, message)
                if reworded is error:
                    raise
                raise reworded from error
            self.stats.unsure += 1
            raise UnsureTransport(message, request=_request_of(error)) from error
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
            raise UnsureStatus(self.name, method, path, response.status_code, body, shown_url(response.request.url))
        raise RemoteError(self.name, method, path, response.status_code, body, shown_url(response.request.url))

    def close(self) -> None:
        self._client.close()
