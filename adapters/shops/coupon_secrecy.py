"""Keeping coupon codes out of messages: a coupon code is a secret for the member who redeemed points for it.

The HTTP client's errors name the URL's path and the remote's own reason (:mod:`connector.core.http_text`); a shop may
answer a coupon request with the code in either (a REST shop whose look-up path is ``/coupons/{code}``, WooCommerce's
``Coupon "%s" does not exist!``). :func:`codes_hidden` wraps every coupon request: whatever it raises leaves with the
code (and anything shaped like a CardBridge coupon code) replaced, keeping the exception's type, so delivery still
tells a 5xx after a POST (verify before resending) from a refusal.

The coupon clients also make one attempt per request (:data:`COUPON_ATTEMPTS`): the client logs each retry with the
error's message *before* the caller could scrub it, and delivery retries redemptions on its own, bounded in time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from connector.core.http import RemoteError

#: What a code is replaced with in messages.
HIDDEN = "[coupon code]"
#: The codes CardBridge derives (``CB-`` and 12 base-32 characters, :mod:`connector.core.redemption`), any case and
#: URL-quoted or not: hidden even when another request's code is in a message (a remote marked down earlier).
CODE_SHAPE = re.compile(r"(?i)\bCB(-|%2D)[A-Z2-7]{12}\b")
#: Attempts per coupon request (see the module docstring).
COUPON_ATTEMPTS = 1


def scrub(text: str, code: str) -> str:
    """``text`` without ``code`` (as it is, lower-cased by the shop, or URL-quoted) or any code of CardBridge's shape."""
    for form in {code, quote(code, safe=""), quote(code)}:
        if form:
            text = re.sub(re.escape(form), HIDDEN, text, flags=re.I)
    return CODE_SHAPE.sub(HIDDEN, text)


def _scrubbed(value: Any, code: str) -> Any:
    if isinstance(value, str):
        return scrub(value, code)
    if isinstance(value, dict):
        return {key: _scrubbed(item, code) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, code) for item in value]
    return value


def hide(error: BaseException, code: str) -> None:
    """Remove ``code`` from ``error`` in place: its message, and a :class:`RemoteError`'s URL, path and body."""
    if isinstance(error, RemoteError):
        error.url, error.path = scrub(error.url, code), scrub(error.path, code)
        error.body = _scrubbed(error.body, code)
    error.args = tuple(scrub(arg, code) if isinstance(arg, str) else arg for arg in error.args)
    # An exception raised from another (httpx's own, under the client's reworded one) carries the code there too.
    for inner in (error.__cause__, error.__context__):
        if inner is not None and inner is not error:
            inner.args = tuple(scrub(arg, code) if isinstance(arg, str) else arg for arg in inner.args)


@contextmanager
def codes_hidden(code: str) -> Iterator[None]:
    """Run a coupon request; anything it raises is re-raised with ``code`` hidden (same exception, same type)."""
    try:
        yield
    except Exception as error:
        hide(error, code)
        raise
