"""Issue 12, item 5: one malformed shop record never stops a pass. Over real HTTP, the WooCommerce sandbox answers
some orders (and a review) the way a broken plugin or import leaves them in a real shop: a status that is a list, a
date in year 9999 with an offset, totals of ``NaN`` and ``1e30`` with points on. The good buyers are badged and
earn their points; each bad record is quarantined alone, with its id and a reason, and the pass ends ok."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.server import SandboxServer

POINTS = """
[points]
per_order = 10
per_currency_unit = 0.1
forum = { mode = "gamification" }
[reviews]
forum = { category = "Reviews" }
"""


class Mangle:
    """Wraps the sandbox shop's app: a listed record is answered with some fields replaced. ``orders`` and
    ``reviews`` map a record id to the fields to replace in the order list and the review list."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.orders: dict[int, dict[str, Any]] = {}
        self.reviews: dict[int, dict[str, Any]] = {}

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        table = self.reviews if path.endswith("/products/reviews") else self.orders if path.endswith("/orders") else {}
        if not table:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            records = json.loads(body) if start.get("status") == 200 else None
            if isinstance(records, list):
                for record in records:
                    record.update(table.get(record.get("id"), {}))
                body = json.dumps(records).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)


@pytest.fixture
def broken_shop(world):
    shop, forum = world.shop, world.forum
    world.mangle = Mangle(world.shop.app)
    world.shop_server.stop()
    world.shop_server = SandboxServer(world.mangle).start()
    world.write_config(page_size=2, extra=POINTS)
    card = shop.add_product("王者荣耀 点券 60元", "60.00")
    alice = shop.add_customer("alice@example.com", "Alice", "Liu")
    world.good = [shop.add_order(customer_id=alice, email="alice@example.com", items=[(card, 1)], status="completed")]
    world.bad = {
        "future": shop.add_order(email="m1@example.com", items=[(card, 1)], status="completed"),
        "status": shop.add_order(email="m2@example.com", items=[(card, 1)], status="completed"),
        "nan": shop.add_order(email="m3@example.com", items=[(card, 1)], status="completed"),
        "huge": shop.add_order(email="m4@example.com", items=[(card, 1)], status="completed"),
    }
    world.good.append(shop.add_order(email="bob@example.com", items=[(card, 1)], status="processing"))
    world.mangle.orders = {
        world.bad["future"]: {"date_modified_gmt": "9999-12-31T23:59:59-05:00"},
        world.bad["status"]: {"status": ["completed", "refunded"]},
        world.bad["nan"]: {"total": "NaN"},
        world.bad["huge"]: {"total": "1e30"},
    }
    world.good_review = shop.add_review(card, "Bob", "bob@example.com", 5, "Arrived in two minutes.")
    world.bad_review = shop.add_review(card, "Mallory", "m1@example.com", 5, "Great.")
    world.mangle.reviews = {world.bad_review: {"rating": [5], "date_created_gmt": "0000-00-00T00:00:00"}}
    for name in ("alice", "bob", "m1", "m2", "m3", "m4"):
        forum.add_user(name, f"{name}@example.com")
    return world


def test_malformed_orders_and_reviews_are_quarantined_alone(broken_shop):
    world = broken_shop
    run = world.cli("sync")
    assert run.code == 0, run.output
    badged = {u for u in ("alice", "bob", "m1", "m2", "m3", "m4") if "Verified Buyer" in world.forum.badges_of(u)}
    assert badged == {"alice", "bob"}
    for name in ("alice", "bob"):  # 10 + floor(60.00 × 0.1)
        assert [e["points"] for e in world.forum.score_events(world.forum.user(name)["id"])] == [16]
    status = world.cli("status", "--json").json()
    reasons = {q["record_id"]: q["reason"] for q in status["quarantined"]["records"]}
    bad = {kind: str(order_id) for kind, order_id in world.bad.items()}
    assert reasons[bad["future"]] == "date_modified_gmt is out of the calendar's range"
    assert reasons[bad["status"]] == "unknown order status a list"
    assert reasons[bad["nan"]] == "total: Value error, the amount is not a finite number"
    assert reasons[bad["huge"]] == "total: Value error, the amount is absurdly large (10^12 or more)"
    assert reasons[str(world.bad_review)] == "rating a list is not 0..5"
    assert status["quarantined"]["count"] == 5
    assert "Traceback" not in run.output
    # the walk's cursor is a real date: a year-9999 order did not carry it past the orders still to come
    later = world.shop.add_order(email="alice@example.com", customer_id=0, items=[(1, 1)], status="completed")
    again = world.cli("sync")
    assert again.code == 0, again.output
    assert any(q["record_id"] == bad["future"] for q in world.cli("status", "--json").json()["quarantined"]["records"])
    assert str(later) in {o["id"] for o in _orders(world)}


def _orders(world):
    import sqlite3

    with sqlite3.connect(world.db_path) as db:
        return [{"id": row[0]} for row in db.execute("SELECT id FROM orders")]
