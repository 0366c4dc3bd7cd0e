"""独角数卡 (dujiaoka) read from a real MariaDB: paid buyers get the grant, failures revoke, no card secret is kept."""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

MARIADB = os.environ.get("CARDBRIDGE_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")

# The columns of SCHEMAS.md that matter here, secrets included (the connector must never read them).
DDL = [
    """CREATE TABLE goods (id INT PRIMARY KEY, group_id INT, gd_name VARCHAR(200), actual_price DECIMAL(10,2),
       type TINYINT(1), created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL, deleted_at TIMESTAMP NULL)""",
    """CREATE TABLE carmis (id BIGINT PRIMARY KEY AUTO_INCREMENT, goods_id INT, status TINYINT(1), is_loop TINYINT(1),
       carmi TEXT, created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL, deleted_at TIMESTAMP NULL)""",
    """CREATE TABLE orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, order_sn VARCHAR(150), goods_id INT, coupon_id INT,
       title VARCHAR(200), type TINYINT(1), goods_price DECIMAL(10,2), buy_amount INT, total_price DECIMAL(10,2),
       actual_price DECIMAL(10,2), search_pwd VARCHAR(200), email VARCHAR(200), info TEXT, pay_id INT,
       buy_ip VARCHAR(50), trade_no VARCHAR(200), status TINYINT(1), coupon_ret_back TINYINT(1),
       created_at TIMESTAMP NULL, updated_at TIMESTAMP NULL, deleted_at TIMESTAMP NULL)""",
]


