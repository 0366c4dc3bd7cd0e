"""What a failed remote call says to an operator: the remote's own reason, the URL without credentials, the config key.

A remote's error body is untrusted and may be anything: JSON with a message, an HTML error page from a proxy (a 503
from nginx or Cloudflare), or text. Only a short reason is kept: the message from JSON, the ``<title>`` of an HTML
page (else its text without markup), whitespace collapsed, bounded in length. Nothing here decides on that wording;
it is only shown.

A transport failure (no answer, a refused connection) says which URL, which phase (connecting, reading) and which
config key sets the time it was given, so the operator knows where to look and what to change.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any

import httpx

#: Longest remote reason shown (a page's title, a JSON message).
REASON_CHARS = 200
#: How much of an HTML page is looked at for its title (the title sits in the head, near the start).
_HTML_SCAN = 65536
_SPACE = re.compile(r"\s+")
_LOOKS_HTML = re.compile(r"<\s*(!doctype|html|head|body|title|h1|p|div)\b", re.IGNORECASE)


def one_line(text: str, limit: int = REASON_CHARS) -> str:
    """Whitespace collapsed, at most ``limit`` characters (an ellipsis marks a cut)."""
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class _PageText(HTMLParser):
    """The ``<title>`` of a page and its visible text (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.text: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("title", "script", "style"):
            self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        where = self._in[-1] if self._in else ""
        if where == "title":
            self.title.append(data)
        elif not where:
            self.text.append(data)


def page_reason(text: str) -> str:
    """An HTML page's title, else its text without markup; one bounded line."""
    parser = _PageText()
    try:
        parser.feed(text[:_HTML_SCAN])
        parser.close()
    except Exception:  # a malformed page: show no markup rather than fail the error message
        return "(an HTML page)"
    title = one_line("".join(parser.title))
    return title or one_line(" ".join(parser.text)) or "(an HTML page)"


def describe_body(body: Any) -> str:
    """A short, human reason from the usual error shapes (Discourse ``errors``, WordPress ``message``), an HTML
    page's title, or the text; never markup, never longer than :data:`REASON_CHARS`."""
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list) and body["errors"]:
            return one_line("; ".join(str(e) for e in body["errors"]))
        for key in ("message", "error", "failed"):
            if body.get(key):
                return one_line(str(body[key]))
    text = str(body).strip() if body is not None else ""
    if _LOOKS_HTML.search(text[:_HTML_SCAN]):
        return page_reason(text)
    return one_line(html.unescape(text)) if text else "(empty body)"


def shown_url(url: httpx.URL | str) -> str:
    """``scheme://host[:port]/path``: no user info, no query string (keys such as ``consumer_secret=`` or an
    ``email=`` look-up live there), no fragment."""
    url = httpx.URL(str(url))
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


def transport_reason(error: httpx.TransportError, connect: float, read: float, keys: str) -> str:
    """What went wrong in words and the key that sets it: ``timed out after 10 s reading the answer ([shop]
    timeout_seconds)``. ``keys`` is the config table (``[shop]``, ``[communities.forum]``); empty leaves keys out."""

    def key(name: str) -> str:
        return f" ({keys} {name})" if keys else ""

    if isinstance(error, httpx.ConnectTimeout):
        return f"could not connect within {connect:g} s{key('connect_timeout_seconds')}"
    if isinstance(error, httpx.ReadTimeout):
        return f"timed out after {read:g} s reading the answer{key('timeout_seconds')}"
    if isinstance(error, httpx.WriteTimeout | httpx.PoolTimeout):
        return f"timed out after {read:g} s sending the request{key('timeout_seconds')}"
    if isinstance(error, httpx.ConnectError):
        detail = one_line(str(error)) or "refused"
        return f"could not connect: {detail}{key('base_url')}"
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError):
        return "closed the connection without a complete answer"
    detail = one_line(str(error))
    return f"{type(error).__name__}: {detail}" if detail else type(error).__name__
