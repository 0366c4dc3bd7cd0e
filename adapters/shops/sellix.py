"""Sellix shop adapter (``kind = "sellix"``): orders, customers' emails and feedback over the Sellix API v1.

Reference: ``shared/specs/shops/sellix/samples`` (the 2020 documentation's objects and envelopes) and the notes in
``shops/README.md`` (the current API answers string statuses). Every answer is an envelope
``{"status", "data", "message", "error"}``; a non-200 ``status`` inside it is an error even on HTTP 200. Requests stay
inside Sellix's documented 10-second windows (50 requests each). ``Authorization: Bearer <api key>``, and
``X-Sellix-Merchant`` when the account owns several shops.

Orders come sorted by ``updated_at``, newest first, and there is no documented "updated after" filter, so the cursor
is client-side: the walk stops at the first order older than the cursor (less ``lookback_seconds``), and the new cursor
is committed with the last page only (a crash re-walks from the newest, which is cheap). Should a shop list by creation
time instead, an old order updated late would be missed by ``sync``; ``backfill`` reads everything and heals it. Allow-list: order id, email, status, total, currency,
product, quantity and times. Serials (the delivered keys), payment ids and secrets, IPs, crypto addresses and
custom fields are never read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from pydantic import Field

from adapters.base import CustomerPage, MalformedRecord, OrderPage, ReviewPage, one_per_id
from adapters.checks import Check, CheckContext
from adapters.coupons import IssuesCoupons
from adapters.shops.paging import MAX_PAGES, PageGuard, json_body
from adapters.shops.quarantine import known_id, read_records, shown
from adapters.shops.sellix_check import check_sellix
from adapters.shops.sellix_coupons import SellixCoupons
from connector.core.budget import RequestBudget
from connector.core.clock import iso, parse_iso
from connector.core.http import RemoteClient, RemoteError
from connector.core.models import (
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Quarantined,
    Review,
    customer_key_for,
    normalise_email,
)
from connector.core.settings import HttpUrl, RemoteTimeouts, RequiredStr, Seconds, ShopSettings

DEFAULT_API = "https://dev.sellix.io/v1"
REMOTE = "sellix"
ORDERS = "sellix.orders"
FEEDBACK = "sellix.feedback"
PRODUCTS = "sellix.products"
#: 9999-12-31T23:59:59Z: a unix time beyond it is no date (the canonical model bounds it much closer).
_LAST_UNIX_TIME = 253_402_300_800

#: 2020 documentation: integers; the current API: strings.
STATUS_MAP: dict[Any, OrderStatus] = {
    1: OrderStatus.PAID,
    "COMPLETED": OrderStatus.PAID,
    0: OrderStatus.UNPAID,
    "PENDING": OrderStatus.UNPAID,
    3: OrderStatus.UNPAID,
    "WAITING_FOR_CONFIRMATIONS": OrderStatus.UNPAID,
    4: OrderStatus.UNPAID,
    "PARTIAL": OrderStatus.UNPAID,
    2: OrderStatus.CANCELLED,
    "CANCELLED": OrderStatus.CANCELLED,
    "VOIDED": OrderStatus.CANCELLED,
    "REFUNDED": OrderStatus.REFUNDED,
    "REVERSED": OrderStatus.REFUNDED,
    "DISPUTED": OrderStatus.DISPUTED,
}


def _time(value: Any, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < _LAST_UNIX_TIME:
        raise MalformedRecord(f"{field} is not a unix time")
    return datetime.fromtimestamp(value, UTC)


def _uniqid(record: Any) -> str:
    uniqid = record.get("uniqid") if isinstance(record, dict) else None
    if not isinstance(uniqid, (str, int)) or isinstance(uniqid, bool) or uniqid in ("", 0):
        raise MalformedRecord("uniqid missing")
    return str(uniqid)


def parse_order(record: dict[str, Any]) -> Order:
    uniqid = _uniqid(record)
    raw_status = record.get("status")
    status = STATUS_MAP.get(raw_status) if isinstance(raw_status, (str, int)) else None
    if status is None:
        raise MalformedRecord(f"unknown order status {shown(raw_status)}")
    email = record.get("customer_email")
    if not isinstance(email, str) or not email.strip():
        raise MalformedRecord("order without a customer_email")
    created = _time(record.get("created_at"), "created_at")
    updated = record.get("updated_at") or record.get("created_at")
    key = customer_key_for(None, email)
    assert key is not None
    return Order(
        id=uniqid,
        customer_key=key,
        email=normalise_email(email),
        status=status,
        total=record.get("total") or "0",
        currency=str(record.get("currency") or "")[:8],
        created_at=created,
        modified_at=_time(updated, "updated_at"),
        lines=(
            OrderLine(
                product_id=str(record.get("product_id") or ""), name="", quantity=int(record.get("quantity") or 1)
            ),
        ),
    )


def parse_feedback(record: dict[str, Any]) -> Review:
    uniqid = _uniqid(record)
    score = record.get("score")
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 5:
        raise MalformedRecord(f"score {shown(score, 10)} is not 0..5")
    invoice = record.get("invoice")
    email = invoice.get("customer_email") if isinstance(invoice, dict) else None
    return Review(
        id=uniqid,
        product_id=str(record.get("product_id") or ""),
        email=normalise_email(email) if isinstance(email, str) and email.strip() else None,
        reviewer="",
        rating=score,
        text=str(record.get("message") or "")[:20000],
        status="approved",
        created_at=_time(record.get("created_at"), "created_at"),
    )


def parse_product(record: dict[str, Any]) -> Product:
    uniqid = _uniqid(record)
    return Product(id=uniqid, name=str(record.get("title") or uniqid)[:200])


def _uniqid_or_none(record: Any) -> str | None:
    try:
        return _uniqid(record)
    except MalformedRecord:
        return None


class SellixSettings(ShopSettings, RemoteTimeouts):
    """``[shop]`` with ``kind = "sellix"``."""

    #: The API key (Settings > Security), and the shop name for ``X-Sellix-Merchant`` when the account has several.
    api_key: RequiredStr
    merchant: str = ""
    #: The API root.
    base_url: HttpUrl = DEFAULT_API
    #: Orders updated this many seconds before the cursor are read again (the cursor is client-side).
    lookback_seconds: Seconds = 300
    #: Pages one walk reads at most (a shop that ignores ``page`` would answer the same page for ever).
    max_pages: Annotated[int, Field(ge=1)] = MAX_PAGES


class SellixShop(IssuesCoupons[SellixCoupons]):
    """Reads orders and feedback from Sellix. Capabilities: :class:`~adapters.base.OrderLookup`,
    :class:`~adapters.base.ReviewSource`, :class:`~adapters.checks.SelfCheck`, :class:`~adapters.coupons.CouponIssuer`
    (:mod:`adapters.shops.sellix_coupons`: no email restriction, the same key)."""

    kind = "sellix"
    settings = SellixSettings

    def __init__(self, config: SellixSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.transport = transport
        self.client = self._client(config.merchant)
        self.coupons = SellixCoupons(self.client, self._pages)

    def _client(self, merchant: str) -> RemoteClient:
        config = self.config
        headers = {"Authorization": f"Bearer {config.api_key}"}
        if merchant:
            headers["X-Sellix-Merchant"] = merchant
        return RemoteClient(
            REMOTE,
            config.base_url,
            headers=headers,
            timeout=config.timeout_seconds,
            connect_timeout=config.connect_timeout_seconds,
            max_retry_seconds=config.max_retry_seconds,
            keys="[shop]",
            transport=self.transport,
            budget=RequestBudget(50, window=10.0),
        )

    def _data(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.client.request("GET", path, params=params)
        body = json_body(REMOTE, path, response)
        if not isinstance(body, dict) or body.get("status") != 200:
            status = body.get("status", 0) if isinstance(body, dict) else 0
            message = (body.get("error") or body.get("message")) if isinstance(body, dict) else body
            code = status if isinstance(status, int) and not isinstance(status, bool) else 0
            raise RemoteError(REMOTE, "GET", path, code, {"message": message or "error envelope"})
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise RemoteError(REMOTE, "GET", path, response.status_code, {"message": "data is not an object"})
        return data

    def _pages(self, path: str, key: str) -> Iterator[list[Any]]:
        guard = PageGuard(REMOTE, self.config.base_url, path, self.config.max_pages)
        page, previous = 1, None
        while True:
            guard.visit(str(page), f"page {page}")
            data = self._data(path, {"page": page})
            records = data.get(key) if key in data else data.get(key + "s", [])
            if not records:
                return
            if not isinstance(records, list):
                raise guard.error(f"{key!r} is not a list")
            ids = [_uniqid_or_none(record) for record in records]
            if ids == previous:
                raise guard.error(f"page {page} answered the records of page {page - 1}: the shop ignores paging")
            previous = ids
            yield records
            page += 1

    def order_pages(self, cursor: str | None, since: datetime | None = None) -> Iterator[OrderPage]:
        committed = parse_iso(cursor) if cursor else None
        stop = (committed - timedelta(seconds=self.config.lookback_seconds)) if committed else since
        newest = committed
        for records in self._pages("/orders", "orders"):
            read, quarantined = read_records(ORDERS, records, parse_order, _uniqid)
            orders, older = [], 0
            for order in read:
                if stop is not None and order.modified_at < stop:
                    older += 1
                    continue
                orders.append(order)
                newest = max(newest, order.modified_at) if newest else order.modified_at
            yield OrderPage(orders=orders, quarantined=quarantined, cursor=None)
            if older:  # sorted newest first: once one order is older than the cursor, the rest are too
                break
        yield OrderPage(orders=(), cursor=iso(newest) if newest else None)

    def orders_by_id(self, ids: Sequence[str]) -> OrderPage:
        orders: list[Order] = []
        quarantined: list[Quarantined] = []
        for uniqid in ids:
            record = self._data(f"/orders/{uniqid}").get("order") or {}
            read, bad = read_records(ORDERS, [record], parse_order, known_id(uniqid))
            orders += read
            quarantined += bad
        return OrderPage(orders=orders, quarantined=quarantined, cursor=None)

    def review_pages(self) -> Iterator[ReviewPage]:
        for records in self._pages("/feedback", "feedback"):
            reviews, quarantined = read_records(FEEDBACK, records, parse_feedback, _uniqid)
            yield ReviewPage(reviews=reviews, quarantined=quarantined)

    def products(self, ids: Sequence[str]) -> list[Product]:
        wanted = set(ids)
        found: list[Product] = []
        for records in self._pages("/products", "products"):
            chosen = [r for r in records if isinstance(r, dict) and r.get("uniqid") in wanted]
            found += read_records(PRODUCTS, chosen, parse_product, _uniqid)[0]  # an unreadable product is left out
        return list(one_per_id(found, lambda product: product.id))

    def customer_profiles(self, keys: Sequence[str]) -> tuple[list[Customer], list[str]]:
        return [], list(keys)  # buyers are known by their order email

    def customer_pages(self, cursor: str | None = None) -> Iterator[CustomerPage]:
        return iter(())

    def check(self, context: CheckContext | None = None) -> Iterator[Check]:
        """:class:`~adapters.checks.SelfCheck`: the key is accepted (for ``merchant``), orders and feedback answer
        (:mod:`adapters.shops.sellix_check`)."""
        return check_sellix(self.client, self.config.base_url, self.config.merchant, lambda: self._client(""))

    def close(self) -> None:
        self.client.close()
