"""异次元发卡 (acg-faka) read from a real MariaDB: members and e-mail guests get the grant, late payments are seen,
phone contacts are quarantined, and no card secret is kept."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from tests.e2e.test_dujiaoka import shop_db  # noqa: F401  (the throw-away MariaDB database fixture)

DDL = [
    """CREATE TABLE acg_user (id INT PRIMARY KEY AUTO_INCREMENT, username VARCHAR(32), email VARCHAR(128),
       phone VARCHAR(16), password VARCHAR(64), salt VARCHAR(32), app_key VARCHAR(32), balance DECIMAL(14,2),
       alipay VARCHAR(64), login_ip VARCHAR(128), create_time DATETIME, status TINYINT)""",
    """CREATE TABLE acg_commodity (id INT PRIMARY KEY, category_id INT, name VARCHAR(255), price DECIMAL(10,2),
       status TINYINT, contact_type TINYINT)""",
    """CREATE TABLE acg_card (id INT PRIMARY KEY AUTO_INCREMENT, owner INT, commodity_id INT, secret VARCHAR(760),
       create_time DATETIME, purchase_time DATETIME, order_id INT, status TINYINT)""",
    """CREATE TABLE acg_order (id INT PRIMARY KEY AUTO_INCREMENT, owner INT, user_id INT, trade_no CHAR(19),
       amount DECIMAL(10,2), commodity_id INT, card_id INT, card_num INT, pay_id INT, create_time DATETIME,
       create_ip VARCHAR(64), pay_time DATETIME, status TINYINT, secret LONGTEXT, password VARCHAR(32),
       contact VARCHAR(32), delivery_status TINYINT, pay_url VARCHAR(1024))""",
    """CREATE TABLE acg_ticket (id INT PRIMARY KEY AUTO_INCREMENT, ticket_no CHAR(22), user_id INT, type TINYINT,
       status TINYINT, title VARCHAR(100), commodity_id INT, order_id INT, create_time DATETIME, update_time DATETIME)""",
]


def add_order(engine, owner, contact, status, secret, when, paid=None):
    with engine.connect() as conn:
        return conn.execute(
            text(
                "INSERT INTO acg_order (owner, user_id, trade_no, amount, commodity_id, card_num, create_time, create_ip, "
                "pay_time, status, secret, password, contact, pay_url) VALUES (:owner, 0, :trade, 30, 7, 1, :when, "
                "'10.9.8.7', :paid, :status, :secret, 'query-pw', :contact, 'https://pay.example/x')"
            ),
            {
                "owner": owner,
                "trade": uuid.uuid4().hex[:19],
                "when": when,
                "paid": paid,
                "status": status,
                "secret": secret,
                "contact": contact,
            },
        ).lastrowid


@pytest.fixture
def acg_world(world, shop_db):  # noqa: F811
    engine, url = shop_db
    with engine.connect() as conn:
        for statement in DDL:
            conn.execute(text(statement))
        conn.execute(
            text(
                "INSERT INTO acg_user (id, username, email, phone, password, salt, app_key, alipay, login_ip, "
                "status) VALUES (5, 'vip5', 'VIP5@example.com', '13812345678', 'hash', 'salt', 'appkey-s3cret', "
                "'alipay-acct', '10.0.0.9', 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO acg_commodity (id, name, price, status, contact_type) "
                "VALUES (7, 'Windows 11 专业版 激活码', 30, 1, 2)"
            )
        )
        conn.execute(
            text("INSERT INTO acg_card (owner, commodity_id, secret, status) VALUES (0, 7, 'KM-CARD-STOCK', 0)")
        )
        conn.execute(
            text(
                "INSERT INTO acg_ticket (ticket_no, user_id, type, status, title, order_id) "
                "VALUES ('T1', 5, 1, 0, 'key not working', 1)"
            )
        )
    world.set_shop(f'kind = "acgfaka"\ndatabase_url = "{url}"')
    world.engine = engine
    now = datetime.now().replace(microsecond=0)
    world.member = add_order(engine, 5, "", 1, "KM-ACG-AAAA", now - timedelta(hours=2), paid=now - timedelta(hours=2))
    world.guest = add_order(engine, 0, "Guest@Example.com", 0, "KM-ACG-BBBB", now - timedelta(hours=1))
    world.phone = add_order(engine, 0, "13900001111", 1, "KM-ACG-CCCC", now - timedelta(minutes=30), paid=now)
    world.forum.add_user("vip5", "vip5@example.com")
    world.forum.add_user("guest", "guest@example.com")
    return world


def test_members_guests_and_late_payments(acg_world):
    world = acg_world
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert world.forum.badges_of("vip5") == ["Verified Buyer"]
    assert world.forum.badges_of("guest") == []  # not paid yet
    status = world.cli("status", "--json").json()
    assert status["quarantined"]["records"][0]["record_id"] == str(world.phone)
    assert "not an email" in status["quarantined"]["records"][0]["reason"]
    with world.engine.connect() as conn:  # the guest pays an hour later: only pay_time and status change
        conn.execute(
            text("UPDATE acg_order SET status = 1, pay_time = :t WHERE id = :id"),
            {"t": datetime.now().replace(microsecond=0), "id": world.guest},
        )
    again = world.cli("sync")
    assert again.code == 0, again.output
    assert world.forum.badges_of("guest") == ["Verified Buyer"]
    with world.engine.connect() as conn:  # acg-faka has no refund status: a refunded order is set back to unpaid
        conn.execute(text("UPDATE acg_order SET status = 0 WHERE id = :id"), {"id": world.member})
    third = world.cli("sync")
    assert third.code == 0, third.output
    assert world.forum.badges_of("vip5") == []  # recent ids are read again on every pass
    stored = b"".join(p.read_bytes() for p in world.dir.glob("state.db*"))
    for secret in (
        "KM-ACG-AAAA",
        "KM-ACG-BBBB",
        "KM-ACG-CCCC",
        "KM-CARD-STOCK",
        "query-pw",
        "10.9.8.7",
        "13900001111",
        "13812345678",
        "appkey-s3cret",
        "alipay-acct",
        "pay.example",
    ):
        assert secret.encode() not in stored, secret
        assert secret not in run.output + again.output


def test_tickets_are_offered_as_metadata_only(acg_world, monkeypatch):
    from adapters.shops.acgfaka import AcgFakaShop
    from connector.core.config import load_config
    from tests.e2e.conftest import ENV

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    shop = AcgFakaShop(load_config(acg_world.config_path).shop)
    [tickets] = list(shop.ticket_pages())
    assert tickets[0]["ticket_no"] == "T1" and tickets[0]["user_id"] == 5 and "title" not in tickets[0]
    shop.close()


def test_an_order_with_a_zero_date_is_quarantined_alone(acg_world):
    """Issue 12, item 5: a zero ``create_time`` or a ``pay_time`` in 9999 stopped the pass; now each is quarantined
    alone and the member is granted."""
    world = acg_world
    zero = add_order(world.engine, 0, "zero@example.com", 1, "KM-ACG-ZERO", datetime.now(), paid=datetime.now())
    ahead = add_order(
        world.engine, 0, "ahead@example.com", 1, "KM-ACG-9999", datetime.now(), paid=datetime(9999, 12, 31)
    )
    with world.engine.connect() as conn:
        conn.execute(text("UPDATE acg_order SET create_time = '0000-00-00 00:00:00' WHERE id = :id"), {"id": zero})
        # a zero pay_time on an unpaid order is no payment time, not a broken record
        conn.execute(text("UPDATE acg_order SET pay_time = '0000-00-00 00:00:00' WHERE id = :id"), {"id": world.guest})
    world.forum.add_user("zero", "zero@example.com")
    world.forum.add_user("ahead", "ahead@example.com")
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert world.forum.badges_of("vip5") == ["Verified Buyer"]
    assert world.forum.badges_of("zero") == [] and world.forum.badges_of("ahead") == []
    reasons = {q["record_id"]: q["reason"] for q in world.cli("status", "--json").json()["quarantined"]["records"]}
    assert reasons[str(zero)] == "create_time is not a date (a zero date such as 0000-00-00 reads as text)"
    assert reasons[str(ahead)] == "modified_at: Value error, timestamp is more than a day in the future"
    assert str(world.guest) not in reasons


def test_a_deleted_paid_order_is_revoked_by_reconcile_and_backfill(acg_world):
    """Issue 13, item 8: acg-faka has no refund; the admin deletes the row (an export that deletes, a deleted
    commodity). Nothing is left for a sync to read: reconcile (and backfill) find the paid order gone."""
    world = acg_world
    now = datetime.now().replace(microsecond=0)
    with world.engine.connect() as conn:
        conn.execute(
            text("UPDATE acg_order SET status = 1, pay_time = :t WHERE id = :id"), {"t": now, "id": world.guest}
        )
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert world.forum.badges_of("vip5") == ["Verified Buyer"] and world.forum.badges_of("guest") == ["Verified Buyer"]
    with world.engine.connect() as conn:
        conn.execute(text("DELETE FROM acg_order WHERE id = :id"), {"id": world.member})
    again = world.cli("sync")
    assert again.code == 0, again.output
    assert world.forum.badges_of("vip5") == ["Verified Buyer"]  # a sync cannot see a deleted row
    found = world.cli("reconcile")
    assert found.code == 0, found.output
    assert "1 paid order(s) are gone from the shop" in found.stdout
    assert world.forum.badges_of("vip5") == [] and world.forum.badges_of("guest") == ["Verified Buyer"]
    with world.engine.connect() as conn:
        conn.execute(text("DELETE FROM acg_order WHERE id = :id"), {"id": world.guest})
    backfill = world.cli("backfill")
    assert backfill.code == 0, backfill.output
    assert world.forum.badges_of("guest") == []
    status = world.cli("status", "--json").json()
    assert status["totals"]["paid_orders"] == 0 and status["outbox"]["dead"] == 0


def test_an_empty_prefix_members_without_email_and_contacts_that_are_not_addresses(world, shop_db):  # noqa: F811
    """An install with no table prefix; a member who registered with a phone (no email) counts as a buyer with no
    email, not as unmatched; a member whose email field holds text around an address, and a guest whose contact is
    ``ab@qq`` (acg-faka's own checks let both through), are never matched on a guess."""
    engine, url = shop_db
    with engine.connect() as conn:
        for statement in DDL:
            conn.execute(text(re.sub(r"CREATE TABLE acg_(\w+)", r"CREATE TABLE `\1`", statement)))
        conn.execute(
            text(
                "INSERT INTO `user` (id, username, email, phone, status) VALUES (8, 'phone8', NULL, '13812345678', 1), "
                "(9, 'odd9', 'mail: odd9@example.com', NULL, 1), (10, 'ok10', 'OK10@example.com', NULL, 1)"
            )
        )
        now = datetime.now().replace(microsecond=0)
        for owner, contact in ((8, ""), (9, ""), (10, ""), (0, "ab@qq"), (0, "cd@example.com")):
            conn.execute(
                text(
                    "INSERT INTO `order` (owner, user_id, trade_no, amount, commodity_id, card_num, create_time, "
                    "pay_time, status, secret, contact) VALUES (:owner, 0, :trade, 30, 7, 1, :t, :t, 1, 'KM-X', :c)"
                ),
                {"owner": owner, "trade": uuid.uuid4().hex[:19], "t": now, "c": contact},
            )
    world.set_shop(f'kind = "acgfaka"\ndatabase_url = "{url}"\ntable_prefix = ""')
    for username, email in (("odd9", "odd9@example.com"), ("ok10", "ok10@example.com"), ("abqq", "ab@qq.com")):
        world.forum.add_user(username, email)
    world.forum.add_user("cd", "cd@example.com")
    run = world.cli("sync")
    assert run.code == 0, run.output
    badged = {u for u in ("odd9", "ok10", "abqq", "cd") if world.forum.badges_of(u)}
    assert badged == {"ok10", "cd"}
    status = world.cli("status", "--json").json()
    assert status["buyers_without_email"] == 2  # the phone member and the one whose email is not an address
    assert status["unmatched_customers"] == 0
    assert [q["reason"] for q in status["quarantined"]["records"]] == [
        "guest order whose contact is not an email (a phone or QQ number cannot be matched)"
    ]
    shown = world.cli("status")
    assert "buyers with no email" in shown.stdout and "ab@qq" not in shown.output
