"""Database shops without the index their incremental query wants (the upstream schemas have none): a pass reads by id
windows on the primary key, on a real MariaDB. New orders and changes to orders of the last ``recheck_days`` are
read, the rest of the table is not touched (the server's own row counters say so); a change to an older order is
read by reconcile; a change made while a pass runs is read by the next one; with the index the plain query is used."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, text

from adapters.shops import dujiaoka
from adapters.shops.acgfaka import AcgFakaSettings, AcgFakaShop
from adapters.shops.dujiaoka import DujiaokaSettings, DujiaokaShop
from adapters.shops.sql import first_id_since
from connector.core.clock import iso
from connector.core.models import OrderStatus
from tests.e2e.test_acgfaka import DDL as ACG_DDL
from tests.e2e.test_dujiaoka import add_order, shop_db  # noqa: F401  (the throw-away MariaDB database fixture)

SHANGHAI = ZoneInfo("Asia/Shanghai")  # the adapters' default [shop] timezone
#: Filler orders: one every 40 minutes over 400 days, oldest first (ids grow with created_at, as in the shops).
FILLER = 14_400
STEP = timedelta(minutes=40)


def shop_now() -> datetime:
    return datetime.now(SHANGHAI).replace(tzinfo=None, microsecond=0)


def fill_dujiaoka(
    engine: Any, n: int = FILLER, status: int = 4, email: str = "CONCAT('f', seq, '@example.com')"
) -> datetime:
    """``n`` orders (paid, each by its own buyer, unless told), the newest an hour old; returns the oldest one's
    creation time (shop-local)."""
    start = shop_now() - timedelta(hours=1) - STEP * n
    with engine.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO orders (order_sn, goods_id, title, buy_amount, actual_price, email, info, buy_ip, status, "
                f"created_at, updated_at) SELECT CONCAT('F', seq), 1, 'filler', 1, 10, {email}, 'KM-FILLER', '10.0.0.1', "
                f"{status}, :start + INTERVAL (seq * :step) SECOND, "
                f":start + INTERVAL (seq * :step) SECOND FROM seq_1_to_{n}"
            ),
            {"start": start, "step": int(STEP.total_seconds())},
        )
    return start


def rows_touched(shop: Any) -> tuple[int, int]:
    """The session's Handler_read_* total on the adapter's (pooled, reused) connection, and the connection id."""
    with shop.engine.connect() as conn:
        ident = int(conn.execute(text("SELECT CONNECTION_ID()")).scalar())
        rows = conn.execute(text("SHOW SESSION STATUS LIKE 'Handler_read%'")).all()
    return ident, sum(int(value) for name, value in rows if name != "Handler_read_rnd")


def read(shop: Any, cursor: str | None) -> tuple[list[Any], str | None, int]:
    """One pass: the orders it read, its last cursor and the rows the server touched for it."""
    before_id, before = rows_touched(shop)
    pages = list(shop.order_pages(cursor))
    after_id, after = rows_touched(shop)
    assert before_id == after_id  # one connection: its counters are the pass's
    orders = [order for page in pages for order in page.orders]
    cursors = [page.cursor for page in pages if page.cursor]
    return orders, (cursors[-1] if cursors else cursor), after - before


def dj_shop(url: str, **keys: Any) -> DujiaokaShop:
    return DujiaokaShop(DujiaokaSettings(kind="dujiaoka", database_url=url, **keys))


def test_a_pass_without_the_index_reads_new_orders_and_recent_changes_not_the_table(shop_db):  # noqa: F811
    """Issue 15: every pass scanned and sorted all of ``orders`` (no index on updated_at upstream). Now a pass with
    nothing new touches the orders of the last ``recheck_days`` (about 1/13 of this table) and a few probes."""
    engine, url = shop_db
    fill_dujiaoka(engine)
    shop = dj_shop(url, lookback_seconds=0, recheck_days=31)
    try:
        backfill, cursor, _ = read(shop, None)
        assert len(backfill) == FILLER
        nothing, cursor, touched = read(shop, cursor)
        assert nothing == []
        recent = timedelta(days=31) // STEP  # the orders a pass looks at for changes
        assert touched < recent + 200, touched  # the old walk: ≥ FILLER rows (a full scan), on every page
        assert cursor is not None and json.loads(cursor)["top"] == FILLER
        now = shop_now()
        new = add_order(engine, "new@example.com", 4, "KM-NEW", now)
        recent_id = FILLER - (timedelta(days=10) // STEP)  # created ten days ago
        old_id = FILLER - (timedelta(days=200) // STEP)  # created two hundred days ago
        with engine.connect() as conn:
            conn.execute(
                text("UPDATE orders SET status = 5, updated_at = :t WHERE id IN (:a, :b)"),
                {"t": now, "a": recent_id, "b": old_id},
            )
        changed, cursor, touched = read(shop, cursor)
        assert {o.id: o.status for o in changed} == {str(new): OrderStatus.PAID, str(recent_id): OrderStatus.UNPAID}
        assert touched < recent + 200, touched
        # The order created 200 days ago is beyond recheck_days: the pass does not see its change. Reconcile reads
        # every stored paid order by id (OrderPresence) and does; so does a backfill.
        assert shop.orders_present([str(old_id)]).orders[0].status is OrderStatus.UNPAID
        assert {o.id: o.status for o in read(shop, None)[0]}[str(old_id)] is OrderStatus.UNPAID
        with engine.connect() as conn:
            plan = (
                conn.execute(
                    text("EXPLAIN " + dujiaoka.WINDOWS.format(columns=dujiaoka.COLUMNS, table="`orders`")),
                    {"last": 0, "stop": 20_000, "top": FILLER, "at": now, "tie": 0, "limit": 100},
                )
                .mappings()
                .first()
            )
        assert plan is not None and (plan["type"], plan["key"]) == ("range", "PRIMARY")
        # The cursor stays a minute behind the database's clock (CLOCK_MARGIN): what changed in that minute is read
        # again, and only that, until it is older.
        assert json.loads(cursor)["id"] == 0
        assert sorted(int(o.id) for o in read(shop, cursor)[0]) == sorted([recent_id, new])
    finally:
        shop.close()


def test_a_change_made_while_a_pass_reads_its_windows_is_read_by_the_next_pass(shop_db, monkeypatch):  # noqa: F811
    """Windows go in id order, so a row changed after its window was read can carry the same second as a row read
    later: the cursor never passes the database's clock at the start of the pass (less a margin), so the next pass
    reads it (lookback_seconds = 0: no other margin)."""
    engine, url = shop_db
    monkeypatch.setattr(dujiaoka, "ID_WINDOW", 3)
    hour_ago = shop_now() - timedelta(hours=1)
    ids = [add_order(engine, f"r{i}@example.com", 4, f"KM-{i}", hour_ago) for i in range(8)]
    shop = dj_shop(url, lookback_seconds=0, page_size=2)
    try:
        cursor = read(shop, None)[1]
        now = shop_now()
        with engine.connect() as conn:  # changed before the pass: one in the first window, one in the last
            conn.execute(
                text("UPDATE orders SET status = 2, updated_at = :t WHERE id IN (:a, :b)"),
                {"t": now, "a": ids[1], "b": ids[7]},
            )
        pages = shop.order_pages(cursor)
        first = next(pages)
        assert [o.id for o in first.orders] == [str(ids[1])] and first.cursor is None  # only the last page moves it
        with engine.connect() as conn:  # the race: a row of the window just read changes, in the same second
            conn.execute(text("UPDATE orders SET status = 5, updated_at = :t WHERE id = :id"), {"t": now, "id": ids[0]})
        rest = list(pages)
        assert [o.id for p in rest for o in p.orders] == [str(ids[7])]
        cursor = rest[-1].cursor
        assert cursor is not None
        again = read(shop, cursor)[0]
        assert str(ids[0]) in {o.id for o in again}
        assert {o.id: o.status for o in again}[str(ids[0])] is OrderStatus.UNPAID
    finally:
        shop.close()


def test_with_the_index_the_pass_is_the_walk_by_updated_at(shop_db):  # noqa: F811
    engine, url = shop_db
    fill_dujiaoka(engine, 2_000)
    shop = dj_shop(url, lookback_seconds=0)
    try:
        cursor = read(shop, None)[1]
        with engine.connect() as conn:
            conn.execute(text("CREATE INDEX `idx_updated_at` ON `orders` (`updated_at`, `id`)"))
        new = add_order(engine, "new@example.com", 4, "KM-NEW", shop_now())
        orders, cursor, touched = read(shop, cursor)  # the cursor of a windowed pass resumes the walk
        assert [o.id for o in orders] == [str(new)]
        assert touched < 50, touched  # a range read of the index, not 2,000 rows
        assert cursor is not None and json.loads(cursor)["id"] == new
    finally:
        shop.close()


def test_the_bisection_finds_the_first_recent_id_and_counts_no_date_as_old(shop_db):  # noqa: F811
    engine, _ = shop_db
    start = fill_dujiaoka(engine, 1_000)
    with engine.connect() as conn:
        conn.execute(text("UPDATE orders SET created_at = NULL WHERE id IN (500, 700)"))
        conn.execute(text("UPDATE orders SET created_at = '0000-00-00 00:00:00' WHERE id = 701"))
        conn.execute(text("DELETE FROM orders WHERE id BETWEEN 300 AND 400"))
        for since, expected in [
            (start, 1),
            (start + STEP * 450, 450),  # 500 has no date: it counts as recent
            (start + STEP * 350, 401),  # the first row at or after it (300–400 are gone)
            (start + STEP * 5_000, None),
        ]:
            assert first_id_since(conn, "`orders`", "created_at", since) == expected, since
        # 702 is the first dated row as recent, but 700 and 701 have no date, nor has 500: ids do not grow with the
        # date here, and the answer is on the safe side of every row without one (more rows read, none missed)
        assert first_id_since(conn, "`orders`", "created_at", start + STEP * 700) in (500, 700)


@pytest.fixture
def acg_shop(shop_db):  # noqa: F811
    engine, url = shop_db
    with engine.connect() as conn:
        for statement in ACG_DDL:
            conn.execute(text(statement))
        start = shop_now() - timedelta(hours=1) - STEP * FILLER
        conn.execute(
            text(
                "INSERT INTO acg_order (owner, trade_no, amount, commodity_id, card_num, create_time, pay_time, status, "
                "secret, contact) SELECT 0, CONCAT('T', seq), 30, 7, 1, :start + INTERVAL (seq * :step) SECOND, "
                ":start + INTERVAL (seq * :step + 30) SECOND, 1, 'KM-FILLER', CONCAT('f', seq, '@example.com') "
                f"FROM seq_1_to_{FILLER}"
            ),
            {"start": start, "step": int(STEP.total_seconds())},
        )
    shop = AcgFakaShop(AcgFakaSettings(kind="acgfaka", database_url=url, lookback_seconds=600))
    yield engine, shop
    shop.close()


def test_acgfaka_late_payments_are_found_without_scanning_the_table(acg_shop):
    """The lookback by pay_time (no index upstream) read every order up to the watermark on every pass."""
    engine, shop = acg_shop
    cursor = read(shop, None)[1]
    assert cursor is not None and json.loads(cursor)["id"] == FILLER
    late = FILLER - (timedelta(days=3) // STEP)  # ordered three days ago, paid just now (a late payment callback)
    with engine.connect() as conn:
        conn.execute(text("UPDATE acg_order SET pay_time = :t WHERE id = :id"), {"t": shop_now(), "id": late})
    orders, cursor, touched = read(shop, cursor)
    assert str(late) in {o.id for o in orders}
    assert touched < timedelta(days=31) // STEP + 500, touched  # the old lookback: ≥ FILLER rows by primary key


def test_sync_and_reconcile_on_a_shop_without_the_index(world, shop_db):  # noqa: F811
    """Through the CLI: the backfill grants, a sync grants a new order and revokes a refund of ten days ago; a refund
    of an order from 200 days ago (beyond recheck_days) is left to reconcile, which revokes it."""
    engine, url = shop_db
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO goods (id, gd_name, actual_price, type) VALUES (1, 'filler', 10, 1)"))
    fill_dujiaoka(engine, status=1, email="'window-shopper@example.com'")  # one buyer who never paid
    world.set_shop(f'kind = "dujiaoka"\ndatabase_url = "{url}"\nlookback_seconds = 0')
    old_id = FILLER - (timedelta(days=200) // STEP)
    recent_id = FILLER - (timedelta(days=10) // STEP)
    with engine.connect() as conn:
        for order_id, email in ((old_id, "old@example.com"), (recent_id, "recent@example.com")):
            conn.execute(text("UPDATE orders SET status = 4, email = :e WHERE id = :id"), {"e": email, "id": order_id})
    for name in ("old", "recent", "new"):
        world.forum.add_user(name, f"{name}@example.com")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert {u for u in ("old", "recent") if "Verified Buyer" in world.forum.badges_of(u)} == {"old", "recent"}
    now = shop_now()
    add_order(engine, "new@example.com", 4, "KM-NEW", now)
    with engine.connect() as conn:  # both refunded in the admin: status 5, updated_at now
        conn.execute(
            text("UPDATE orders SET status = 5, updated_at = :t WHERE id IN (:a, :b)"),
            {"t": now, "a": old_id, "b": recent_id},
        )
    again = world.cli("sync")
    assert again.code == 0, again.output
    assert "Verified Buyer" in world.forum.badges_of("new")
    assert "Verified Buyer" not in world.forum.badges_of("recent")
    assert "Verified Buyer" in world.forum.badges_of("old")  # created 200 days ago: not looked at by a sync
    fixed = world.cli("reconcile")
    assert fixed.code == 0, fixed.output
    assert "Verified Buyer" not in world.forum.badges_of("old")  # every stored paid order is re-read by id
    assert "Verified Buyer" in world.forum.badges_of("new")


def test_a_gap_in_the_ids_costs_one_read_not_one_query_per_window(shop_db, acg_shop):  # noqa: F811
    """Ids need not be dense (an import, auto_increment_increment, a row id 10⁸ typed by hand): the windows jump over
    a gap instead of querying every empty range of 20,000 ids (5,000 queries here)."""
    engine, url = shop_db
    fill_dujiaoka(engine, 1_000)
    add_order(engine, "before@example.com", 4, "KM-GAP", shop_now() - timedelta(hours=1))
    with engine.connect() as conn:
        conn.execute(text("UPDATE orders SET id = 100000000 WHERE email = 'before@example.com'"))
    shop = dj_shop(url, lookback_seconds=0)
    acg_engine, acg = acg_shop
    with acg_engine.connect() as conn:
        conn.execute(
            text("UPDATE acg_order SET id = 100000000, pay_time = :t WHERE id = :id"), {"t": shop_now(), "id": FILLER}
        )
    statements: list[str] = []
    for adapter in (shop, acg):
        event.listen(adapter.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        orders, cursor, _ = read(shop, None)
        assert len(orders) == 1_001 and cursor is not None and json.loads(cursor)["top"] == 100_000_000
        statements.clear()
        add_order(engine, "after@example.com", 4, "KM-GAP-2", shop_now())
        orders, _, _ = read(shop, cursor)
        assert [o.id for o in orders] == ["100000001"]
        assert len(statements) < 100, len(statements)
        acg_cursor = json.dumps({"id": 100_000_000, "at": iso(datetime.now(UTC) - timedelta(minutes=5))})
        statements.clear()
        assert "100000000" in {o.id for o in read(acg, acg_cursor)[0]}  # paid in the lookback, beyond the gap
        assert len(statements) < 100, len(statements)
    finally:
        shop.close()
