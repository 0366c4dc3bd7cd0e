"""A declarative REST shop adapter (``kind = "rest"``) for shops without an adapter of their own.

Configured in ``[shop.rest]`` (see config.example.toml): the endpoint, where the records are in the answer
(``data.list``), how pages go (page number with an empty-page or total-pages stop, offset, cursor, ``Link`` header,
``next_page_url``), how to read incrementally (a date parameter, an id watermark, or a client-side filter), the
auth (bearer, basic, a header key, or the md5-of-sorted-parameters signature 发卡 reseller APIs use), and which
record field feeds each canonical field, with a status map.

Only mapped fields are read (the allow-list); a deny-list of secret-looking names (卡密, card, secret, password, …)
is checked on top, so a mapping that points at a secret is a config error, not a leak.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import httpx
from pydantic import Field, field_validator, model_validator

from adapters.base import CustomerPage, MalformedRecord, OrderPage
from adapters.checks import Check, CheckContext
from adapters.coupons import IssuesCoupons
from adapters.shops.coupon_secrecy import COUPON_ATTEMPTS
from adapters.shops.paging import MAX_PAGES, PageGuard, cursor_value, json_body, shown_url
from adapters.shops.quarantine import read_records, shown
from adapters.shops.rest_check import RestTarget, check_rest
from adapters.shops.rest_coupons import RestCouponIssuer, RestCoupons
from connector.core.clock import iso, parse_iso
from connector.core.http import RemoteClient, RemoteError
from connector.core.models import (
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    customer_key_for,
    normalise_email,
)
from connector.core.settings import HttpUrl, KeyedError, RemoteTimeouts, Seconds, ShopSettings, StrictModel, TimeZone

REMOTE = "rest-shop"
ORDERS = "rest.orders"

#: Field names that may hold card secrets, passwords or payment credentials: never mapped, whatever the config says.
DENY = re.compile(
    r"(?i)(kami|卡密|carmi|card_?(no|num|pass|pwd|secret|key)|secret|password|passwd|pwd|token|"
    r"license|serial|cdk|redeem|code_?list)"
)


class Auth(StrictModel):
    type: Literal["none", "bearer", "basic", "header", "md5_sign"] = "none"
    token: str = ""
    username: str = ""
    password: str = ""
    name: str = ""
    value: str = ""
    #: md5_sign: the app id parameter, its value, the secret, and how the signed string is built.
    key_param: str = "app_id"
    key: str = ""
    secret: str = ""
    sign_param: str = "sign"
    timestamp_param: str = "timestamp"
    #: ``{query}`` is the sorted ``k=v&k=v`` of every parameter but the signature; ``{secret}`` the secret.
    sign_format: str = "{query}&key={secret}"


class Pagination(StrictModel):
    type: Literal["page", "offset", "cursor", "link", "next_url"] = "page"
    page_param: str = "page"
    size_param: str = "limit"
    size: int = Field(100, ge=1, le=1000)
    offset_param: str = "offset"
    cursor_param: str = "cursor"
    #: cursor / next_url: where the next cursor or URL is in the answer (dotted path).
    next_path: str = ""
    #: page: ``empty`` (stop at a short or empty page) or the name of a total-pages header.
    total_pages_header: str = ""


class Incremental(StrictModel):
    type: Literal["date_param", "id_watermark", "client_filter", "none"] = "none"
    param: str = ""
    #: The record field the cursor follows (a mapped field name: modified_at or id).
    field: Literal["modified_at", "id"] = "modified_at"
    #: How the date parameter is written: unix, iso, or a strftime pattern such as %Y-%m-%d %H:%M:%S (shop zone).
    format: str = "unix"


class OrderFields(StrictModel):
    """Record field (dotted path) for each canonical field; ``""`` = not provided."""

    id: str
    email: str
    status: str
    product_id: str
    modified_at: str
    created_at: str = ""
    total: str = ""
    currency: str = ""
    product_name: str = ""
    quantity: str = ""
    customer_id: str = ""


class Resource(StrictModel):
    path: str
    records: str = ""
    #: APIs that answer errors with HTTP 200 and an envelope: the answer is good only when ``ok_path`` equals
    #: ``ok_value`` (e.g. ``code`` = ``0``); ``message_path`` holds the reason otherwise (e.g. ``msg``).
    ok_path: str = ""
    ok_value: str = ""
    message_path: str = ""
    params: dict[str, str] = Field(default_factory=dict)
    pagination: Pagination = Pagination()
    incremental: Incremental = Incremental()


class RestApi(StrictModel):
    """``[shop.rest]``: where the orders are, how pages and increments go, the auth, and the field mapping."""

    auth: Auth = Auth()
    orders: Resource
    fields: OrderFields
    #: Shop status value (as text) → paid / unpaid / refunded / cancelled / disputed.
    status_map: dict[str, OrderStatus]
    #: Timestamps: unix (seconds), iso, or a strftime pattern read in ``[shop] timezone``.
    time_format: str = "unix"
    #: Extra names to refuse on top of the built-in deny-list.
    deny: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_secrets(self) -> RestApi:
        extra = [re.compile(re.escape(word), re.I) for word in self.deny]
        for name, path in self.fields.model_dump().items():
            for part in path.split("."):
                if part and (DENY.search(part) or any(p.search(part) for p in extra)):
                    raise KeyedError(f"fields.{name}", f"{path!r} looks like a secret field (deny-list): not mapped")
        return self

    @field_validator("status_map", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


def dig(record: Any, path: str) -> Any:
    for part in path.split("."):
        if not part:
            return None
        if isinstance(record, dict):
            record = record.get(part)
        elif isinstance(record, list) and part.isdigit() and int(part) < len(record):
            record = record[int(part)]
        else:
            return None
    return record


class RestShopSettings(ShopSettings, RemoteTimeouts):
    """``[shop]`` with ``kind = "rest"``."""

    #: The API's root; ``[shop.rest]`` paths are relative to it.
    base_url: HttpUrl
    #: The declarative description of the API (see config.example.toml).
    rest: RestApi
    #: The zone strftime-formatted times are read (and date parameters written) in.
    timezone: TimeZone = "Asia/Shanghai"
    #: Re-read orders modified this many seconds before the cursor (date increments).
    lookback_seconds: Seconds = 300
    #: Pages one pass reads at most: a shop whose pages never end (or loop in a way no repeat shows) stops here with an
    #: error; the pages read are kept and the next pass goes on from the cursor.
    max_pages: Annotated[int, Field(ge=1)] = MAX_PAGES
    #: Points redemption: the request that makes a coupon and the look-up by code (:mod:`adapters.shops.rest_coupons`).
    coupons: RestCoupons | None = None


class RestShop(IssuesCoupons[RestCouponIssuer]):
    """Reads orders from a configured REST API. Capabilities: :class:`~adapters.checks.SelfCheck`,
    :class:`~adapters.coupons.CouponIssuer` (ready once ``[shop.coupons]`` is set)."""

    kind = "rest"
    settings = RestShopSettings

    def __init__(self, config: RestShopSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.api = config.rest
        self.zone = ZoneInfo(config.timezone)
        auth = self.api.auth
        headers: dict[str, str] = {}
        basic = None
        if auth.type == "bearer":
            headers["Authorization"] = f"Bearer {auth.token}"
        elif auth.type == "header":
            headers[auth.name] = auth.value
        elif auth.type == "basic":
            basic = (auth.username, auth.password)
        common: dict[str, Any] = {
            "headers": headers,
            "auth": basic,
            "timeout": config.timeout_seconds,
            "connect_timeout": config.connect_timeout_seconds,
            "max_retry_seconds": config.max_retry_seconds,
            "keys": "[shop]",
            "transport": transport,
        }
        self.client = RemoteClient(REMOTE, config.base_url, **common)
        # Coupon requests get a client of their own: one attempt each (adapters.shops.coupon_secrecy), same auth.
        coupon_client = RemoteClient(REMOTE, config.base_url, attempts=COUPON_ATTEMPTS, **common)
        signer = self.sign if auth.type == "md5_sign" else None
        self.coupons = RestCouponIssuer(config.coupons, coupon_client, dig, signer, config.base_url)

    # ---- requests ------------------------------------------------------------------------------------------------

    def sign(self, params: dict[str, Any]) -> dict[str, Any]:
        """发卡 reseller signature: md5 over the sorted ``k=v`` pairs plus the secret, lower-case hex."""
        auth = self.api.auth
        signed = {**params, auth.key_param: auth.key, auth.timestamp_param: str(int(time.time()))}
        query = "&".join(f"{k}={signed[k]}" for k in sorted(signed) if k != auth.sign_param and signed[k] != "")
        signed[auth.sign_param] = hashlib.md5(
            auth.sign_format.format(query=query, secret=auth.secret).encode()
        ).hexdigest()
        return signed

    def _get(self, url: str, params: dict[str, Any] | None) -> httpx.Response:
        if self.api.auth.type == "md5_sign":
            params = self.sign(dict(params or {}))
        return self.client.request("GET", url, params=params)

    def _pages(self, resource: Resource, params: dict[str, Any]) -> Iterator[list[Any]]:
        """The record lists of ``resource``, page by page, through a :class:`~adapters.shops.paging.PageGuard`: links
        are followed on the configured origin only, a page or cursor seen before stops the walk, and so does
        ``max_pages``."""
        paging = resource.pagination
        guard = PageGuard(REMOTE, self.config.base_url, resource.path, self.config.max_pages)
        params = {**resource.params, **params}
        url: str | None = resource.path
        page, offset, cursor = 1, 0, None
        page_id, label = f"page {page}", f"page {page}"
        while url is not None:
            guard.visit(page_id, label)
            query = dict(params) if paging.type != "next_url" or url == resource.path else None
            if query is not None:
                query[paging.size_param] = paging.size
                if paging.type == "page":
                    query[paging.page_param] = page
                elif paging.type == "offset":
                    query[paging.offset_param] = offset
                elif paging.type == "cursor" and cursor:
                    query[paging.cursor_param] = cursor
            response = self._get(url, query)
            body = json_body(REMOTE, resource.path, response)
            if resource.ok_path and str(dig(body, resource.ok_path)) != resource.ok_value:
                reason = dig(body, resource.message_path) if resource.message_path else None
                raise RemoteError(
                    REMOTE,
                    "GET",
                    resource.path,
                    response.status_code,
                    {"message": f"{resource.ok_path} = {dig(body, resource.ok_path)!r}: {reason or '?'}"},
                )
            records = dig(body, resource.records) if resource.records else body
            if not isinstance(records, list):
                raise RemoteError(
                    REMOTE,
                    "GET",
                    resource.path,
                    response.status_code,
                    {"message": f"no list at {resource.records!r} in the answer"},
                )
            yield records
            if paging.type == "page":
                total = response.headers.get(paging.total_pages_header) if paging.total_pages_header else None
                known = total is not None and total.isascii() and total.isdigit()
                done = (page >= int(total)) if known and total else len(records) < paging.size
                page += 1
                url, page_id, label = (None if done else resource.path), f"page {page}", f"page {page}"
            elif paging.type == "offset":
                offset += len(records)
                url = None if len(records) < paging.size else resource.path
                page_id = label = f"offset {offset}"
            elif paging.type == "cursor":
                try:
                    cursor = cursor_value(dig(body, paging.next_path))
                except ValueError as error:
                    raise guard.error(f"the next cursor at {paging.next_path!r}: {error}") from None
                url = resource.path if cursor and records else None
                page_id, label = f"cursor {cursor}", f"the cursor {cursor[:80]!r}" if cursor else ""
            else:
                if paging.type == "link":
                    try:
                        link = response.links.get("next", {}).get("url")
                    except Exception:  # a Link header too broken to read: no next page is named
                        link = None
                else:
                    link = dig(body, paging.next_path)
                following = guard.follow(response.url, link) if link else None
                url = str(following) if following is not None else None
                page_id = url or ""
                label = f"the page {shown_url(following)}" if following is not None else ""

    # ---- mapping -------------------------------------------------------------------------------------------------

    def time(self, value: Any) -> datetime:
        fmt = self.api.time_format
        if value in (None, ""):
            raise MalformedRecord("time missing")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise MalformedRecord(f"a time is text or a number, not a {type(value).__name__}")
        if fmt == "unix":
            return datetime.fromtimestamp(float(value), UTC)
        if fmt == "iso":
            return parse_iso(str(value))
        return datetime.strptime(str(value), fmt).replace(tzinfo=self.zone).astimezone(UTC)

    def parse(self, record: Any) -> Order:
        """One record as an :class:`Order`; anything it raises quarantines the record (see ``order_pages``)."""
        f = self.api.fields
        order_id = dig(record, f.id)
        if order_id in (None, "") or isinstance(order_id, bool) or not isinstance(order_id, (str, int)):
            raise MalformedRecord("id missing (or not text or a number)")
        raw_status = dig(record, f.status)
        status = self.api.status_map.get(str(raw_status)) if isinstance(raw_status, (str, int, float)) else None
        if status is None:
            raise MalformedRecord(f"unknown order status {shown(raw_status)} (add it to status_map)")
        email = dig(record, f.email)
        customer_id = str(dig(record, f.customer_id) or "") if f.customer_id else ""
        registered = customer_id.isascii() and customer_id.isdigit() and int(customer_id) > 0
        key = customer_key_for(
            int(customer_id) if registered else None,
            email if isinstance(email, str) else None,
        )
        if key is None:
            raise MalformedRecord("order without an email or customer id")
        modified = self.time(dig(record, f.modified_at))
        quantity = dig(record, f.quantity) if f.quantity else None
        return Order(
            id=str(order_id),
            customer_key=key,
            email=normalise_email(email) if isinstance(email, str) and email.strip() else None,
            status=status,
            total=(dig(record, f.total) or "0") if f.total else "0",
            currency=str(dig(record, f.currency) or "")[:8] if f.currency else "",
            created_at=self.time(dig(record, f.created_at)) if f.created_at else modified,
            modified_at=modified,
            lines=(
                OrderLine(
                    product_id=str(dig(record, f.product_id) or ""),
                    name=str(dig(record, f.product_name) or "")[:200] if f.product_name else "",
                    quantity=int(quantity or 1),
                ),
            ),
        )

    def _param_value(self, moment: datetime) -> str:
        fmt = self.api.orders.incremental.format
        if fmt == "unix":
            return str(int(moment.timestamp()))
        if fmt == "iso":
            return iso(moment)
        return moment.astimezone(self.zone).strftime(fmt)

    # ---- the adapter protocol ------------------------------------------------------------------------------------

    def order_pages(self, cursor: str | None, since: datetime | None = None) -> Iterator[OrderPage]:
        inc = self.api.orders.incremental
        params: dict[str, Any] = {}
        bound: Any = None
        if inc.type == "id_watermark":
            bound = int(cursor) if cursor else 0
            if inc.param:
                params[inc.param] = bound
        elif cursor or since:
            bound = parse_iso(cursor) if cursor else since
            if cursor:
                bound = bound - timedelta(seconds=self.config.lookback_seconds)
            if inc.type == "date_param" and inc.param:
                params[inc.param] = self._param_value(bound)
        newest: Any = (
            (int(cursor) if cursor else 0) if inc.type == "id_watermark" else (parse_iso(cursor) if cursor else None)
        )
        for records in self._pages(self.api.orders, params):
            read, quarantined = read_records(ORDERS, records, self.parse, lambda r: dig(r, self.api.fields.id))
            orders = []
            for order in read:
                if inc.type == "id_watermark":
                    if not (order.id.isascii() and order.id.isdigit()) or int(order.id) <= (bound or 0):
                        continue
                    newest = max(newest, int(order.id))
                else:
                    if inc.type == "client_filter" and bound is not None and order.modified_at < bound:
                        continue
                    newest = max(newest, order.modified_at) if newest else order.modified_at
                orders.append(order)
            mark = (str(newest) if inc.type == "id_watermark" else iso(newest)) if newest else None
            yield OrderPage(orders=orders, quarantined=quarantined, cursor=mark)

    def check(self, context: CheckContext | None = None) -> Iterator[Check]:
        """:class:`~adapters.checks.SelfCheck`: the first page of orders, with the configured auth, and whether the
        records and mapped fields are where the config says (:mod:`adapters.shops.rest_check`); with
        ``[shop.coupons]``, the coupon look-up answers."""
        orders, paging = self.api.orders, self.api.orders.pagination
        query: dict[str, Any] = {**orders.params, paging.size_param: paging.size}
        if paging.type == "page":  # the first page, as order_pages asks for it
            query[paging.page_param] = 1
        elif paging.type == "offset":
            query[paging.offset_param] = 0
        fields = {name: path for name, path in self.api.fields.model_dump().items() if path}
        target = RestTarget(
            self._get, dig, self.config.base_url, self.api.auth.type, orders.path, query, orders.records,
            orders.ok_path, orders.ok_value, orders.message_path, fields, self.api.status_map,
        )  # fmt: skip
        yield from check_rest(target)
        yield from self.coupons.check()

    def customer_profiles(self, keys: Sequence[str]) -> tuple[list[Customer], list[str]]:
        return [], list(keys)

    def customer_pages(self, cursor: str | None = None) -> Iterator[CustomerPage]:
        return iter(())

    def close(self) -> None:
        self.client.close()
        self.coupons.client.close()
