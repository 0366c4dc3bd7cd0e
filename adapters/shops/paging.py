"""Bounded walks through a shop's pages: only the configured origin, no page twice, at most ``max_pages`` a pass.

A shop's answer decides where the next page is (a ``next_page_url``, a ``Link`` header, a cursor) or whether there is
one. Followed blindly, a link to another host carries the shop's credentials there (the client sends its bearer
token, API-key header, Basic auth or signature with every request), and a link to the same page never ends. So a walk
goes through a :class:`PageGuard`; what it refuses is a :class:`PagingError`, which stops reading the shop for this
pass with a reason that names the link (never a query string or credentials). Pages read before it are kept.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import httpx

from connector.core.http import RemoteError

#: Pages one walk reads at most, unless the shop's settings say otherwise.
MAX_PAGES = 10_000
_DEFAULT_PORTS = {"http": 80, "https": 443}


class PagingError(RemoteError):
    """The shop's pagination cannot be followed: off the configured origin, repeating, or longer than ``max_pages``."""

    def __init__(self, remote: str, path: str, reason: str) -> None:
        super().__init__(remote, "GET", path, 0, {"message": reason})
        self.reason = reason
        self.args = (f"{remote}: GET {path}: {reason}",)


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit."""
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def shown_origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}{f':{url.port}' if url.port else ''}"


def shown_url(url: httpx.URL) -> str:
    """A URL for an error message: scheme, host, port and path; a query (which may echo a signature) as ``?…``; never
    the user and password a URL can carry."""
    return f"{shown_origin(url)}{url.path}{'?…' if url.query else ''}"[:300]


class PageGuard:
    """One walk's bounds. ``visit`` before each request; ``follow`` for a link the shop gave."""

    def __init__(self, remote: str, base_url: str, path: str, max_pages: int = MAX_PAGES) -> None:
        self.remote, self.path, self.max_pages = remote, path, max_pages
        self.base = httpx.URL(base_url)
        self.origin = origin(self.base)
        self.pages = 0
        #: Digests of the pages requested (a URL, a cursor): bounded memory whatever the shop sends.
        self._seen: set[bytes] = set()

    def error(self, reason: str) -> PagingError:
        return PagingError(self.remote, self.path, reason)

    def visit(self, page: str, shown: str) -> None:
        """Count the page about to be requested (``page`` identifies it; ``shown`` names it in an error). An error
        when this walk requested it before (the shop's pagination loops) or has read ``max_pages`` already."""
        digest = hashlib.sha256(page.encode("utf-8", "replace")).digest()
        if digest in self._seen:
            raise self.error(f"the shop sent {shown} again: its pagination repeats, stopped after {self.pages} pages")
        if self.pages >= self.max_pages:
            raise self.error(
                f"stopped after {self.pages} pages (max_pages = {self.max_pages}); the pages read are kept and the "
                "next pass goes on from the cursor"
            )
        self._seen.add(digest)
        self.pages += 1

    def follow(self, current: httpx.URL, link: Any) -> httpx.URL:
        """The next page's absolute URL from a link the shop gave (relative links resolve against ``current``). A link
        to another origin (scheme, host, port) than the configured ``base_url`` is an error naming it: the request
        would carry the shop's credentials there."""
        if not isinstance(link, str) or not link.strip():
            raise self.error(f"the next-page link is not a URL (a {type(link).__name__})")
        try:
            url = current.join(link.strip())
        except (httpx.InvalidURL, ValueError):
            raise self.error("the next-page link is not a valid URL") from None
        if origin(url) != self.origin:
            raise self.error(
                f"the next page {shown_url(url)} is not on the shop's origin {shown_origin(self.base)}"
                ": not followed (it would receive the shop's credentials)"
            )
        return url


def cursor_value(value: Any) -> str | None:
    """A next-page cursor from an answer: text or a number as text; None for none (null, "", 0, false). Anything else
    (an object, a list, NaN) is not a cursor."""
    if value is None or value is False or value == "" or (isinstance(value, (int, float)) and value == 0):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**64:
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise ValueError(f"a {type(value).__name__} is not a cursor")


def json_body(remote: str, path: str, response: httpx.Response) -> Any:
    """The answer's JSON; a :class:`~connector.core.http.RemoteError` when it is not JSON (or nested too deep to
    read), so the pass reports it instead of dying on it."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        raise RemoteError(remote, "GET", path, response.status_code, {"message": "the answer is not JSON"}) from None
