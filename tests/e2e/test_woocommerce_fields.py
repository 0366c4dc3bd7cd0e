"""Issue 15, shop side: CardBridge asks WooCommerce only for the fields it uses (``_fields``), over real HTTP.

The sandbox shop answers orders as large as real ones (addresses, phones, IP, user agent, payment data, card keys in
meta) and trims them as WordPress does; a second shop that ignores ``_fields`` (WordPress before 4.8) must give the
same state.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.e2e.conftest import World

API = "/wp-json/wc/v3"
LISTS = {f"{API}/orders", f"{API}/customers", f"{API}/products", f"{API}/products/reviews"}


def stock(world: World) -> list[int]:
    shop = world.shop
    card = shop.add_product("王者荣耀 点券 60元", "60.00")
    key = shop.add_product("Elden Ring Steam Key", "199.00")
    alice = shop.add_customer("alice@example.com", "Alice", "Liu", username="alice")
    orders = [
        shop.add_order(customer_id=alice, items=[(card, 1), (key, 1)], status="completed"),
        shop.add_order(email="  Bob.Guest@Example.COM ", items=[(key, 1)], status="processing"),
        shop.add_order(email="carol@example.com", items=[(card, 2)], status="pending"),
        shop.add_order(email="dave@example.com", items=[(card, 1)], status="refunded"),
    ]
    shop.trash_order(shop.add_order(email="erin@example.com", items=[(key, 1)], status="completed"))
    shop.add_review(card, "alice", "alice@example.com", 5, "到账很快")
    for username, email in [("alice", "alice@example.com"), ("bob", "bob.guest@example.com")]:
        world.forum.add_user(username, email)
    return orders


def state(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        return {
            "orders": conn.execute(
                "select id, customer_key, status, total, currency, product_ids from orders order by id"
            ).fetchall(),
            "customers": conn.execute("select key, email, profile_loaded from customers order by key").fetchall(),
            "products": conn.execute("select id, name, permalink from products order by id").fetchall(),
            "reviews": conn.execute("select id, product_id, email, rating, text from reviews order by id").fetchall(),
        }


def test_every_list_read_asks_for_fields_and_no_address_reaches_the_store_or_logs(world):
    orders = stock(world)
    run = world.cli("backfill")
    assert run.code == 0, run.output
    lists = [r for r in world.shop.requests if r["method"] == "GET" and r["path"] in LISTS]
    assert {r["path"] for r in lists} >= {f"{API}/orders", f"{API}/customers"}
    assert all(r["query"].get("_fields") for r in lists), [r for r in lists if "_fields" not in r["query"]]
    assert any(r["query"].get("status") == "trash" for r in lists)  # the trash read is trimmed as well

    database = b"".join(p.read_bytes() for p in world.dir.glob("state.db*"))
    forbidden = list(world.shop.secrets())
    for order in (world.shop.order(i) for i in orders):
        forbidden += [order["billing"]["address_1"], order["billing"]["phone"], order["shipping"]["address_1"]]
        forbidden += [order["customer_ip_address"], order["customer_user_agent"], order["transaction_id"]]
        forbidden += [order["payment_method_title"], order["order_key"], order["payment_url"]]
    forbidden += ["浦东新区世纪大道100号", "13900000000"]  # the customer record's own billing address and phone
    for value in forbidden:
        assert value.encode() not in database, value
        assert value not in run.output, value
    assert state(world.db_path)["orders"]  # the backfill did read and store the orders


def test_a_shop_that_ignores_fields_gives_the_same_state(world, tmp_path):
    stock(world)
    (tmp_path / "old").mkdir()
    old = World(tmp_path / "old")
    try:
        old.shop.honour_fields = False  # WordPress before 4.8: every field of every record
        stock(old)
        for w in (world, old):
            run = w.cli("backfill")
            assert run.code == 0, run.output
        with_fields, without = state(world.db_path), state(old.db_path)
        assert with_fields == without and with_fields["orders"] and with_fields["customers"]
        holders = {u for u in ("alice", "bob") if "Verified Buyer" in old.forum.badges_of(u)}
        assert holders == {"alice", "bob"}
        # the old shop answered whole records, and still nothing but the allow-list was kept
        database = b"".join(p.read_bytes() for p in old.dir.glob("state.db*"))
        assert all(secret.encode() not in database for secret in old.shop.secrets())
    finally:
        old.close()
