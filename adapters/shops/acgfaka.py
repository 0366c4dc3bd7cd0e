"""异次元发卡 acg-faka 3.x shop adapter (``kind = "acgfaka"``): reads its MySQL/MariaDB database, read-only.

Schema: ``shared/specs/shops/chinese/SCHEMAS.md`` (acg-faka 3.6.0 @ 574c3ff, kernel/Install/Install.sql), tables
prefixed ``acg_`` by default. acg-faka has no order API token and its orders carry no update time, so the walk is:

- new orders by an **id watermark** (``id > last id``, ascending), and
- a **lookback** re-read of the last ``lookback_ids`` ids and of every order paid in the last ``lookback_seconds``
  (``pay_time``), so an order that was paid after it was first read is seen. The upstream schema has no index on
  ``pay_time``: then the paid orders are looked for by primary key among the orders created in the last
  ``recheck_days`` only (see :meth:`AcgFakaShop._paid`), not in the whole table.

Status: 1 已支付 = paid, 0 未支付 = unpaid. acg-faka has no refund: the admin takes a sale back only by deleting the
row (app/Controller/Admin/Api/Order.php:429-437 ``clear()`` deletes unpaid orders older than 30 minutes, :568-611
``export()`` with ``export_status = 1`` deletes the exported orders, paid ones too; deleting a commodity deletes its
orders, app/Controller/Admin/Api/Commodity.php:139-173). A deleted row leaves nothing to walk, so
:meth:`AcgFakaShop.orders_present` (by primary key, in chunks) tells the reconcile and the backfill which stored orders
are gone.

Members (``owner`` > 0) are keyed by uid and their email comes from the ``user`` table. A member may have none: the
registration form asks for a user name only, a user name and a phone, or a user name and an email
(app/Controller/User/Api/Authentication.php:74-103, ``registered_type`` 0/1/2), so such a buyer is stored with no email
(``cardbridge status`` counts them apart from the unmatched). Guests are keyed by the ``contact`` they typed when it is
an email (other contacts, a phone or a QQ number, cannot be matched to a forum account: such an order is quarantined
with that reason, and the contact is not kept).

What counts as an email: acg-faka checks a guest's contact only with ``/.*(.{2}@.*)$/i`` when the commodity asks for an
email (app/Service/Bind/Order.php:709-727), so ``ab@qq`` or ``QQ: ab@qq.com`` pass, and a member's email with the
unanchored ``Validation::email()`` (app/Util/Validation.php:25-31). CardBridge takes an address only when it is one
``local@domain.tld`` with no blanks (:data:`_EMAIL`): anything else can reach no forum account (Discourse's own check
wants a dotted domain) and must never be matched on a guess, so such a guest order is set aside with its reason and
such a member has no email. The table prefix may be empty (the installer takes any prefix, app/Controller/Install.php:
89-132, and kernel/Util/SQL.php:19 puts it before every table name).

Allow-list by construction: the SELECTs name their columns. ``order.secret`` and ``card.secret`` (卡密), ``password``,
``create_ip``, ``pay_url`` and every ``user`` column but id, username and email are never selected. Support tickets
are offered as metadata (:meth:`AcgFakaShop.ticket_pages`), never their messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from adapters.base import CustomerPage, OrderPage
from adapters.checks import Check, CheckContext
from adapters.coupons import IssuesCoupons
from adapters.shops.acgfaka_coupons import AcgFakaCoupons
from adapters.shops.quarantine import read_records, row_id, shown
from adapters.shops.sql import (
    ID_WINDOW,
    DatabaseShopSettings,
    MalformedRow,
    SqlShop,
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

ORDERS = "acgfaka.orders"
MEMBERS = "acgfaka.members"
PRODUCTS = "acgfaka.commodities"
STATUS_MAP = {1: OrderStatus.PAID, 0: OrderStatus.UNPAID}
#: ``trade_no`` (订单号) is read for the member link page and kept only as a keyed hash.
ORDER_COLUMNS = (
    "id",
    "trade_no",
    "owner",
    "amount",
    "commodity_id",
    "card_num",
    "create_time",
    "pay_time",
    "status",
    "contact",
)
#: The lookback: orders paid since a time, up to the watermark. ``check`` EXPLAINs this same statement.
PAID = "SELECT {columns} FROM {table} WHERE `pay_time` >= :t AND `id` <= :w ORDER BY `id`"
#: The lookback without an index on pay_time: one id range at a time, by primary key.
PAID_WINDOW = "SELECT {columns} FROM {table} WHERE `id` >= :low AND `id` < :high AND `pay_time` >= :t ORDER BY `id`"
#: The upstream schema indexes ``order`` on create_time and ten more columns, but not on pay_time.
UPSTREAM_KEYS = "lizhipay/acg-faka kernel/Install/Install.sql:346-394, indexes at :380-394"
#: One address, ``local@domain.tld``, nothing around it.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
#: How many of the newest ids are read again on every pass.
LOOKBACK_IDS = 200


class AcgFakaSettings(DatabaseShopSettings):
    """``[shop]`` with ``kind = "acgfaka"``: the database shop keys; acg-faka prefixes its tables ``acg_``."""

    table_prefix: str = "acg_"


class AcgFakaShop(IssuesCoupons[AcgFakaCoupons], SqlShop):
    """Reads orders and members from an acg-faka database. Capabilities: :class:`~adapters.base.OrderLookup`,
    :class:`~adapters.base.OrderPresence`, :class:`~adapters.checks.SelfCheck`, and
    :class:`~adapters.coupons.CouponIssuer` with ``coupon_database_url`` (:mod:`adapters.shops.acgfaka_coupons`)."""

    kind = "acgfaka"
    settings = AcgFakaSettings

    def __init__(self, config: DatabaseShopSettings) -> None:
        super().__init__(config)
        self.coupons = AcgFakaCoupons(self)

    def close(self) -> None:
        self.coupons.close()
        super().close()

    def parse(self, row: Any, emails: dict[int, str]) -> Order:
        """One ``order`` row as an :class:`Order` (``emails``: the members' emails by uid); anything it raises
        quarantines the row."""
        code = self.integer(row.status)
        status = STATUS_MAP.get(code) if code is not None else None
        if status is None:
            raise MalformedRow(f"unknown order status {shown(row.status)}")
        owner = self.integer(row.owner or 0)
        if owner is None:
            raise MalformedRow("owner is not a member id")
        contact = row.contact.strip() if isinstance(row.contact, str) else ""
        if owner:
            email = emails.get(owner)
            key = customer_key_for(owner, None)
        elif _EMAIL.match(contact):
            email, key = normalise_email(contact), customer_key_for(None, contact)
        else:
            raise MalformedRow("guest order whose contact is not an email (a phone or QQ number cannot be matched)")
        created = self.utc(row.create_time, "create_time")
        paid = None if unset(row.pay_time) else self.utc(row.pay_time, "pay_time")
        assert key is not None
        return Order(
            id=str(row.id),
            customer_key=key,
            email=email,
            status=status,
            total=row.amount or "0",
            currency="CNY",
            created_at=created,
            modified_at=max(created, paid) if paid else created,
            lines=(OrderLine(product_id=str(row.commodity_id), name="", quantity=int(row.card_num or 1)),),
            number=str(row.trade_no) if row.trade_no else None,
        )

    def _emails(self, conn: Any, owners: set[int]) -> dict[int, str]:
        if not owners:
            return {}
        marks, values = self.in_list(sorted(owners))
        rows = conn.execute(text(f"SELECT `id`, `email` FROM {self.table('user')} WHERE `id` IN ({marks})"), values)
        return {int(r.id): email for r in rows if (email := member_email(r.email))}

    def _page(self, rows: Sequence[Any], conn: Any) -> tuple[list[Order], list[Quarantined]]:
        emails = self._emails(conn, {owner for r in rows if (owner := self.integer(r.owner))})
        return read_records(ORDERS, rows, lambda row: self.parse(row, emails), row_id("id"))

    def order_pages(self, cursor: str | None, since: Any = None) -> Iterator[OrderPage]:
        columns = ", ".join(f"`{c}`" for c in ORDER_COLUMNS)
        started = utcnow()
        mark: dict[str, Any] = json.loads(cursor) if cursor else {"id": 0}
        watermark = int(mark["id"])
        # 1. the lookback: orders paid since the last pass (less the lookback window), whatever their id; a payment
        #    is the only status change acg-faka records a time for
        if cursor:
            last_pass = parse_iso(mark["at"]) if mark.get("at") else started
            paid_since = self.local(last_pass - timedelta(seconds=max(self.config.lookback_seconds, 0)))
            with self.engine.connect() as conn:
                paid = self._paid(conn, columns, paid_since, watermark)
                orders, quarantined = self._page(paid, conn)
            yield OrderPage(orders=orders, quarantined=quarantined, cursor=None)
        # 2. the id walk, starting a little behind the watermark
        last = max(0, watermark - LOOKBACK_IDS) if cursor else 0
        if since is not None and not cursor:
            with self.engine.connect() as conn:
                first = conn.execute(
                    text(f"SELECT MIN(`id`) FROM {self.table('order')} WHERE `create_time` >= :t"),
                    {"t": self.local(since)},
                ).scalar()
            last = int(first) - 1 if first else last
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    text(f"SELECT {columns} FROM {self.table('order')} WHERE `id` > :last ORDER BY `id` LIMIT :n"),
                    {"last": last, "n": self.config.page_size},
                ).all()
                orders, quarantined = self._page(rows, conn)
            if rows:
                last = int(rows[-1].id)
                watermark = max(watermark, last)
            yield OrderPage(
                orders=orders, quarantined=quarantined, cursor=json.dumps({"id": watermark, "at": iso(started)})
            )
            if len(rows) < self.config.page_size:
                return

    def _paid(self, conn: Any, columns: str, since: datetime, watermark: int) -> list[Any]:
        """The orders paid at or after ``since`` (naive, the shop's zone) up to the watermark. With an index on
        ``pay_time``: :data:`PAID`, one range read of it. Without (the upstream schema): only among the orders created
        in the last ``recheck_days`` before ``since``, whose first id a bisection on the primary key finds (acg-faka
        inserts an order with ``create_time`` = now, app/Service/Bind/Order.php:915-926, and sets ``pay_time`` when
        the payment arrives, :1213-1216 ``orderSuccess()``), in :data:`~adapters.shops.sql.ID_WINDOW` id ranges
        (:data:`PAID_WINDOW`); a payment for an older order is read by ``backfill``."""
        table = self.table("order")
        if not self.windowed(conn, "order", "pay_time"):
            return list(conn.execute(text(PAID.format(columns=columns, table=table)), {"t": since, "w": watermark}))
        low = first_id_since(conn, table, "create_time", since - timedelta(days=self.config.recheck_days))
        rows: list[Any] = []
        query = text(PAID_WINDOW.format(columns=columns, table=table))
        start = low if low is not None else watermark + 1
        while start <= watermark:
            high = min(start + ID_WINDOW, watermark + 1)
            rows.extend(conn.execute(query, {"t": since, "low": start, "high": high}))
            following = next_id(conn, table, high - 1)  # over a gap in the ids in one step
            start = watermark + 1 if following is None else max(high, following)
        return rows

    def orders_by_id(self, ids: Sequence[str]) -> OrderPage:
        """The ``order`` rows with these ids, by primary key, :data:`~adapters.shops.sql.ID_CHUNK` at a time."""
        columns = ", ".join(f"`{c}`" for c in ORDER_COLUMNS)
        orders: list[Order] = []
        quarantined: list[Quarantined] = []
        with self.engine.connect() as conn:
            for chunk in self.id_chunks(ids):
                marks, values = self.in_list(chunk)
                rows = conn.execute(
                    text(f"SELECT {columns} FROM {self.table('order')} WHERE `id` IN ({marks})"), values
                ).all()
                read, bad = self._page(rows, conn)
                orders += read
                quarantined += bad
        return OrderPage(orders=orders, quarantined=quarantined, cursor=None)

    def orders_present(self, ids: Sequence[str]) -> OrderPage:
        """:class:`~adapters.base.OrderPresence`: a row :meth:`orders_by_id` does not answer was deleted."""
        return self.orders_by_id(ids)

    def check(self, context: CheckContext | None = None) -> Iterator[Check]:
        """:class:`~adapters.checks.SelfCheck`: the database answers, ``order``, ``user`` and ``commodity`` have the
        columns read, the user is SELECT-only, and ``order`` has an index the lookback by ``pay_time`` can use; then the
        coupon writer (:func:`~adapters.shops.sql_coupons.coupon_checks`)."""
        since = self.local(utcnow() - timedelta(seconds=self.config.lookback_seconds))
        columns = ", ".join(f"`{c}`" for c in ORDER_COLUMNS)
        paid = IndexNeed(
            "order",
            "pay_time",
            "CREATE INDEX `idx_pay_time` ON {table} (`pay_time`);",
            PAID.format(columns=columns, table="{table}"),
            {"t": since, "w": 2**32 - 1},
            UPSTREAM_KEYS,
            f"each pass reads by primary key the orders created in the last {self.config.recheck_days} days "
            "(recheck_days), not the whole table",
        )
        tables = (
            TableNeed("order", ORDER_COLUMNS),
            TableNeed("user", ("id", "username", "email")),
            TableNeed("commodity", ("id", "name")),
        )
        yield from check_database(self, tables, (paid,))
        yield from coupon_checks(self.coupons)

    def customer_profiles(self, keys: Sequence[str]) -> tuple[list[Customer], list[str]]:
        ids = [int(k[2:]) for k in keys if k.startswith("c:")]
        if not ids:
            return [], list(keys)
        marks, values = self.in_list(ids)
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT `id`, `username`, `email` FROM {self.table('user')} WHERE `id` IN ({marks})"), values
            ).all()
        found = read_records(MEMBERS, rows, parse_member, row_id("id"))[0]  # an unreadable member stays missing
        known = {c.key for c in found}
        return found, [k for k in keys if k not in known]

    def customer_pages(self, cursor: str | None = None) -> Iterator[CustomerPage]:
        last = int(cursor) if cursor else 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    text(
                        f"SELECT `id`, `username`, `email` FROM {self.table('user')} WHERE `id` > :l "
                        "ORDER BY `id` LIMIT 500"
                    ),
                    {"l": last},
                ).all()
            customers, quarantined = read_records(MEMBERS, rows, parse_member, row_id("id"))
            if rows:
                last = int(rows[-1].id)
            yield CustomerPage(customers=customers, quarantined=quarantined, cursor=str(last))
            if len(rows) < 500:
                return

    def ticket_pages(self, after_id: int = 0) -> Iterator[list[dict[str, Any]]]:
        """Support tickets (``ticket``) as metadata: number, member, type, status, product and order, times.

        For later use (e.g. a "support resolved" signal); the messages (``ticket_message.content``) are not read.
        """
        columns = (
            "id",
            "ticket_no",
            "user_id",
            "type",
            "status",
            "commodity_id",
            "order_id",
            "create_time",
            "update_time",
        )
        last = after_id
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    text(
                        f"SELECT {', '.join(f'`{c}`' for c in columns)} FROM {self.table('ticket')} "
                        "WHERE `id` > :l ORDER BY `id` LIMIT 500"
                    ),
                    {"l": last},
                ).all()
            if rows:
                last = int(rows[-1].id)
                yield [dict(r._mapping) for r in rows]
            if len(rows) < 500:
                return

    def products(self, ids: Sequence[str]) -> list[Product]:
        if not ids:
            return []
        marks, values = self.in_list([int(v) for v in ids])
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(f"SELECT `id`, `name` FROM {self.table('commodity')} WHERE `id` IN ({marks})"), values
            ).all()
        return read_records(PRODUCTS, rows, parse_commodity, row_id("id"))[0]  # an unreadable product is left out

    def catalogue(self) -> Iterator[list[Product]]:
        """:class:`~adapters.base.Catalogue`: listed commodities, with price and unsold-card count."""
        query = text(CATALOGUE.format(card=self.table("card"), commodity=self.table("commodity"), unsold=CARD_UNSOLD))
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(query, {"l": last}).all()
            if rows:
                last = int(rows[-1].id)
                yield read_records(PRODUCTS, rows, parse_commodity_facts, row_id("id"))[0]
            if len(rows) < 500:
                return


def member_email(value: Any) -> str | None:
    """A member's email when it is one address (see the module's docstring); None for none, or for what acg-faka let
    through that is not one."""
    email = value.strip() if isinstance(value, str) else ""
    return normalise_email(email) if _EMAIL.match(email) else None


def parse_member(row: Any) -> Customer:
    """A ``user`` row (id, username, email) as a :class:`Customer` (no email for a member who registered without)."""
    username = row.username
    return Customer(key=f"c:{row.id}", email=member_email(row.email), username=str(username) if username else None)


def parse_commodity(row: Any) -> Product:
    """A ``commodity`` row (id, name) as a :class:`Product`."""
    return Product(id=str(row.id), name=str(row.name or f"#{row.id}")[:200])


#: ``card.status`` of an unsold card (app/Model/Card.php @ 463bf5b: an integer ``status``): acg-faka's shop code counts
#: a commodity's stock as ``Card::query()->where("commodity_id", …)->where("status", 0)->count()`` for automatic
#: delivery (``delivery_way == 0``). A listed commodity (``commodity.status`` 1) with no card at all is delivered by
#: hand or by a shared shop: stock unknown.
CARD_UNSOLD = 0
#: The listed commodities, 500 a page by id: price and COUNTs of cards; ``card.secret`` (卡密) is never selected.
CATALOGUE = (
    "SELECT m.`id`, m.`name`, m.`price`, "
    "(SELECT COUNT(*) FROM {card} c WHERE c.`commodity_id` = m.`id` AND c.`status` = {unsold}) AS unsold, "
    "(SELECT COUNT(*) FROM {card} c WHERE c.`commodity_id` = m.`id`) AS cards "
    "FROM {commodity} m WHERE m.`status` = 1 AND m.`id` > :l ORDER BY m.`id` LIMIT 500"
)


def parse_commodity_facts(row: Any) -> Product:
    """A catalogue row as a :class:`Product` with its price and unsold cards (unknown when it has no cards)."""
    count = int(row.unsold) if int(row.cards) else None
    return Product(
        id=str(row.id),
        name=str(row.name or f"#{row.id}")[:200],
        price=row.price,
        in_stock=None if count is None else count > 0,
        stock_count=count,
    )
