"""The WooCommerce REST conventions every route shares: the documented error bodies, Basic auth with the consumer
key and secret (or the query parameters), ``page``/``per_page`` (1..100)/``offset``, the
``X-WP-Total``/``X-WP-TotalPages``/``Link`` headers, and date bounds read as site-local unless ``dates_are_gmt``."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

API = "/wp-json/wc/v3"


def err(status: int, code: str, message: str, **data: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": {"status": status, **data}}, status_code=status)


def invalid(param: str, reason: str) -> JSONResponse:
    return err(400, "rest_invalid_param", f"Invalid parameter(s): {param}", params={param: reason}, details={})


def auth_error(request: Request, consumer_key: str, consumer_secret: str) -> Response | None:
    key = request.query_params.get("consumer_key")
    secret = request.query_params.get("consumer_secret")
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            key, _, secret = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            key = secret = None
    if not key:
        return err(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
    if key != consumer_key:
        return err(401, "woocommerce_rest_authentication_error", "Consumer key is invalid.")
    if secret != consumer_secret:
        return err(
            401, "woocommerce_rest_authentication_error", "Invalid signature - provided signature does not match."
        )
    return None


def paging(request: Request) -> tuple[int, int, int] | Response:
    params = request.query_params
    try:
        per_page = int(params.get("per_page", "10"))
    except ValueError:
        return invalid("per_page", "per_page is not of type integer.")
    if not 1 <= per_page <= 100:
        return invalid("per_page", "per_page must be between 1 (inclusive) and 100 (inclusive)")
    try:
        page = int(params.get("page", "1"))
        offset = int(params["offset"]) if "offset" in params else (page - 1) * per_page
    except ValueError:
        return invalid("page", "page is not of type integer.")
    if page < 1:
        return invalid("page", "page must be greater than or equal to 1")
    return page, per_page, offset


def list_response(request: Request, items: list[Any], total: int, page: int, per_page: int) -> Response:
    pages = (total + per_page - 1) // per_page if total else 0
    headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
    base = str(request.url.replace(query="")).replace("http://", "http://", 1)
    query = dict(request.query_params)
    links = []
    if page > 1 and pages:
        links.append(f'<{base}?{urlencode({**query, "page": min(page - 1, pages)})}>; rel="prev"')
    if page < pages:
        links.append(f'<{base}?{urlencode({**query, "page": page + 1})}>; rel="next"')
    if links:
        headers["Link"] = ", ".join(links)
    return JSONResponse(items, headers=headers)


def bound(request: Request, name: str, site_tz: tzinfo) -> int | Response | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return invalid(name, "Invalid date.")
    if moment.tzinfo is None:
        gmt = request.query_params.get("dates_are_gmt", "false").lower() in ("true", "1")
        moment = moment.replace(tzinfo=UTC if gmt else site_tz)
    return int(moment.timestamp())
