"""The WooCommerce REST conventions every route shares: the documented error bodies, ``page``/``per_page``
(1..100)/``offset``, the ``X-WP-Total``/``X-WP-TotalPages``/``Link`` headers, ``_fields``, and date bounds read as
site-local unless ``dates_are_gmt``. Keys and their refusals are in :mod:`sandbox.shop.keys`."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.shop.fields import filter_collection, filter_single, requested

API = "/wp-json/wc/v3"


def err(status: int, code: str, message: str, **data: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": {"status": status, **data}}, status_code=status)


def invalid(param: str, reason: str) -> JSONResponse:
    return err(400, "rest_invalid_param", f"Invalid parameter(s): {param}", params={param: reason}, details={})


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


def fields_of(request: Request, honoured: bool = True) -> list[str] | None:
    """The request's ``_fields`` (:mod:`sandbox.shop.fields`); None when absent or when the site predates them
    (``honoured=False``: WordPress before 4.8 answers every field)."""
    return requested(request.query_params) if honoured else None


def list_response(
    request: Request, items: list[Any], total: int, page: int, per_page: int, fields: list[str] | None = None
) -> Response:
    """A list page with WordPress's paging headers, each item trimmed to ``fields``."""
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
    return JSONResponse(filter_collection(items, fields), headers=headers)


def single_response(item: dict[str, Any], fields: list[str] | None) -> Response:
    """A single object trimmed to ``fields``, its ``_links`` kept (:func:`sandbox.shop.fields.filter_single`)."""
    return JSONResponse(filter_single(item, fields))


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
