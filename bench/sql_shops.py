"""The database shops at scale: one pass with no new orders over 1,000,000 orders in the upstream schema.

    .venv/bin/python bench/sql_shops.py                   # 1,000,000 orders, dujiaoka and acg-faka
    .venv/bin/python bench/sql_shops.py --orders 100000   # smaller, for a quick look

Fills a throw-away database on the local MariaDB (``CARDBRIDGE_BENCH_MYSQL``, default root on 127.0.0.1:3306; dropped
after) with the shop's ``orders`` table as its installer creates it (no index on dujiaoka's ``updated_at`` nor on
acg-faka's ``pay_time``), then times the adapter's pass from a cursor at the newest order, three ways: the old query
without the index, the id windows without the index, and the plain query after ``CREATE INDEX``. Besides seconds it
reports the rows the server touched: the deltas of the session's ``Handler_read_*`` counters on the adapter's own
connection (``rnd_next`` counts a full scan's rows, ``next`` rows read along an index or the primary key, ``key``
index look-ups).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.shops.acgfaka import AcgFakaSettings, AcgFakaShop
from adapters.shops.dujiaoka import DujiaokaSettings, DujiaokaShop
from connector.core.clock import iso

MARIADB = os.environ.get("CARDBRIDGE_BENCH_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
ZONE = ZoneInfo("Asia/Shanghai")
#: Two years of orders, the newest ten minutes old.
SPAN = timedelta(days=730)

# dujiaoka's `orders` as assimon/dujiaoka database/sql/install.sql:406-434 creates it: keys on id, order_sn, goods_id
# and email only (:430-433), none on updated_at.
DUJIAOKA_ORDERS = """
CREATE TABLE `orders` (
  `id` bigint NOT NULL AUTO_INCREMENT, `order_sn` varchar(150) NOT NULL, `goods_id` int NOT NULL,
  `coupon_id` int DEFAULT 0, `title` varchar(200) CHARACTER SET utf8mb4 NOT NULL, `type` tinyint(1) NOT NULL DEFAULT 1,
  `goods_price` decimal(10,2) NOT NULL DEFAULT 0, `buy_amount` int NOT NULL DEFAULT 1,
  `coupon_discount_price` decimal(10,2) NOT NULL DEFAULT 0, `wholesale_discount_price` decimal(10,2) NOT NULL DEFAULT 0,
  `total_price` decimal(10,2) NOT NULL DEFAULT 0, `actual_price` decimal(10,2) NOT NULL DEFAULT 0,
  `search_pwd` varchar(200) DEFAULT '', `email` varchar(200) NOT NULL, `info` text CHARACTER SET utf8mb4,
  `pay_id` int DEFAULT NULL, `buy_ip` varchar(50) NOT NULL, `trade_no` varchar(200) DEFAULT '',
  `status` tinyint(1) NOT NULL DEFAULT 1, `coupon_ret_back` tinyint(1) NOT NULL DEFAULT 0,
  `created_at` timestamp NULL DEFAULT NULL, `updated_at` timestamp NULL DEFAULT NULL,
  `deleted_at` timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`id`), UNIQUE KEY `idx_order_sn` (`order_sn`), KEY `idx_goods_id` (`goods_id`), KEY `idex_email` (`email`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3
"""
DUJIAOKA_FILL = """
INSERT INTO `orders` (`id`, `order_sn`, `goods_id`, `title`, `goods_price`, `buy_amount`, `total_price`,
  `actual_price`, `search_pwd`, `email`, `info`, `pay_id`, `buy_ip`, `trade_no`, `status`, `created_at`, `updated_at`)
SELECT k, CONCAT('SN', LPAD(k, 14, '0')), 1 + k % 50, '王者荣耀 点券 60元', 60, 1, 60, 60, 'pw',
  CONCAT('buyer', k % 200000, '@example.com'), CONCAT('卡密: ', MD5(k), ' ', MD5(k + 1)), 1, '10.1.2.3',
  CONCAT('2026', k), IF(k % 10 = 0, 1, 4), :start + INTERVAL (k * :step) SECOND,
  :start + INTERVAL (k * :step + 30) SECOND
FROM (SELECT seq + :offset AS k FROM seq_1_to_{n}) AS numbers
"""

# acg-faka's `order` as lizhipay/acg-faka kernel/Install/Install.sql:346-395 creates it (the columns the adapter reads
# or that weigh on a row's size); indexes as at :380-394, among them create_time (:391), none on pay_time.
ACGFAKA_ORDERS = """
CREATE TABLE `acg_order` (
  `id` int UNSIGNED NOT NULL AUTO_INCREMENT, `owner` int UNSIGNED NOT NULL DEFAULT 0,
  `user_id` int UNSIGNED NOT NULL DEFAULT 0, `trade_no` char(19) NOT NULL, `amount` decimal(10,2) UNSIGNED NOT NULL,
  `commodity_id` int UNSIGNED NOT NULL, `card_id` int UNSIGNED NULL, `card_num` int UNSIGNED NOT NULL DEFAULT 0,
  `pay_id` int UNSIGNED NOT NULL, `create_time` datetime NOT NULL, `create_ip` varchar(64) NOT NULL,
  `create_device` tinyint UNSIGNED NOT NULL, `pay_time` datetime NULL, `status` tinyint UNSIGNED NOT NULL DEFAULT 0,
  `secret` longtext NULL, `password` varchar(32) NULL, `contact` varchar(32) NULL,
  `delivery_status` tinyint UNSIGNED NOT NULL DEFAULT 0, `pay_url` varchar(1024) NULL, `coupon_id` int UNSIGNED NULL,
  `from` int UNSIGNED NULL, `substation_user_id` int(10) UNSIGNED NULL, `request_no` char(19),
  PRIMARY KEY (`id`), UNIQUE INDEX `trade_no` (`trade_no`), UNIQUE INDEX `request_no` (`request_no`),
  INDEX `commodity_id` (`commodity_id`), INDEX `pay_id` (`pay_id`), INDEX `contact` (`contact`),
  INDEX `create_ip` (`create_ip`), INDEX `owner` (`owner`), INDEX `from` (`from`), INDEX `user_id` (`user_id`),
  INDEX `card_id` (`card_id`), INDEX `create_time` (`create_time`), INDEX `delivery_status` (`delivery_status`),
  INDEX `substation_user_id` (`substation_user_id`), INDEX `coupon_id` (`coupon_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""
ACGFAKA_FILL = """
INSERT INTO `acg_order` (`id`, `owner`, `trade_no`, `amount`, `commodity_id`, `card_num`, `pay_id`, `create_time`,
  `create_ip`, `create_device`, `pay_time`, `status`, `secret`, `password`, `contact`, `delivery_status`, `request_no`)
SELECT k, 0, LPAD(k, 19, '0'), 30, 1 + k % 50, 1, 1, :start + INTERVAL (k * :step) SECOND, '10.9.8.7', 0,
  IF(k % 10 = 0, NULL, :start + INTERVAL (k * :step + 30) SECOND), IF(k % 10 = 0, 0, 1),
  CONCAT(MD5(k), ' ', MD5(k + 1)), 'pw', CONCAT('buyer', k % 200000, '@example.com'), 1, LPAD(k, 19, 'r')
FROM (SELECT seq + :offset AS k FROM seq_1_to_{n}) AS numbers
"""
HANDLERS = ("Handler_read_rnd_next", "Handler_read_next", "Handler_read_key", "Handler_read_first", "Handler_read_prev")


@dataclass
class Pass:
    """One way of running the pass: its median seconds, the server's row counters, the orders it yielded."""

    name: str
    seconds: float
    handlers: dict[str, int]
    orders: int
    plan: str = ""

    @property
    def rows(self) -> int:
        return sum(self.handlers.values())

    def line(self) -> str:
        counters = ", ".join(f"{k.removeprefix('Handler_read_')} {v:,}" for k, v in self.handlers.items() if v)
        return f"{self.name}: {self.seconds:.3f} s, {self.rows:,} rows touched ({counters}); {self.orders} orders read"


@dataclass
class ShopResult:
    shop: str
    orders: int
    fill_seconds: float
    index_seconds: float
    passes: list[Pass]
    index: str


@contextmanager
def database(prefix: str) -> Iterator[tuple[Engine, str]]:
    admin = create_engine(MARIADB + "/", isolation_level="AUTOCOMMIT")
    name = f"cb_bench_{prefix}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = f"{MARIADB}/{name}?charset=utf8mb4"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        yield engine, url
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE `{name}`"))
        admin.dispose()


def fill(engine: Engine, ddl: str, statement: str, n: int) -> tuple[float, datetime]:
    """Create the table and insert ``n`` orders, oldest first (ids grow with the creation time, as in the shops);
    returns the seconds it took and the newest order's local time."""
    step = max(1, int(SPAN.total_seconds() // n))
    start = (datetime.now(ZONE) - timedelta(minutes=10)).replace(tzinfo=None, microsecond=0) - timedelta(
        seconds=step * n
    )
    began = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(text(ddl))
        done = 0
        while done < n:  # in chunks of 200,000: one huge transaction would dwarf the 128 MB buffer pool
            chunk = min(200_000, n - done)
            conn.execute(text(statement.format(n=chunk)), {"start": start, "step": step, "offset": done})
            done += chunk
        conn.execute(text("ANALYZE TABLE " + ddl.split("`")[1]))
    return time.perf_counter() - began, start + timedelta(seconds=step * n + 30)


def handlers(shop: Any) -> tuple[int, dict[str, int]]:
    with shop.engine.connect() as conn:
        ident = int(conn.execute(text("SELECT CONNECTION_ID()")).scalar())
        rows = conn.execute(text("SHOW SESSION STATUS LIKE 'Handler_read%'")).all()
    return ident, {str(name): int(value) for name, value in rows if name in HANDLERS}


def measure(name: str, shop: Any, cursor: str, runs: int, plan: str = "") -> Pass:
    """The pass ``runs`` times (median seconds); the counters of the last run, read on the adapter's connection."""
    seconds: list[float] = []
    for _ in range(runs):
        before_id, before = handlers(shop)
        began = time.perf_counter()
        orders = sum(len(page.orders) for page in shop.order_pages(cursor))
        seconds.append(time.perf_counter() - began)
        after_id, after = handlers(shop)
        if before_id != after_id:
            raise RuntimeError("the adapter changed connections: the session counters cannot be compared")
    delta = {k: after[k] - before.get(k, 0) for k in HANDLERS if k in after}
    # the two SHOW STATUS reads themselves touch a few rows of their own; they are the same in every column
    return Pass(name, statistics.median(seconds), delta, orders, plan)


def explain(engine: Engine, query: str, params: dict[str, Any]) -> str:
    with engine.connect() as conn:
        row = conn.execute(text("EXPLAIN " + query), params).mappings().first()
    if row is None:
        return ""
    return f"EXPLAIN: type {row.get('type')}, key {row.get('key') or '—'}, ~{row.get('rows')} rows"


def bench_dujiaoka(n: int, runs: int) -> ShopResult:
    from adapters.shops import dujiaoka

    with database("dujiaoka") as (engine, url):
        filled, newest = fill(engine, DUJIAOKA_ORDERS, DUJIAOKA_FILL, n)
        shop = DujiaokaShop(DujiaokaSettings(kind="dujiaoka", database_url=url))
        try:
            at = newest.replace(tzinfo=ZONE)
            cursor = json.dumps({"at": iso(at), "id": n, "top": n})
            local_since = shop.local(at - timedelta(seconds=shop.config.lookback_seconds))
            walk_params = {"at": local_since, "id": 0, "limit": shop.config.page_size}
            walk = dujiaoka.WALK.format(columns=dujiaoka.COLUMNS, table="`orders`")
            passes = []
            shop.use_windows = False
            passes.append(measure("old query, no index", shop, cursor, runs, explain(engine, walk, walk_params)))
            shop.use_windows = None
            window = dujiaoka.WINDOWS.format(columns=dujiaoka.COLUMNS, table="`orders`")
            window_plan = explain(
                engine,
                window,
                {"last": n - 40_000, "stop": n - 20_000, "top": n, "at": local_since, "tie": 0, "limit": 100},
            )
            passes.append(measure("id windows, no index", shop, cursor, runs, window_plan))
            index = "CREATE INDEX `idx_updated_at` ON `orders` (`updated_at`, `id`)"
            began = time.perf_counter()
            with engine.connect() as conn:
                conn.execute(text(index))
            built = time.perf_counter() - began
            passes.append(measure("with the index", shop, cursor, runs, explain(engine, walk, walk_params)))
        finally:
            shop.close()
    return ShopResult("dujiaoka", n, filled, built, passes, index)


def bench_acgfaka(n: int, runs: int) -> ShopResult:
    from adapters.shops import acgfaka

    with database("acgfaka") as (engine, url):
        filled, newest = fill(engine, ACGFAKA_ORDERS, ACGFAKA_FILL, n)
        shop = AcgFakaShop(AcgFakaSettings(kind="acgfaka", database_url=url))
        try:
            at = newest.replace(tzinfo=ZONE)
            cursor = json.dumps({"id": n, "at": iso(at)})
            since = shop.local(at - timedelta(seconds=shop.config.lookback_seconds))
            columns = ", ".join(f"`{c}`" for c in acgfaka.ORDER_COLUMNS)
            paid = acgfaka.PAID.format(columns=columns, table="`acg_order`")
            passes = []
            shop.use_windows = False
            passes.append(
                measure("old query, no index", shop, cursor, runs, explain(engine, paid, {"t": since, "w": n}))
            )
            shop.use_windows = None
            windowed = acgfaka.PAID_WINDOW.format(columns=columns, table="`acg_order`")
            plan = explain(engine, windowed, {"t": since, "low": n - 40_000, "high": n - 20_000})
            passes.append(measure("id windows, no index", shop, cursor, runs, plan))
            index = "CREATE INDEX `idx_pay_time` ON `acg_order` (`pay_time`)"
            began = time.perf_counter()
            with engine.connect() as conn:
                conn.execute(text(index))
            built = time.perf_counter() - began
            passes.append(measure("with the index", shop, cursor, runs, explain(engine, paid, {"t": since, "w": n})))
        finally:
            shop.close()
    return ShopResult("acg-faka", n, filled, built, passes, index)


def summary(result: ShopResult) -> list[str]:
    old, windows, indexed = result.passes
    return [
        f"{result.shop} at {result.orders:,} orders (filled in {result.fill_seconds:.0f} s; "
        f"the index took {result.index_seconds:.1f} s to build): {result.index}",
        *(f"  {p.line()}; {p.plan}" for p in result.passes),
        f"  old ÷ windows: {old.seconds / windows.seconds:.1f}× the time, {old.rows / max(windows.rows, 1):.0f}× the "
        f"rows; windows ÷ index: {windows.seconds / indexed.seconds:.1f}× the time",
    ]


def rows(result: ShopResult) -> list[tuple[str, str, str, bool | None, str]]:
    """The figures for RESULTS.md: (name, value, target, met, how it was measured), one row per way of running."""
    column = {"dujiaoka": "updated_at", "acg-faka": "pay_time"}[result.shop]
    figures = []
    for p in result.passes:
        detail = f"{p.rows:,} rows touched (Handler_read_*); {p.plan}; median of the passes"
        figures.append(
            (
                f"{result.shop} pass over {result.orders:,} orders, no new rows: {p.name}",
                f"{p.seconds:.3f} s",
                "report",
                None,
                detail,
            )
        )
    old, windows, indexed = result.passes
    figures.append(
        (
            f"{result.shop} pass: old query ÷ id windows (no index on {column})",
            f"{old.seconds / windows.seconds:.1f}× time, {old.rows / max(windows.rows, 1):.0f}× rows",
            "report",
            None,
            f"with the index: {indexed.seconds:.3f} s; `` {result.index} `` took {result.index_seconds:.1f} s to build",
        )
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="passes per way (median reported)")
    parser.add_argument("--shop", choices=("dujiaoka", "acgfaka", "both"), default="both")
    args = parser.parse_args()
    benches = {"dujiaoka": [bench_dujiaoka], "acgfaka": [bench_acgfaka]}.get(args.shop, [bench_dujiaoka, bench_acgfaka])
    for bench in benches:
        print("\n".join(summary(bench(args.orders, args.runs))), flush=True)


if __name__ == "__main__":
    main()
