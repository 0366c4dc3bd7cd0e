"""The shop's data: products, customers, reviews as dicts, orders compactly (:class:`Order`, rendered per request)
with a sorted ``(modified, id)`` index so 100,000 orders page quickly. Guarded by ``ShopState.lock``; callers hold
it."""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo


@dataclass
class Order:
    id: int
    customer_id: int
    email: str
    first_name: str
    last_name: str
    status: str
    items: list[tuple[int, int]]
    created: int  # unix seconds, UTC
    modified: int
    phone: str
    address: str
    city: str
    ip: str
    transaction_id: str
    payment: tuple[str, str]
    secrets: list[str] = field(default_factory=list)
    raw_status: str | None = None  # set by corrupt_order: answered verbatim
    #: The status before the order went to the trash (WooCommerce keeps it as ``_wp_trash_meta_status``).
    trashed_from: str | None = None
    #: The coupons the order used, as ``coupon_lines`` answers them (``POST /orders``, :mod:`sandbox.shop.coupons`).
    coupon_lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(eq=False)
class ShopState:
    tz: ZoneInfo
    clock: Callable[[], datetime]
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    rng: random.Random = field(default_factory=lambda: random.Random(20261125))
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    reviews: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: ``(modified, order id)``, sorted: the index the order list pages through.
    by_modified: list[tuple[int, int]] = field(default_factory=list)
    #: Ids of the orders in the trash (lists leave them out unless asked for ``status=trash``).
    trashed: set[int] = field(default_factory=set)
    #: False: a site older than WordPress 4.8 (no ``rest_filter_response_fields()``): ``_fields`` is ignored and every
    #: response is answered whole.
    honour_fields: bool = True
    next_ids: dict[str, int] = field(
        default_factory=lambda: {"product": 10, "customer": 100, "order": 1000, "review": 500}
    )

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def stamp(self) -> int:
        return int(self.now().timestamp())

    def take_id(self, kind: str) -> int:
        self.next_ids[kind] += 1
        return self.next_ids[kind]

    def add_order(self, order: Order) -> None:
        self.orders[order.id] = order
        if order.status == "trash":
            self.trashed.add(order.id)
        bisect.insort(self.by_modified, (order.modified, order.id))

    def touch(self, order: Order, stamp: int | None = None) -> None:
        """``date_modified`` moves to now (never backwards), and the index follows."""
        self.by_modified.remove((order.modified, order.id))
        order.modified = max(stamp if stamp is not None else self.stamp(), order.modified)
        bisect.insort(self.by_modified, (order.modified, order.id))

    def set_status(self, order_id: int, status: str) -> None:
        """Change an order's status as wp-admin does (a refund, a completion): ``date_modified`` moves to now."""
        order = self.orders[order_id]
        if status == "trash":
            self.trash(order_id)
            return
        order.status = status
        order.raw_status = order.trashed_from = None
        self.trashed.discard(order_id)
        self.touch(order)

    def trash(self, order_id: int) -> bool:
        """Move an order to the trash as WooCommerce does; False when it is there already.

        woocommerce/woocommerce plugins/woocommerce/src/Internal/DataStores/Orders/OrdersTableDataStore.php
        ``trash_order()``: the previous status is kept as ``_wp_trash_meta_status``, the status becomes ``trash`` and
        ``date_updated_gmt`` (the REST ``date_modified``) moves to now (the posts table does the same through
        ``wp_trash_post()`` → ``wp_update_post()``).
        """
        order = self.orders[order_id]
        if order.status == "trash":
            return False
        order.trashed_from = order.raw_status or order.status
        order.status, order.raw_status = "trash", None
        self.trashed.add(order_id)
        self.touch(order)
        return True

    def untrash(self, order_id: int) -> None:
        """Restore a trashed order to the status it had (``untrash_order()`` saves it: ``date_modified`` moves)."""
        order = self.orders[order_id]
        if order.status == "trash":
            order.status, order.trashed_from = order.trashed_from or "pending", None
            self.trashed.discard(order_id)
            self.touch(order)

    def delete(self, order_id: int) -> None:
        """Delete an order for good (``delete( true )``): it is in no list and ``GET /orders/{id}`` answers 404."""
        order = self.orders.pop(order_id)
        self.trashed.discard(order_id)
        self.by_modified.remove((order.modified, order.id))

    def dates(self, stamp: int) -> tuple[str, str]:
        """Site-local and GMT renderings of a unix time, as WooCommerce answers ``date_*`` and ``date_*_gmt``."""
        moment = datetime.fromtimestamp(stamp, UTC)
        return moment.astimezone(self.tz).strftime("%Y-%m-%dT%H:%M:%S"), moment.strftime("%Y-%m-%dT%H:%M:%S")
