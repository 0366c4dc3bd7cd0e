"""What the HTTP shops' ``cardbridge check`` share: the line for a shop that cannot be reached, and reading an error
answer's code (decided on, never its wording)."""

from __future__ import annotations

from typing import Any

import httpx

from adapters.checks import Check, failed
from adapters.shops.paging import shown_url
from connector.core.http import RemoteError
from connector.core.http_text import describe_body


def shown(url: str) -> str:
    """A configured URL as a message may show it: no user, password or query string."""
    try:
        return shown_url(httpx.URL(url))
    except (httpx.InvalidURL, ValueError):
        return "(the configured URL)"


def unreachable(what: str, error: httpx.TransportError, url: str) -> Check:
    """A shop that did not answer (refused, timed out, DNS, TLS): the client's message already names the URL without
    credentials and the timeout key it ran out of."""
    return failed(
        what,
        str(error) or f"no answer from {shown(url)}",
        "check shop.base_url and that the shop is up; waits are shop.connect_timeout_seconds and shop.timeout_seconds",
    )


def code_of(error: RemoteError) -> str:
    """The error code in a JSON error answer (WordPress: ``code``), or ``""``."""
    body: Any = error.body
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else ""


def said(error: RemoteError) -> str:
    """``HTTP 401 woocommerce_rest_cannot_view: <the remote's message>`` (the message extracted, never raw markup)."""
    code = code_of(error)
    return f"HTTP {error.status}{f' {code}' if code else ''}: {describe_body(error.body)}"
