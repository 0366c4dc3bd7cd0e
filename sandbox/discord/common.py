"""What every part of the Discord sandbox shares: the API prefix and the OAuth2 paths, Discord's error bodies, and
reading what the front door stored on the request (the parsed JSON body, the raw form, the Bearer token)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse

API = "/api/v10"
#: The OAuth2 page routes and token endpoints: no bot token, no bot buckets (client authentication is in the form).
AUTHORIZE_PATH = "/oauth2/authorize"
TOKEN_PATHS = ("/api/oauth2/token", f"{API}/oauth2/token")
REVOKE_PATHS = ("/api/oauth2/token/revoke", f"{API}/oauth2/token/revoke")
#: Routes that take ``Authorization: Bearer <user token>``; ``GET /users/@me`` also takes the bot token.
BEARER_ROUTE = re.compile(rf"^{re.escape(API)}/(users/@me(/.*)?|oauth2/@me)/?$")


def error(status: int, code: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"message": message, "code": code, **extra}, status_code=status)


def form_error(errors: dict[str, Any]) -> JSONResponse:
    return error(400, 50035, "Invalid Form Body", errors=errors)


def field_error(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def raw_body(request: Request) -> Any:
    """The request's JSON body as parsed by the front door (``None`` when absent or not JSON)."""
    return request.scope.get("state", {}).get("body")


def body_of(request: Request) -> dict[str, Any]:
    body = raw_body(request)
    return body if isinstance(body, dict) else {}


def form_of(request: Request) -> dict[str, list[str]]:
    """A form-encoded body, parsed by hand (python-multipart is not a dependency); other content types: empty."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    raw = request.scope.get("state", {}).get("raw", b"")
    return parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)


def token_of(request: Request) -> dict[str, Any] | None:
    """The Bearer token the front door accepted (``None`` for the bot token)."""
    token: dict[str, Any] | None = request.scope.get("state", {}).get("token")
    return token