@pytest.fixture
def shop_db():
    try:
        admin = create_engine(MARIADB + "/", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:
        if os.environ.get("CI"):
            pytest.fail(f"MariaDB is required in CI ({MARIADB}): {error}")
        pytest.skip(f"MariaDB not reachable at {MARIADB}: {error}")
    name = f"dujiaoka_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine = create_engine(f"{MARIADB}/{name}?charset=utf8mb4", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for statement in DDL:
            conn.execute(text(statement))
    yield engine, f"{MARIADB}/{name}?charset=utf8mb4"
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE `{name}`"))
    admin.dispose()


def add_order(engine, email, status, secret, when):
    with engine.connect() as conn:
        result = conn.execute(
            text(
                "INSERT INTO orders (order_sn, goods_id, title, buy_amount, total_price, actual_price, search_pwd, email, "
                "info, buy_ip, trade_no, status, created_at, updated_at) VALUES (:sn, 1, '王者荣耀 点券 60元', 1, 60, 60, "
                "'pw-9981', :email, :info, '10.1.2.3', :trade, :status, :when, :when)"
            ),
            {
                "sn": uuid.uuid4().hex[:16],
                "email": email,
                "info": f"卡密: {secret}",
                "trade": f"2026{uuid.uuid4().int % 10**12}",
                "status": status,
                "when": when,
            },
        )
        return result.lastrowid


@pytest.fixture
def dj_world(world, shop_db):
    engine, url = shop_db
    with engine.connect() as conn:
        conn.execute(
            text("INSERT INTO goods (id, gd_name, actual_price, type) VALUES (1, '王者荣耀 点券 60元', 60, 1)")
        )
        conn.execute(text("INSERT INTO carmis (goods_id, status, is_loop, carmi) VALUES (1, 1, 0, 'KM-STOCK-0001')"))
    world.set_shop(f'kind = "dujiaoka"\ndatabase_url = "{url}"\nlookback_seconds = 0')
    world.engine = engine
    now = datetime.now().replace(microsecond=0)
    world.paid = add_order(engine, "Buyer@Example.com", 4, "KM-SECRET-AAAA", now - timedelta(minutes=5))
    world.processing = add_order(engine, "manual@example.com", 2, "KM-SECRET-BBBB", now - timedelta(minutes=4))
    world.unpaid = add_order(engine, "window@example.com", 1, "KM-SECRET-CCCC", now - timedelta(minutes=3))
    world.expired = add_order(engine, "late@example.com", -1, "KM-SECRET-DDDD", now - timedelta(minutes=2))
    for username, email in [
        ("buyer", "buyer@example.com"),
        ("manual", "manual@example.com"),
        ("window", "window@example.com"),
        ("late", "late@example.com"),
    ]:
        world.forum.add_user(username, email)
    return world


def test_paid_statuses_grant_failures_revoke_and_secrets_stay_in_the_shop(dj_world):
    world = dj_world
    run = world.cli("sync")
    assert run.code == 0, run.output
    holders = {u for u in ("buyer", "manual", "window", "late") if "Verified Buyer" in world.forum.badges_of(u)}
    assert holders == {"buyer", "manual"}
    later = datetime.now().replace(microsecond=0) + timedelta(seconds=1)
    with world.engine.connect() as conn:  # the manual delivery failed: 5 处理失败
        conn.execute(
            text("UPDATE orders SET status = 5, updated_at = :t WHERE id = :id"), {"t": later, "id": world.processing}
        )
    again = world.cli("sync")
    assert again.code == 0, again.output
    assert "Verified Buyer" not in world.forum.badges_of("manual")
    assert "Verified Buyer" in world.forum.badges_of("buyer")
    stored = b"".join(p.read_bytes() for p in world.dir.glob("state.db*"))
    for secret in (
        "KM-SECRET-AAAA",
        "KM-SECRET-BBBB",
        "KM-STOCK-0001",
        "pw-9981",
        "10.1.2.3",
        "卡密".encode().decode(),
    ):
        assert secret.encode() not in stored, secret
        assert secret not in run.output + again.output


def test_keyset_walk_reads_every_row_sharing_a_second_once(shop_db):
    from adapters.shops.dujiaoka import DujiaokaShop
    from adapters.shops.sql import DatabaseShopSettings
    from connector.core.models import OrderStatus

    engine, url = shop_db
    same = datetime(2026, 11, 1, 20, 0, 0)  # Asia/Shanghai: 12:00 UTC
    ids = [add_order(engine, f"t{i}@example.com", 4, f"KM-{i}", same) for i in range(5)]
    with engine.connect() as conn:
        conn.execute(text("UPDATE orders SET deleted_at = :t WHERE id = :id"), {"t": same, "id": ids[-1]})
    shop = DujiaokaShop(DatabaseShopSettings(kind="dujiaoka", database_url=url, page_size=2, lookback_seconds=0))
    pages = list(shop.order_pages(None))
    seen = [o.id for p in pages for o in p.orders]
    assert seen == [str(i) for i in ids]
    assert pages[-1].orders[-1].status is OrderStatus.DELETED  # soft-deleted
    assert pages[0].orders[0].modified_at.isoformat() == "2026-11-01T12:00:00+00:00"
    again = list(shop.order_pages(pages[-1].cursor))
    assert [o.id for p in again for o in p.orders] == []  # resumes after the last (updated_at, id)
    shop.close()


def test_rows_with_zero_or_far_future_dates_are_quarantined_alone(dj_world):
    """Issue 12, item 5: a zero date (which MySQL keeps and hands over as text) and a date years ahead stopped the
    pass, or would have carried the cursor past every order still to come."""
    world = dj_world
    now = datetime.now().replace(microsecond=0)
    zero = add_order(world.engine, "zero@example.com", 4, "KM-SECRET-ZERO", now - timedelta(minutes=1))
    ahead = add_order(world.engine, "ahead@example.com", 4, "KM-SECRET-AHEAD", datetime(2037, 12, 31, 23, 59, 59))
    with world.engine.connect() as conn:
        conn.execute(text("UPDATE orders SET created_at = '0000-00-00 00:00:00' WHERE id = :id"), {"id": zero})
        # a zero deleted_at is no deletion: the buyer's order stands
        conn.execute(text("UPDATE orders SET deleted_at = '0000-00-00 00:00:00' WHERE id = :id"), {"id": world.paid})
    for username in ("zero", "ahead", "later"):
        world.forum.add_user(username, f"{username}@example.com")
    run = world.cli("sync")
    assert run.code == 0, run.output
    holders = {u for u in ("buyer", "manual", "zero", "ahead") if "Verified Buyer" in world.forum.badges_of(u)}
    assert holders == {"buyer", "manual"}
    reasons = {q["record_id"]: q["reason"] for q in world.cli("status", "--json").json()["quarantined"]["records"]}
    assert reasons == {
        str(zero): "created_at is not a date (a zero date such as 0000-00-00 reads as text)",
        str(ahead): "created_at: Value error, timestamp is more than a day in the future; "
        "modified_at: Value error, timestamp is more than a day in the future",
    }
    add_order(world.engine, "later@example.com", 4, "KM-SECRET-LATER", datetime.now().replace(microsecond=0))
    again = world.cli("sync")
    assert again.code == 0, again.output
    assert "Verified Buyer" in world.forum.badges_of("later")  # the cursor did not jump to 2037


def test_a_shop_database_that_cannot_be_read_is_one_clear_error_not_a_traceback(world):
    """A database shop whose database is gone (or a driver error of any kind) ends the pass with one line naming the
    shop and exit 1, like an HTTP shop that is down; no SQL, no parameters, no traceback."""
    missing = f"cardbridge_missing_{uuid.uuid4().hex[:8]}"
    world.set_shop(f'kind = "dujiaoka"\ndatabase_url = "{MARIADB}/{missing}"')
    run = world.cli("sync")
    assert run.code == 1, run.output
    assert "shop: OperationalError" in run.output and missing in run.output
    assert "Traceback" not in run.output and "[SQL:" not in run.output


def test_status_6_is_paid_and_deleted_orders_stop_granting(dj_world):
    """Issue 13, items 8 and 9. 6 异常 is set after the payment, when automatic delivery ran out of stock: a paid order.
    An order soft-deleted in the admin (deleted_at and updated_at set) revokes on the next sync and grants again when
    restored; a row deleted from the database is found gone by reconcile."""
    world = dj_world
    now = datetime.now().replace(microsecond=0)
    world.stockout = add_order(world.engine, "stockout@example.com", 6, "KM-SECRET-EEEE", now - timedelta(minutes=1))
    world.forum.add_user("stockout", "stockout@example.com")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert "Verified Buyer" in world.forum.badges_of("stockout")
    later = now + timedelta(seconds=2)
    with world.engine.connect() as conn:  # the admin deletes the manual order: Laravel's soft delete
        conn.execute(
            text("UPDATE orders SET deleted_at = :t, updated_at = :t WHERE id = :id"),
            {"t": later, "id": world.processing},
        )
        conn.execute(text("DELETE FROM orders WHERE id = :id"), {"id": world.paid})  # deleted by hand
    soft = world.cli("sync")
    assert soft.code == 0, soft.output
    assert "Verified Buyer" not in world.forum.badges_of("manual")
    assert "Verified Buyer" in world.forum.badges_of("buyer")  # a deleted row leaves nothing a sync can read
    hard = world.cli("reconcile")
    assert hard.code == 0, hard.output
    assert "Verified Buyer" not in world.forum.badges_of("buyer")
    assert "1 paid order(s) are gone from the shop" in hard.stdout
    with world.engine.connect() as conn:  # restored from the trash: restore() saves the row
        conn.execute(
            text("UPDATE orders SET deleted_at = NULL, updated_at = :t WHERE id = :id"),
            {"t": later + timedelta(seconds=1), "id": world.processing},
        )
    back = world.cli("sync")
    assert back.code == 0, back.output
    assert "Verified Buyer" in world.forum.badges_of("manual")
    assert "Verified Buyer" in world.forum.badges_of("stockout")


def test_the_status_map_can_hold_status_6_back(dj_world):
    world = dj_world
    text_ = world.config_path.read_text().replace(
        "lookback_seconds = 0", 'lookback_seconds = 0\nstatus_map = { "6" = "disputed" }'
    )
    world.config_path.write_text(text_)
    add_order(world.engine, "stockout@example.com", 6, "KM-SECRET-EEEE", datetime.now().replace(microsecond=0))
    world.forum.add_user("stockout", "stockout@example.com")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert "Verified Buyer" not in world.forum.badges_of("stockout")
    assert "Verified Buyer" in world.forum.badges_of("buyer")
