"""Review topic external ids and titles the real forum accepts, whatever the shop calls or numbers its products."""

import re

import pytest

from mappings.reviews import topic_external_id, topic_title, unique_topic_title
from sandbox.discourse.state import ForumState
from sandbox.discourse.topics import title_errors

PRODUCT_IDS = ["42", "7", "sku-123", "SKU-123", "sku_123", "王者荣耀-60", "商品1", "a" * 64, "a" * 63 + "b", "x y",
               "ÄÖÜ", "🎮", "5-g2", "5_g2", "p-1", "-", "0" * 40]  # fmt: skip
NAMES = [
    "Elden Ring Steam Key",
    "王者荣耀 点券 60元",
    "Pneumonoultramicroscopicsilicovolcanoconiosis Deluxe",
    "王者荣耀" * 20,
    "GTA V PREMIUM",
    "🔥🔥 HOT 🔥🔥 Netflix 1 Month",
    "a",
    "x" * 400,
    "\u200b\u200b",
    "Steam\u00a0Wallet\tCode\n50",
]


def test_external_ids_are_always_valid_stable_and_distinct():
    seen: dict[str, tuple[str, int]] = {}
    for product_id in PRODUCT_IDS:
        for generation in (1, 2, 3, 99999):
            external_id = topic_external_id("shop", product_id, generation)
            # app/models/topic.rb: format /\A[\w-]+\z/ (Ruby's \w is ASCII), at most 50, unique case-insensitively
            assert re.fullmatch(r"[A-Za-z0-9_-]+", external_id) and len(external_id) <= 50, external_id
            assert topic_external_id("shop", product_id, generation) == external_id
            assert external_id.lower() not in seen, (product_id, generation, seen.get(external_id.lower()))
            seen[external_id.lower()] = (product_id, generation)


def test_simple_ids_keep_the_form_existing_topics_have():
    assert topic_external_id("shop", "42") == "shop-product-42"
    assert topic_external_id("shop", "sku-123") == "shop-product-sku-123"
    assert topic_external_id("shop", "42", 2) == "shop-product-42_g2"
    assert topic_external_id("商店", "42") == "---product-42"  # a prefix the forum cannot hold is made ASCII


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_titles_pass_the_forums_title_validations(locale):
    forum = ForumState(api_key="k", api_username="system", clock=lambda: 0.0)
    forum.locale = locale
    for name in NAMES:
        title = topic_title(name)
        assert title_errors(forum, title, None) == [], (name, title)
        for product_id in PRODUCT_IDS:
            unique = unique_topic_title(title, product_id)
            assert unique.lower() != title.lower()
            assert title_errors(forum, unique, None) == [], (name, product_id, unique)


def test_titles_keep_readable_names():
    assert topic_title("Elden Ring Steam Key") == "Verified reviews: Elden Ring Steam Key"
    assert topic_title("王者荣耀 点券 60元") == "Verified reviews: 王者荣耀 点券 60元"
    assert (
        unique_topic_title("Verified reviews: Steam Wallet Code", "77") == "Verified reviews: Steam Wallet Code (#77)"
    )
