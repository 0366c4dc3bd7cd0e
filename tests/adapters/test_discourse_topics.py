"""Review topics written through the Discourse adapter to the sandbox forum over loopback: products whose ids the
forum cannot hold as they are, names it would refuse as titles, and a refusal that still names the product."""

import pytest

from adapters.base import Action, MemoryCache
from adapters.communities.discourse_client import DiscourseClient
from adapters.communities.discourse_posts import ForumContent
from connector.core.payloads import DiscoursePost
from mappings.reviews import marker, topic_external_id, topic_intro, topic_title
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "adapter-topics-key"


@pytest.fixture
def forum():
    return DiscourseSandbox(api_key=KEY, api_username="system")


@pytest.fixture
def content(forum):
    with SandboxServer(forum.app) as server:
        client = DiscourseClient(server.url, KEY, "system", requests_per_minute=None, sleep=lambda s: None)
        yield ForumContent(client, MemoryCache(), "system")
        client.close()


def review(action_id, product_id, name, review_id):
    raw = f"**★★★★★** 5/5 · {name}\n\n> Works, delivered at once.\n\n<small>{marker(review_id)}</small>"
    payload = DiscoursePost(
        raw=raw,
        hash=None,
        marker=marker(review_id),
        post_id=None,
        post_hash=None,
        topic_id=None,
        external_id=topic_external_id("shop", product_id),
        topic_title=topic_title(name),
        topic_intro=topic_intro(name, None),
        category="Reviews",
        category_color="2E7D32",
        category_text_color="FFFFFF",
        product_id=product_id,
    )
    return Action(id=action_id, kind="review", target=review_id, op="create", username="", payload=payload)


def test_products_with_chinese_ids_long_words_and_the_same_name_all_get_their_topic(content, forum):
    products = [
        ("王者荣耀-60", "王者荣耀 点券 60元"),
        ("商品1", "Pneumonoultramicroscopicsilicovolcanoconiosis Key"),
        ("steam-50", "Steam Wallet Code"),
        ("steam-100", "Steam Wallet Code"),
    ]
    for index, (product_id, name) in enumerate(products, start=1):
        outcome = content.apply(review(index, product_id, name, f"r{index}"))
        assert outcome.ok and outcome.conflict is None and outcome.error is None, (product_id, outcome)
    topics = forum.topics()
    assert len(topics) == 4
    assert len({t["external_id"].lower() for t in topics}) == 4
    assert len({t["title"].lower() for t in topics}) == 4


def test_a_topic_the_forum_still_refuses_is_a_conflict_naming_the_product(content, forum):
    first = content.apply(review(1, "王者荣耀-60", "王者荣耀 点券 60元", "r1"))
    forum.delete_topic_by_hand(int(first.data["topic_id"]))  # its external id stays taken
    again = content.apply(review(2, "王者荣耀-60", "王者荣耀 点券 60元", "r2"))
    assert again.ok and again.conflict is not None
    assert "王者荣耀-60" in again.conflict and again.data.get("topic_conflict") == "王者荣耀-60"
