"""The errors a :class:`~connector.core.http.RemoteClient` raises, and how the pass reads them.

:class:`RemoteError` is an answer with an error status (its message names the URL, without credentials, and the
remote's own reason: :mod:`connector.core.http_text`); transport failures stay :mod:`httpx` errors (with messages that
say where and which key sets the time). The rest say what a caller may do next: wait (:class:`Deferred`), verify
before resending (:class:`OutcomeUnknown`), or leave the remote alone for a while (:class:`RemoteDown`).
"""

from __future__ import annotations

from typing import Any

import httpx

from connector.core.http_text import describe_body


class RemoteError(Exception):
    """A remote answered with an error status. ``body`` is the parsed JSON (or the text) of the answer."""

    def __init__(self, remote: str, method: str, path: str, status: int, body: Any, url: str = "") -> None:
        self.remote, self.method, self.path, self.status, self.body = remote, method, path, status, body
        #: Where it was sent: the URL without credentials or query string when the client knew it, else the path.
        self.url = url or path
        phrase = httpx.codes.get_reason_phrase(status)
        said = f"{status} {phrase}" if phrase else str(status)
        super().__init__(f"{remote}: {method} {url or path} answered {said}: {describe_body(body)}")


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


class RemoteDown(httpx.TransportError):
    """Not sent: a request to this remote failed after its retries less than ``max_retry_seconds`` ago. The message
    is that failure's; nothing reached the remote, so the request is safe to send again later."""


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


def stopped_reason(name: str, error: RemoteError) -> str:
    """``forum: <the remote's reason> (HTTP 503 from GET https://forum.example.com/…)``: why a community stopped."""
    return f"{name}: {describe_body(error.body)} (HTTP {error.status} from {error.method} {error.url})"


class Unreachable(Exception):
    """A remote that is not an HTTP API (a shop's database) did not answer in time or refused the connection. The
    message says where (host and port, never credentials) and which config key sets the time."""


def describe_error(error: BaseException) -> str:
    """One line for a failed remote read. HTTP errors say what the remote answered; anything else (a database driver,
    a third-party adapter) gives its type and first line only, so no SQL statement or parameter (an email) shows."""
    if isinstance(error, RemoteError | httpx.HTTPError | Unreachable):
        return str(error)
    text = str(error).strip()
    first = text.splitlines()[0][:300] if text else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
