"""``cardbridge check`` for Sellix: the API answers, the key is accepted (for the shop ``X-Sellix-Merchant`` names, when
set), and the two lists the adapter reads, orders and feedback, answer. Two GETs of page 1; nothing is written and
nothing read is kept or shown.

Sellix answers a refused key with its envelope and status 401 (``sandbox/sellix.py``); what it answers for a
merchant name the account does not own is not documented. So when a request with the merchant header is refused,
the same read is asked once more *without* it: if that one passes, the key is good and ``shop.merchant`` is what to
fix; if it is refused too, the key is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx

from adapters.checks import Check, failed, passed
from adapters.shops.paging import json_body
from adapters.shops.remote_check import shown, unreachable
from connector.core.http import RemoteClient, RemoteError
from connector.core.http_text import describe_body

REMOTE = "sellix"
KEY_FIX = "set shop.api_key to an API key from Sellix (Settings > Security > API key)"


def check_sellix(
    client: RemoteClient, base_url: str, merchant: str, without_merchant: Callable[[], RemoteClient]
) -> Iterator[Check]:
    """``without_merchant`` opens a client like ``client`` with no ``X-Sellix-Merchant`` header (asked only when a
    request with the header was refused)."""
    where = shown(base_url)
    for what, path in (("read orders", "/orders"), ("read feedback", "/feedback")):
        try:
            _envelope(client, path)
        except httpx.TransportError as error:
            yield unreachable("reach the Sellix API", error, base_url)
            return
        except RemoteError as error:
            if error.status in (401, 403):
                yield from _refused(error, merchant, without_merchant, path)
                return
            yield failed(what, f"GET {where}{path}: {_said(error)}", f"check shop.base_url ({where})")
            continue
        if path == "/orders":
            yield passed("key accepted", f"for the shop {merchant!r}" if merchant else "for the account's main shop")
        yield passed(what, f"GET {path} answered")


def _refused(
    error: RemoteError, merchant: str, without_merchant: Callable[[], RemoteClient], path: str
) -> Iterator[Check]:
    if merchant:
        plain = without_merchant()
        try:
            _envelope(plain, path)
        except (RemoteError, httpx.TransportError):
            pass  # refused without the header too: the key is the problem
        else:
            yield passed("key accepted", "for the account's main shop")
            yield failed(
                f"shop {merchant!r}",
                f"{_said(error)} with X-Sellix-Merchant: {merchant}; the same read without it passes",
                "set shop.merchant to the name of a shop this API key's account owns, or leave it empty for the "
                "account's main shop",
            )
            return
        finally:
            plain.close()
    yield failed("key accepted", _said(error), KEY_FIX)


def _envelope(client: RemoteClient, path: str) -> Any:
    """GET page 1 of ``path``; a Sellix envelope whose ``status`` is not 200 is an error with that status."""
    response = client.request("GET", path, params={"page": 1})
    body = json_body(REMOTE, path, response)
    status = body.get("status") if isinstance(body, dict) else None
    if status != 200:
        code = status if isinstance(status, int) and not isinstance(status, bool) else response.status_code
        reason = (body.get("error") or body.get("message")) if isinstance(body, dict) else None
        raise RemoteError(REMOTE, "GET", path, code, {"message": reason or "error envelope"})
    return body


def _said(error: RemoteError) -> str:
    return f"HTTP {error.status}: {describe_body(error.body)}"
