"""Keyword heat's store, on a real SQLite file and on PostgreSQL: counts add up per week, the cursor moves with them
in one transaction and only from where the batch was read, no text is kept, and the joins with paid orders."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from connector.core.models import Order, OrderLine, OrderStatus
from connector.state.insights import CursorMoved, terms_t

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
W1, W2 = date(2026, 11, 23), date(2026, 11, 30)


def order(id, key, status=OrderStatus.PAID, products=("1",)):
    return Order(
        id=str(id), customer_key=key, email=None, status=status, total="9.90", currency="CNY", created_at=T0,
        modified_at=T0, lines=tuple(OrderLine(product_id=p, name=f"p{p}") for p in products),
    )  # fmt: skip


def test_counts_add_up_and_the_cursor_moves_with_them(store):
    insights = store.insights
    insights.record("forum", {("月卡", W1): 2, ("refund", W1): 1}, {("p1", W1): 2}, None, "v1:10", posts=3)
    insights.record("forum", {("月卡", W1): 1, ("月卡", W2): 4}, {("p1", W2): 1}, "v1:10", "v1:20", posts=5)
    assert insights.cursor("forum") == "v1:20"
    assert sorted(insights.term_counts("forum", W1)) == [("refund", W1, 1), ("月卡", W1, 3), ("月卡", W2, 4)]
    assert sorted(insights.mention_counts("forum", W2)) == [("p1", W2, 1)]
    assert insights.cursor("discord") is None and insights.term_counts("discord", W1) == []


def test_a_batch_read_from_a_moved_cursor_is_not_counted(store):
    insights = store.insights
    insights.record("forum", {("月卡", W1): 1}, {}, None, "v1:10", posts=1)
    insights.record("forum", {("月卡", W1): 1}, {}, "v1:10", "v1:20", posts=1)
    with pytest.raises(CursorMoved):  # a second replica read from v1:10 too
        insights.record("forum", {("月卡", W1): 1}, {}, "v1:10", "v1:20", posts=1)
    with pytest.raises(CursorMoved):  # and a first batch twice
        insights.record("forum", {("月卡", W1): 1}, {}, None, "v1:10", posts=1)
    assert insights.term_counts("forum", W1) == [("月卡", W1, 2)]


def test_nothing_that_is_not_a_word_is_stored(store):
    store.insights.record(
        "forum",
        {("alice@example.com", W1): 1, ("13800138000", W1): 1, ("x" * 40, W1): 1, ("补货", W1): 1},
        {},
        None,
        "v1:1",
        posts=1,
    )
    with store.engine.connect() as conn:
        assert list(conn.execute(select(terms_t.c.term)).scalars()) == ["补货"]


def test_paid_orders_per_product_and_verified_buyers(store):
    store.records.save_orders_page(
        "orders",
        [
            order(1, "c:1", products=("1", "2")),
            order(2, "c:2", products=("1",)),
            order(3, "c:3", status=OrderStatus.REFUNDED, products=("3",)),
        ],
        [],
        None,
    )
    assert store.insights.paid_orders_by_product(datetime(2026, 11, 1, tzinfo=UTC)) == {"1": 2, "2": 1}
    assert store.insights.paid_orders_by_product(datetime(2026, 12, 1, tzinfo=UTC)) == {}
    assert store.insights.products_missing() == ["1", "2", "3"]  # a refunded product is still one to name
    store.identities.link("forum", "c:1", "101", "alice")
    store.identities.link("forum", "c:3", "103", "carol")  # refunded only: not a verified buyer
    assert store.insights.buyer_members("forum") == {"101"}
