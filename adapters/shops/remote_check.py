"""What the HTTP shops' ``cardbridge check`` share: the line for a shop that cannot be reached, and reading an error
answer's code (decided on, never its wording). The communities' checks use :func:`adapters.checks.unreachable` too."""

from __future__ import annotations

from typing import Any

import httpx

from adapters.checks import Check, shown
from adapters.checks import unreachable as remote_unreachable
from connector.core.http import RemoteError
from connector.core.http_text import describe_body

__all__ = ["code_of", "said", "shown", "unreachable"]


def unreachable(what: str, error: httpx.TransportError, url: str) -> Check:
    """A shop that did not answer: the shared line, with the shop's keys to check."""
    return remote_unreachable(
        what,
        error,
        url,
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
