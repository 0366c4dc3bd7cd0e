"""独角数卡 dujiaoka v2 shop adapter (``kind = "dujiaoka"``): reads the shop's MySQL/MariaDB database, read-only.

Schema: ``shared/specs/shops/chinese/SCHEMAS.md`` (dujiaoka @ 9f5467a, database/sql/install.sql). Orders are read by
``updated_at`` with a keyset walk on (updated_at, id), so rows sharing a second are neither skipped nor re-read
forever. Buyers are guests keyed by the order email.

Statuses (assimon/dujiaoka app/Models/Order.php:16-48): 1 待支付 unpaid; 2 待处理, 3 处理中, 4 已完成 paid (the
payment arrived; 2 and 3 are manual delivery in progress); 5 处理失败 and -1 过期 unpaid; 6 异常 **paid**: it is set
only after the payment was accepted, when automatic delivery finds fewer cards in stock than were bought
(app/Service/OrderProcessService.php:385-411 ``completedOrder()`` → ``processAuto()`` :489-499), so the buyer paid and
waits for the shop to deliver by hand. ``[shop] status_map`` overrides any of these.

Deletion: the admin's delete is Laravel's soft delete (``Order`` uses ``SoftDeletes``, app/Models/Order.php:9-11; the
grid offers Restore, app/Admin/Controllers/OrderController.php:73-84). ``runSoftDelete()`` sets ``deleted_at`` *and*
``updated_at`` (illuminate/database Eloquent/SoftDeletes.php, e.g. as vendored in lizhipay/acg-faka
vendor/illuminate/database/Eloquent/SoftDeletes.php:78-97) and ``restore()`` saves the row (:104-125), so the walk sees
both: a soft-deleted order is ``deleted``, a restored one its status again. A row deleted in the database itself leaves
nothing to walk; :meth:`DujiaokaShop.orders_present` (by primary key, in chunks) finds it gone.

Allow-list by construction: the SELECT names its columns. ``orders.info`` (the delivered card secrets, 卡密),
``carmis`` (the card stock), ``search_pwd``, ``buy_ip`` and ``trade_no`` are never selected.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, PositiveInt
from sqlalchemy import text

from adapters.base import CustomerPage, OrderPage
from adapters.checks import Check, CheckContext
from adapters.coupons import IssuesCoupons
from adapters.shops.dujiaoka_coupons import MAX_GOODS, DujiaokaCoupons
from adapters.shops.quarantine import read_records, row_id, shown
from adapters.shops.sql import (
    CLOCK_MARGIN,
    ID_WINDOW,
    DatabaseShopSettings,
    MalformedRow,
    SqlShop,
    database_utc,
    first_id_since,
    next_id,
    unset,
)
from adapters.shops.sql_check import IndexNeed, TableNeed, check_database
from adapters.shops.sql_coupons import coupon_checks
from connector.core.clock import iso, parse_iso, utcnow
from connector.core.models import (
    Customer,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Quarantined,
    customer_key_for,
    normalise_email,
)

ORDERS = "dujiaoka.orders"
PRODUCTS = "dujiaoka.goods"

STATUS_MAP: dict[int, OrderStatus] = {
    1: OrderStatus.UNPAID,
    2: OrderStatus.PAID,
    3: OrderStatus.PAID,
    4: OrderStatus.PAID,
    5: OrderStatus.UNPAID,
    6: OrderStatus.PAID,  # 异常: paid, the automatic delivery ran out of stock (see the module's docstring)
    -1: OrderStatus.UNPAID,
}

#: The only order columns read. Adding one here is a decision: it must not be a secret, a payment detail or an IP.
#: ``order_sn`` (订单号) is read for the member link page and kept only as a keyed hash (with the email it looks an
#: order up on the shop).
ORDER_COLUMNS = (
    "id",
    "order_sn",
    "goods_id",
    "title",
    "buy_amount",
    "actual_price",
    "email",
    "status",
    "created_at",
    "updated_at",
    "deleted_at",
)

COLUMNS = ", ".join(f"`{c}`" for c in ORDER_COLUMNS)
#: The incremental walk: a keyset on (updated_at, id). ``check`` EXPLAINs this same statement.
WALK = (
    "SELECT {columns} FROM {table} WHERE (`updated_at` > :at) OR (`updated_at` = :at AND `id` > :id) "
    "ORDER BY `updated_at`, `id` LIMIT :limit"
)
#: The pass without that index: one id window, new orders (above ``top``) and changes after the cursor, in id order.
WINDOWS = (
    "SELECT {columns} FROM {table} WHERE `id` > :last AND `id` <= :stop "
    "AND (`id` > :top OR `updated_at` > :at OR (`updated_at` = :at AND `id` > :tie)) ORDER BY `id` LIMIT :limit"
)
#: The upstream schema keys ``orders`` by id, order_sn, goods_id and email only: nothing on updated_at.
UPSTREAM_KEYS = "assimon/dujiaoka database/sql/install.sql:406-434, keys at :430-433"


class DujiaokaSettings(DatabaseShopSettings):
    """``[shop]`` with ``kind = "dujiaoka"``: the database shop keys and ``status_map``."""

    #: Order status code → canonical status, over the built-in map (e.g. ``{ "6" = "disputed" }`` to hold 异常 orders
    #: back until they are delivered by hand).
    status_map: dict[int, OrderStatus] = Field(default_factory=dict)
    #: The goods ids a redemption's coupon is valid for (dujiaoka binds every coupon to goods, ``coupons_goods``);
    #: unset: every goods not deleted when the coupon is made.
    coupon_goods: Annotated[list[PositiveInt], Field(min_length=1, max_length=MAX_GOODS)] | None = None


class DujiaokaShop(IssuesCoupons[DujiaokaCoupons], SqlShop):
    """Reads orders and goods from a dujiaoka database. Capabilities: :class:`~adapters.base.OrderLookup`,
    :class:`~adapters.base.OrderPresence`, :class:`~adapters.checks.SelfCheck`, and
    :class:`~adapters.coupons.CouponIssuer` with ``coupon_database_url`` (:mod:`adapters.shops.dujiaoka_coupons`)."""

    kind = "dujiaoka"
    settings = DujiaokaSettings

    def __init__(self, config: DatabaseShopSettings) -> None:
        super().__init__(config)
        overrides = config.status_map if isinstance(config, DujiaokaSettings) else {}
        self.statuses = {**STATUS_MAP, **overrides}
        goods = config.coupon_goods if isinstance(config, DujiaokaSettings) else None
        self.coupons = DujiaokaCoupons(self, goods)

    def close(self) -> None:
        self.coupons.close()
        super().close()

    def parse(self, row: Any) -> Order:
        """One ``orders`` row as an :class:`Order`; anything it raises quarantines the row."""
        email = row.email.strip() if isinstance(row.email, str) else ""
        if not email:
            raise MalformedRow("order without an email")
        code = self.integer(row.status)
        status = self.statuses.get(code) if code is not None else None
        if status is None:
            raise MalformedRow(f"unknown order status {shown(row.status)} (add it to status_map)")
        if not unset(row.deleted_at):
            status = OrderStatus.DELETED
        key = customer_key_for(None, email)
        assert key is not None
        return Order(
            id=str(row.id),
            customer_key=key,
            email=normalise_email(email),
            status=status,
            total=row.actual_price if row.actual_price is not None else "0",
            currency="CNY",
            created_at=self.utc(row.created_at, "created_at"),
            modified_at=self.utc(row.updated_at, "updated_at"),
            lines=(
                OrderLine(
                    product_id=str(row.goods_id), name=str(row.title or "")[:200], quantity=int(row.buy_amount or 1)
                ),
            ),
            number=str(row.order_sn) if row.order_sn else None,
        )

    def order_pages(self, cursor: str | None, since: datetime | None = None) -> Iterator[OrderPage]:
        """Orders changed after the cursor: by ``updated_at`` when an index starts with it, otherwise by id windows
        (see :meth:`window_pages`). The cursor is the last (updated_at, id) read, ``{"at": ISO UTC, "id": N}``, and
        after a windowed pass also the highest id read, ``"top"``."""
        with self.engine.connect() as conn:
            windows = self.windowed(conn, "orders", "updated_at")
        return self.window_pages(cursor, since) if windows else self.walk_pages(cursor, since)

    def _start(self, cursor: str | None, since: datetime | None) -> tuple[datetime, int, dict[str, Any] | None]:
        """Where a pass starts: the (updated_at, id) to read after, and the cursor it starts from."""
        if cursor:
            mark = json.loads(cursor)
            at, last_id = parse_iso(mark["at"]) - timedelta(seconds=self.config.lookback_seconds), 0
            if not self.config.lookback_seconds:
                last_id = int(mark["id"])
            return at, last_id, mark
        return (since or datetime(1970, 1, 2, tzinfo=UTC)), 0, None

    def walk_pages(self, cursor: str | None, since: datetime | None = None) -> Iterator[OrderPage]:
        """The walk by ``updated_at`` (:data:`WALK`), for a table with an index on it: a keyset on (updated_at, id),
        every page one range read of that index. Without the index every page reads and sorts the whole table."""
        at, last_id, mark = self._start(cursor, since)
        query = text(WALK.format(columns=COLUMNS, table=self.table("orders")))
        newest = {"at": mark["at"], "id": int(mark["id"])} if mark else None
        # The walk goes on from the last row as the database has it (even a row whose date is no date); the cursor
        # only ever holds a plausible date.
        walk_at: Any = self.local(at)
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(query, {"at": walk_at, "id": last_id, "limit": self.config.page_size}).all()
            orders, quarantined = read_records(ORDERS, rows, self.parse, row_id("id"))
            if rows:
                walk_at, last_id = rows[-1].updated_at, int(rows[-1].id)
                for row in reversed(rows):
                    moment = self.position(row.updated_at)
                    if moment is not None:
                        if newest is None or (iso(moment), int(row.id)) > (newest["at"], newest["id"]):
                            newest = {"at": iso(moment), "id": int(row.id)}
                        break
            yield OrderPage(orders=orders, quarantined=quarantined, cursor=json.dumps(newest) if newest else None)
            if len(rows) < self.config.page_size:
                return

    def window_pages(self, cursor: str | None, since: datetime | None = None) -> Iterator[OrderPage]:
        """The pass for a table without an index on ``updated_at`` (the upstream schema): reads by primary key only.

        - New orders: every id above ``top``, the highest id the last pass read, whatever their dates.
        - Changes: ``updated_at`` after the cursor, looked for among the orders created in the last ``recheck_days``
          before the cursor, whose first id a bisection on the primary key finds (dujiaoka inserts an order with
          ``created_at`` = now, app/Service/OrderProcessService.php:315-354 ``createOrder()``, so ids grow with it).
        Both in :data:`~adapters.shops.sql.ID_WINDOW` id ranges (:data:`WINDOWS`): the work is the orders of those
        days, not the table. Pages come in id order, so only the last page moves the cursor (a pass cut short starts
        again from the old one), except in a backfill, whose pages mark how far the ids were read. The cursor never
        passes the database's clock at the start, less :data:`~adapters.shops.sql.CLOCK_MARGIN`: a row changed during
        the pass in a window already read is read by the next one.
        """
        at, tie, mark = self._start(cursor, since)
        table = self.table("orders")
        recheck = timedelta(days=self.config.recheck_days)
        with self.engine.connect() as conn:
            guard = database_utc(conn) - CLOCK_MARGIN
            end = int(conn.execute(text(f"SELECT MAX(`id`) FROM {table}")).scalar() or 0)
            if mark is not None:  # a cursor from the walk by updated_at has no top: this pass looks by time only
                top = int(mark.get("top", end))
                low = first_id_since(conn, table, "created_at", self.local(at - recheck))
            elif since is not None:
                top, low = end, first_id_since(conn, table, "created_at", self.local(since - recheck))
            else:  # a backfill: every order
                top, low = 0, None
        backfill = mark is None and since is None
        last = top if low is None else min(low - 1, top)
        newest = {"at": mark["at"], "id": int(mark["id"])} if mark else None
        query = text(WINDOWS.format(columns=COLUMNS, table=table))
        window_at = self.local(at)
        held: OrderPage | None = None  # the last page waits for the cursor of the whole pass
        while last < end:
            stop = min(last + ID_WINDOW, end)
            values = {"last": last, "stop": stop, "top": top, "at": window_at, "tie": tie}
            with self.engine.connect() as conn:
                rows = conn.execute(query, {**values, "limit": self.config.page_size}).all()
                if len(rows) == self.config.page_size:
                    last = int(rows[-1].id)
                else:  # the window is done: on to the next id there is
                    following = next_id(conn, table, stop)
                    last = end if following is None else max(stop, following - 1)
            orders, quarantined = read_records(ORDERS, rows, self.parse, row_id("id"))
            for row in rows:
                moment = self.position(row.updated_at)
                if moment is not None and (newest is None or (iso(moment), int(row.id)) > (newest["at"], newest["id"])):
                    newest = {"at": iso(moment), "id": int(row.id)}
            if rows or backfill:
                if held is not None:
                    yield held
                progress = json.dumps({"at": iso(guard), "id": 0, "top": min(last, end)}) if backfill else None
                held = OrderPage(orders=orders, quarantined=quarantined, cursor=progress)
        if newest is None or (newest["at"], newest["id"]) > (iso(guard), 0):
            newest = {"at": iso(guard), "id": 0}
        final = json.dumps({**newest, "top": max(top, end)})
        yield (
            OrderPage(orders=held.orders, quarantined=held.quarantined, cursor=final)
            if held
            else OrderPage(orders=[], quarantined=[], cursor=final)
        )

    def orders_by_id(self, ids: Sequence[str]) -> OrderPage:
        columns = ", ".join(f"`{c}`" for c in ORDER_COLUMNS)
        orders: list[Order] = []
        quarantined: list[Quarantined] = []
        with self.engine.connect() as conn:
            for chunk in self.id_chunks(ids):
                marks, values = self.in_list(chunk)
                rows = conn.execute(
                    text(f"SELECT {columns} FROM {self.table('orders')} WHERE `id` IN ({marks})"), values
                ).all()
                read, bad = read_records(ORDERS, rows, self.parse, row_id("id"))
                orders += read
                quarantined += bad
        return OrderPage(orders=orders, quarantined=quarantined, cursor=None)

    def orders_present(self, ids: Sequence[str]) -> OrderPage:
        """:class:`~adapters.base.OrderPresence`: :meth:`orders_by_id` reads by primary key, so a row it does not
        answer was deleted (a soft-deleted one is answered as ``deleted``)."""
        return self.orders_by_id(ids)

    def check(self, context: CheckContext | None = None) -> Iterator[Check]:
        """:class:`~adapters.checks.SelfCheck`: the database answers, ``orders`` and ``goods`` have the columns read,
        the user is SELECT-only, and ``orders`` has an index the walk by ``updated_at`` can use; then the coupon
        writer (:func:`~adapters.shops.sql_coupons.coupon_checks`)."""
        since = self.local(utcnow() - timedelta(seconds=self.config.lookback_seconds))
        walk = IndexNeed(
            "orders",
            "updated_at",
            "CREATE INDEX `idx_updated_at` ON {table} (`updated_at`, `id`);",
            WALK.format(columns=COLUMNS, table="{table}"),
            {"at": since, "id": 0, "limit": self.config.page_size},
            UPSTREAM_KEYS,
            f"each pass reads by primary key the orders created in the last {self.config.recheck_days} days "
            "(recheck_days), not the whole table",
        )
        tables = (TableNeed("orders", ORDER_COLUMNS), TableNeed("goods", ("id", "gd_name")))
        yield from check_database(self, tables, (walk,))
        yield from coupon_checks(self.coupons)

    def customer_profiles(self, keys: Sequence[str]) -> tuple[list[Customer], list[str]]:
        return [], list(keys)  # dujiaoka has no accounts: every buyer is a guest known by email

    def customer_pages(self, cursor: str | None = None) -> Iterator[CustomerPage]:
        return iter(())

    def products(self, ids: Sequence[str]) -> list[Product]:
        if not ids:
            return []
        marks, values = self.in_list([int(v) for v in ids])
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT `id`, `gd_name` FROM {self.table('goods')} WHERE `id` IN ({marks})"), values
            ).all()
        return read_records(PRODUCTS, rows, parse_goods, row_id("id"))[0]  # an unreadable product is left out

    def catalogue(self) -> Iterator[list[Product]]:
        """:class:`~adapters.base.Catalogue`: goods not deleted, with price and unsold-card count."""
        query = text(CATALOGUE.format(carmis=self.table("carmis"), goods=self.table("goods"), unsold=CARMI_UNSOLD))
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(query, {"l": last}).all()
            if rows:
                last = int(rows[-1].id)
                yield read_records(PRODUCTS, rows, parse_goods_facts, row_id("id"))[0]
            if len(rows) < 500:
                return


def parse_goods(row: Any) -> Product:
    """A ``goods`` row (id, gd_name) as a :class:`Product`."""
    return Product(id=str(row.id), name=str(row.gd_name or f"#{row.id}")[:200])


#: dujiaoka's goods ``type`` for automatic delivery (app/Models/BaseModel.php @ 5e0829c ``AUTOMATIC_DELIVERY``); its stock is the
#: count of unsold cards (Goods::getInStockAttribute(), app/Models/Goods.php @ 5e0829c). Manual goods keep a typed
#: ``in_stock`` column this adapter does not rely on: their stock reads as unknown.
AUTOMATIC_DELIVERY = 1
#: ``carmis.status`` of an unsold card (Carmis::STATUS_UNSOLD, app/Models/Carmis.php @ 5e0829c); deleted cards are
#: soft-deleted (``deleted_at``).
CARMI_UNSOLD = 1
#: The goods, 500 a page by id: price and a COUNT of unsold cards; ``carmis.carmi`` (the card) is never selected.
CATALOGUE = (
    "SELECT g.`id`, g.`gd_name`, g.`actual_price`, g.`type`, "
    "(SELECT COUNT(*) FROM {carmis} c WHERE c.`goods_id` = g.`id` AND c.`status` = {unsold} "
    "AND c.`deleted_at` IS NULL) AS unsold "
    "FROM {goods} g WHERE g.`deleted_at` IS NULL AND g.`id` > :l ORDER BY g.`id` LIMIT 500"
)


def parse_goods_facts(row: Any) -> Product:
    """A catalogue row as a :class:`Product` with its price and, for automatic goods, the unsold cards."""
    automatic = row.type is not None and int(row.type) == AUTOMATIC_DELIVERY
    count = int(row.unsold) if automatic else None
    return Product(
        id=str(row.id),
        name=str(row.gd_name or f"#{row.id}")[:200],
        price=row.actual_price,
        in_stock=None if count is None else count > 0,
        stock_count=count,
    )
