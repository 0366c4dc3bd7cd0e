"""The operator's gate: ``/`` and ``/metrics`` answer only a request that carries ``[server] operator_token``.

The token is read from ``Authorization: Bearer <token>`` (Prometheus' ``authorization`` / ``bearer_token_file``,
curl) or from HTTP Basic with the token as the password and any user name (a browser asks for it after the 401's
``WWW-Authenticate: Basic`` challenge). It is never read from the URL, where proxy logs and browser history keep it.
Compared in constant time; a missing, wrong or unreadable header is a 401 and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Endpoint = Callable[[Request], Awaitable[Response]]

CHALLENGE = 'Basic realm="CardBridge operator", charset="UTF-8"'


def presented_token(request: Request) -> bytes | None:
    """The token a request presents (Bearer, or the password of Basic), as bytes; None when there is none."""
    scheme, _, value = request.headers.get("authorization", "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value.encode("utf-8", "surrogateescape")
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return None
        return decoded.partition(b":")[2]
    return None


class OperatorGate:
    """Guards the operator's endpoints with the token; with no token configured, lets every request through."""

    def __init__(self, token: str) -> None:
        self.token = token.encode()

    def allows(self, request: Request) -> bool:
        if not self.token:
            return True
        presented = presented_token(request)
        return presented is not None and hmac.compare_digest(presented, self.token)

    def guard(self, endpoint: Endpoint) -> Endpoint:
        if not self.token:
            return endpoint

        async def guarded(request: Request) -> Response:
            if not self.allows(request):
                return JSONResponse(
                    {"error": "the operator token is required"},
                    status_code=401,
                    headers={"WWW-Authenticate": CHALLENGE},
                )
            return await endpoint(request)

        return guarded
