"""WooCommerce REST API v3 shop adapter (``kind = "woocommerce"``).

Orders are read incrementally with ``modified_after`` + ``orderby=modified&order=asc`` + ``dates_are_gmt=true``.
Paging a list sorted by modification time while the shop keeps modifying orders would skip records (an order that
moves to the end shifts the next page down by one), so the adapter walks the stream by *bound* instead of by page
number: each request asks for orders modified at or after the newest timestamp seen so far, page 1. WordPress stores
seconds, so orders sharing the bound's second are read again (harmless upserts); only when a whole page shares one
second does it step to page 2 of the same bound.

The trash: WooCommerce lists no trashed order under ``status=any`` (the default) or ``include=`` (citations in
``sandbox/shop/orders.py``); trashing moves ``date_modified``. So each walk first reads ``status=trash`` since the same
bound (a trashed order is stored as ``deleted``), and a by-id read asks ``status=trash`` for the ids ``include=`` left
out; an id neither answers is deleted for good (:class:`~adapters.base.OrderPresence`). A restored order moves
``date_modified`` again and the walk reads it with its old status.

Allow-list: from an order only id, customer id, the billing *email*, status, total, currency, dates and line items'
product id / name / quantity are read. Billing and shipping addresses, phone, payment method, transaction id, IP and
every ``meta_data`` entry (where card-key plugins put the delivered codes, 卡密) are never copied. Every list is
requested with ``_fields`` (:mod:`adapters.shops.woocommerce_fields`), so most of that never even leaves the shop.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from pydantic import Field

from adapters.base import CustomerPage, MalformedRecord, OrderPage, ReviewPage, one_per_id
from adapters.checks import Check, CheckContext
from adapters.coupons import IssuesCoupons
from adapters.shops.paging import MAX_PAGES, PageGuard, json_body
from adapters.shops.quarantine import json_id, read_records, shown
from adapters.shops.woocommerce_check import check_woocommerce
from adapters.shops.woocommerce_coupons import WooCommerceCoupons
from adapters.shops.woocommerce_fields import (
    CUSTOMER_FIELDS,
    ORDER_FIELDS,
    PRODUCT_FIELDS,
    REVIEW_FIELDS,
    fields_param,
)
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
    bounded_time,
    customer_key_for,
    normalise_email,
)
from connector.core.settings import HttpUrl, PageSize, RemoteTimeouts, Seconds, ShopSettings

API = "/wp-json/wc/v3"
REMOTE = "woocommerce"
ORDERS = "woocommerce.orders"
CUSTOMERS = "woocommerce.customers"
REVIEWS = "woocommerce.reviews"
PRODUCTS = "woocommerce.products"
_TAG = re.compile(r"<[^>]+>")
#: The ``_fields`` of each list read (:mod:`adapters.shops.woocommerce_fields`).
_ORDERS = fields_param(ORDER_FIELDS)
_CUSTOMERS = fields_param(CUSTOMER_FIELDS)
_PRODUCTS = fields_param(PRODUCT_FIELDS)
_REVIEWS = fields_param(REVIEW_FIELDS)
#: A WooCommerce record's id (every object has an integer ``id``).
_id = json_id("id")

#: WooCommerce's core statuses → canonical. Paid = processing or completed (payment received).
STATUS_MAP: dict[str, OrderStatus] = {
    "processing": OrderStatus.PAID,
    "completed": OrderStatus.PAID,
    "pending": OrderStatus.UNPAID,
    "on-hold": OrderStatus.UNPAID,
    "failed": OrderStatus.UNPAID,
    "checkout-draft": OrderStatus.UNPAID,
    "refunded": OrderStatus.REFUNDED,
    "cancelled": OrderStatus.CANCELLED,
    "trash": OrderStatus.DELETED,
}


def _gmt(record: dict[str, Any], field: str) -> datetime:
    value = record.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedRecord(f"{field} missing")
    try:
        return parse_iso(value)  # *_gmt fields carry no offset and are UTC
    except ValueError:
        raise MalformedRecord(f"{field} is not an ISO-8601 date") from None
    except OverflowError:  # 9999-12-31T23:59:59-05:00: no date in UTC
        raise MalformedRecord(f"{field} is out of the calendar's range") from None


def walk_stamp(record: Any) -> datetime | None:
    """A quarantined order's ``date_modified_gmt`` when it is a plausible date (it still moves the walk forward);
    None otherwise: a year-9999 date must not carry the cursor past every order still to come."""
    try:
        return bounded_time(_gmt(record, "date_modified_gmt"))
    except Exception:  # the record is broken already; its date helps or it does not
        return None


def parse_order(record: dict[str, Any]) -> Order:
    """Turn one WooCommerce order into a canonical :class:`Order` (allow-listed fields only)."""
    if not isinstance(record, dict) or not isinstance(record.get("id"), int):
        raise MalformedRecord("id missing or not an integer")
    status = record.get("status")
    if not isinstance(status, str) or status not in STATUS_MAP:
        raise MalformedRecord(f"unknown order status {shown(status)}")
    billing = record.get("billing") or {}
    email = billing.get("email") if isinstance(billing, dict) else None
    email = normalise_email(email) if isinstance(email, str) and email.strip() else None
    customer_id = record.get("customer_id") or 0
    if not isinstance(customer_id, int):
        raise MalformedRecord("customer_id is not an integer")
    key = customer_key_for(customer_id, email)
    if key is None:
        raise MalformedRecord("guest order without a billing email")
    lines = []
    for item in record.get("line_items") or []:
        if not isinstance(item, dict) or not isinstance(item.get("product_id"), int):
            raise MalformedRecord("line item without an integer product_id")
        lines.append(
            OrderLine(
                product_id=item["product_id"],
                name=str(item.get("name") or "")[:200],
                quantity=int(item.get("quantity") or 1),
            )
        )
    return Order(
        id=str(record["id"]),
        # "number" differs from the id when a sequential-order-number plugin is installed; buyers see "number".
        number=str(record.get("number") or "") or None,
        customer_key=key,
        email=email,
        status=STATUS_MAP[status],
        total=record.get("total") or "0",
        currency=str(record.get("currency") or "")[:8],
        created_at=_gmt(record, "date_created_gmt"),
        modified_at=_gmt(record, "date_modified_gmt"),
        lines=tuple(lines),
    )


def parse_customer(record: dict[str, Any]) -> Customer:
    if not isinstance(record, dict) or not isinstance(record.get("id"), int):
        raise MalformedRecord("id missing or not an integer")
    email = record.get("email")
    username = record.get("username")
    return Customer(
        key=f"c:{record['id']}",
        email=normalise_email(email) if isinstance(email, str) and email.strip() else None,
        username=username if isinstance(username, str) and username else None,
    )


def parse_product(record: dict[str, Any]) -> Product:
    if not isinstance(record, dict) or not isinstance(record.get("id"), int):
        raise MalformedRecord("id missing or not an integer")
    permalink = record.get("permalink")
    price = record.get("price")
    status = record.get("stock_status")
    quantity = record.get("stock_quantity")
    count = max(int(quantity), 0) if isinstance(quantity, int | float) and not isinstance(quantity, bool) else None
    return Product(
        id=record["id"],
        name=str(record.get("name") or f"#{record['id']}")[:200],
        permalink=permalink if isinstance(permalink, str) and permalink else None,
        # "" is WooCommerce's "no price set" (a product not for sale yet)
        price=price if isinstance(price, str | int | float) and not isinstance(price, bool) and price != "" else None,
        # a backorder can still be bought: in stock for the card
        in_stock={"instock": True, "onbackorder": True, "outofstock": False}.get(status)
        if isinstance(status, str)
        else None,
        stock_count=count,
    )


def html_to_text(value: str) -> str:
    """WooCommerce answers a review as rendered HTML (``<p>…</p>``); keep the words, drop the markup."""
    text = re.sub(r"<br\s*/?>|</p>\s*<p[^>]*>", "\n", value, flags=re.I)
    return html.unescape(_TAG.sub("", text)).strip()


def parse_review(record: dict[str, Any]) -> Review:
    if not isinstance(record, dict) or not isinstance(record.get("id"), int):
        raise MalformedRecord("id missing or not an integer")
    if not isinstance(record.get("product_id"), int):
        raise MalformedRecord("product_id missing")
    rating = record.get("rating")
    if not isinstance(rating, int) or not 0 <= rating <= 5:
        raise MalformedRecord(f"rating {shown(rating, 10)} is not 0..5")
    email = record.get("reviewer_email")
    return Review(
        id=str(record["id"]),
        product_id=record["product_id"],
        email=normalise_email(email) if isinstance(email, str) and email.strip() else None,
        reviewer=str(record.get("reviewer") or "")[:100],
        rating=rating,
        text=html_to_text(str(record.get("review") or ""))[:20000],
        status=str(record.get("status") or "approved")[:16],
        created_at=_gmt(record, "date_created_gmt"),
    )


class WooCommerceSettings(ShopSettings, RemoteTimeouts):
    """``[shop]`` with ``kind = "woocommerce"``."""

    #: The site root; the REST API lives under ``/wp-json/wc/v3``.
    base_url: HttpUrl
    #: WooCommerce > Settings > Advanced > REST API: a key with Read permission is enough.
    consumer_key: str = ""
    consumer_secret: str = ""
    #: Orders per page (WooCommerce allows at most 100).
    page_size: PageSize = 100
    #: Re-read orders modified this many seconds before the cursor (late commits, clock skew between shop nodes).
    lookback_seconds: Seconds = 300
    #: Pages one walk reads at most (a shop that ignores ``page`` would answer full pages for ever); the pages read are
    #: kept and the next pass goes on from the cursor.
    max_pages: Annotated[int, Field(ge=1)] = MAX_PAGES
    #: Points redemption: a second key with Read/Write permission, used for ``/coupons`` only (the key above stays
    #: read-only). Without it the shop makes no coupons and ``cardbridge check`` says so.
    coupon_consumer_key: str = ""
    coupon_consumer_secret: str = ""


class WooCommerceShop(IssuesCoupons[WooCommerceCoupons]):
    """Reads orders, customers and reviews from a WooCommerce store. Capabilities: :class:`~adapters.base.OrderLookup`,
    :class:`~adapters.base.OrderPresence`, :class:`~adapters.base.ReviewSource`, :class:`~adapters.checks.SelfCheck`,
    :class:`~adapters.coupons.CouponIssuer` (:mod:`adapters.shops.woocommerce_coupons`)."""

    kind = "woocommerce"
    settings = WooCommerceSettings

    def __init__(self, config: WooCommerceSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self.client = RemoteClient(
            REMOTE,
            config.base_url + API,
            auth=(config.consumer_key, config.consumer_secret),
            timeout=config.timeout_seconds,
            connect_timeout=config.connect_timeout_seconds,
            max_retry_seconds=config.max_retry_seconds,
            keys="[shop]",
            transport=transport,
        )
        self.coupons = WooCommerceCoupons(
            config.base_url + API,
            config.coupon_consumer_key,
            config.coupon_consumer_secret,
            timeout=config.timeout_seconds,
            connect_timeout=config.connect_timeout_seconds,
            max_retry_seconds=config.max_retry_seconds,
            transport=transport,
        )

    def _list(self, path: str, params: dict[str, Any]) -> list[Any]:
        response = self.client.request("GET", path, params=params)
        body = json_body(REMOTE, path, response)
        if not isinstance(body, list):
            raise RemoteError(
                REMOTE,
                "GET",
                path,
                response.status_code,
                {"message": f"expected a JSON list, got {type(body).__name__}"},
            )
        return body

    def order_pages(self, cursor: str | None, since: datetime | None = None) -> Iterator[OrderPage]:
        committed = parse_iso(cursor) if cursor else None
        if committed is not None:
            bound: datetime | None = committed - timedelta(seconds=self.config.lookback_seconds)
        else:
            bound = since.astimezone(UTC) if since else None
        # The trash first: its pages keep the cursor where it is, so a walk that fails later starts from the same bound
        # and reads the trash again.
        yield from self._trash_pages(bound)
        newest = committed
        page = 1
        per_page = self.config.page_size
        guard = PageGuard(REMOTE, self.config.base_url, "/orders", self.config.max_pages)
        previous: list[Any] = []
        while True:
            params: dict[str, Any] = {
                "per_page": per_page,
                "page": page,
                "orderby": "modified",
                "order": "asc",
                "dates_are_gmt": "true",
                "_fields": _ORDERS,
            }
            if bound is not None:
                # `modified_after` is exclusive and WordPress keeps whole seconds: one second earlier = "at or after".
                params["modified_after"] = (bound - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
            guard.visit(f"{params.get('modified_after')} {page}", f"page {page}")
            records = self._list("/orders", params)
            ids = [_id(record) for record in records]
            if page > 1 and records and ids == previous:
                raise guard.error(f"page {page} answered the orders of page {page - 1}: the shop ignores paging")
            previous = ids
            orders, quarantined = read_records(ORDERS, records, parse_order, _id)
            page_newest = max((order.modified_at for order in orders), default=None)
            if quarantined:  # a record with a broken status but a good date still moves the walk forward
                stamps = [stamp for record in records if (stamp := walk_stamp(record)) is not None]
                page_newest = max([*stamps, *([page_newest] if page_newest else [])], default=None)
            if page_newest is not None:
                newest = max(newest, page_newest) if newest else page_newest
            yield OrderPage(orders=orders, quarantined=quarantined, cursor=iso(newest) if newest else None)
            if len(records) < per_page:
                return
            if page_newest is not None and (bound is None or page_newest > bound):
                bound, page = page_newest, 1
            else:
                page += 1  # a whole page shares the bound's second: step through that second by page number

    def _trash_pages(self, bound: datetime | None) -> Iterator[OrderPage]:
        """Orders moved to the trash since ``bound`` (all of them without one), by page number: trashing moves an order
        to the end of ``modified`` ascending, so one trashed during the walk is not skipped."""
        params: dict[str, Any] = {
            "status": "trash",
            "orderby": "modified",
            "order": "asc",
            "dates_are_gmt": "true",
            "_fields": _ORDERS,
        }
        if bound is not None:
            params["modified_after"] = (bound - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
        for records in self._pages("/orders", params, self.config.page_size):
            orders, quarantined = read_records(ORDERS, records, parse_order, _id)
            yield OrderPage(orders=orders, quarantined=quarantined, cursor=None)

    def orders_by_id(self, ids: Sequence[str]) -> OrderPage:
        """Re-read specific orders (a webhook said they changed); the cursor is not moved. ``include=`` leaves trashed
        orders out, so the ids it did not answer are asked for again with ``status=trash``; an id neither read answers
        is deleted for good."""
        orders: list[Order] = []
        quarantined: list[Quarantined] = []
        for start in range(0, len(ids), 100):
            chunk = [str(i) for i in ids[start : start + 100]]
            for status in ("any", "trash"):
                params = {"include": ",".join(chunk), "per_page": 100, "status": status, "_fields": _ORDERS}
                records = self._list("/orders", params)
                read, bad = read_records(ORDERS, records, parse_order, _id)
                orders += read
                quarantined += bad
                answered = {order.id for order in read} | {record.record_id for record in bad}
                chunk = [i for i in chunk if i not in answered]
                if not chunk:
                    break
        return OrderPage(orders=orders, quarantined=quarantined, cursor=None)

    def orders_present(self, ids: Sequence[str]) -> OrderPage:
        """:class:`~adapters.base.OrderPresence`: :meth:`orders_by_id` answers every order the shop still has."""
        return self.orders_by_id(ids)

    def customer_profiles(self, keys: Sequence[str]) -> tuple[list[Customer], list[str]]:
        ids = [int(key[2:]) for key in keys if key.startswith("c:")]
        found: list[Customer] = []
        for start in range(0, len(ids), 100):
            chunk = ids[start : start + 100]
            params = {"include": ",".join(map(str, chunk)), "per_page": 100, "role": "all", "_fields": _CUSTOMERS}
            records = self._list("/customers", params)
            found += read_records(CUSTOMERS, records, parse_customer, _id)[0]  # an unreadable profile stays missing
        found = list(one_per_id(found, lambda customer: customer.key))
        known = {c.key for c in found}
        return found, [key for key in keys if key not in known]

    def _pages(self, path: str, params: dict[str, Any], per_page: int = 100) -> Iterator[list[Any]]:
        """A list read by page number (customers, reviews, the trash) until a short page, through a page guard."""
        guard = PageGuard(REMOTE, self.config.base_url, path, self.config.max_pages)
        page, previous = 1, None
        while True:
            guard.visit(str(page), f"page {page}")
            records = self._list(path, {**params, "per_page": per_page, "page": page})
            ids = [_id(record) for record in records]
            if records and ids == previous:
                raise guard.error(f"page {page} answered the records of page {page - 1}: the shop ignores paging")
            previous = ids
            yield records
            if len(records) < per_page:
                return
            page += 1

    def customer_pages(self, cursor: str | None = None) -> Iterator[CustomerPage]:
        # Customers have no modified (or "id after") filter: a backfill scans them all by id, ascending; ``cursor``
        # cannot be honoured and is ignored.
        params = {"orderby": "id", "order": "asc", "role": "all", "_fields": _CUSTOMERS}
        for records in self._pages("/customers", params):
            customers, quarantined = read_records(CUSTOMERS, records, parse_customer, _id)
            yield CustomerPage(customers=customers, quarantined=quarantined)

    def review_pages(self) -> Iterator[ReviewPage]:
        params = {"status": "all", "orderby": "id", "order": "asc", "_fields": _REVIEWS}
        for records in self._pages("/products/reviews", params):
            reviews, quarantined = read_records(REVIEWS, records, parse_review, _id)
            yield ReviewPage(reviews=reviews, quarantined=quarantined)

    def products(self, ids: Sequence[str]) -> list[Product]:
        found: list[Product] = []
        for start in range(0, len(ids), 100):
            chunk = list(ids[start : start + 100])
            params = {"include": ",".join(map(str, chunk)), "per_page": 100, "_fields": _PRODUCTS}
            records = self._list("/products", params)
            found += read_records(PRODUCTS, records, parse_product, _id)[0]  # an unreadable product is left out
        return list(one_per_id(found, lambda product: product.id))

    def catalogue(self) -> Iterator[list[Product]]:
        """:class:`~adapters.base.Catalogue`: the published products, by id, 100 a page."""
        params = {"status": "publish", "orderby": "id", "order": "asc", "_fields": _PRODUCTS}
        for records in self._pages("/products", params):
            yield read_records(PRODUCTS, records, parse_product, _id)[0]  # an unreadable product is left out

    def check(self, context: CheckContext | None = None) -> Iterator[Check]:
        """:class:`~adapters.checks.SelfCheck`: the API answers, the key is accepted, its user may read orders,
        customers and reviews (:mod:`adapters.shops.woocommerce_check`)."""
        yield from check_woocommerce(self.client, self.config.base_url + API)
        if self.coupons.configured:
            yield from self.coupons.check()

    def close(self) -> None:
        self.client.close()
        self.coupons.close()
