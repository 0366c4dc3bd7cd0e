"""Demand posts: ranking by likes, replies, views and age; fuzzy matching to products in Chinese and English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.insights import Topic
from mappings.demand import match_product, rank, topic_score

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
PRODUCTS = {"p1": "原神月卡", "p2": "Netflix Premium", "p3": "Spotify Family"}


def topic(topic_id: str, title: str, likes: int = 0, replies: int = 0, views: int = 0, days: float = 0,
          participants: tuple[str, ...] = ()) -> Topic:  # fmt: skip
    created = NOW - timedelta(days=days)
    return Topic(topic_id, title, "7", ("需求",), likes, replies, views, created, created, participants)


def test_chinese_and_english_requests_find_their_product() -> None:
    assert match_product("求原神 月卡 补货！", PRODUCTS).product_id == "p1"  # type: ignore[union-attr]
    assert match_product("Please restock netflix premium 4K", PRODUCTS).product_id == "p2"  # type: ignore[union-attr]
    assert match_product("Netflx premium?", PRODUCTS).product_id == "p2"  # type: ignore[union-attr]  # a typo


def test_a_request_for_something_not_sold_is_no_product() -> None:
    assert match_product("有没有 Steam 礼品卡", PRODUCTS) is None
    assert match_product("Xbox Game Pass please", PRODUCTS) is None


def test_likes_replies_and_views_rank_and_age_decays() -> None:
    fresh = topic("1", "a", likes=5, replies=4, views=100)
    old = topic("2", "b", likes=5, replies=4, views=100, days=28)
    assert topic_score(old, NOW) == round(topic_score(fresh, NOW) / 4, 3)
    assert topic_score(topic("3", "c", likes=1), NOW) > topic_score(topic("4", "d", views=10), NOW)


def test_rank_orders_matches_and_counts_verified_buyers() -> None:
    ranked = rank(
        [
            topic("10", "想要 Spotify family 家庭版", likes=1, participants=("u1",)),
            topic("11", "求原神月卡", likes=8, replies=6, views=300, participants=("u1", "u2", "u3", "u2")),
            topic("12", "Any Xbox Game Pass?", replies=2, participants=("u4",)),
        ],
        PRODUCTS,
        buyers={"u2", "u3", "u9"},
        now=NOW,
    )
    assert [d.topic.topic_id for d in ranked] == ["11", "12", "10"]
    assert [d.product.product_id if d.product else None for d in ranked] == ["p1", None, "p3"]
    assert [d.verified_buyers for d in ranked] == [2, 0, 0]
