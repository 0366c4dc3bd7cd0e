"""The Discourse sandbox's topics as the real forum has them: trashed topics keep their external id, external ids and
titles are validated as ``Topic`` validates them, and a subfolder install serves and redirects under its path."""

from __future__ import annotations

import httpx
import pytest

from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "topics-key"
BODY = "Buyer reviews for this product are collected here."


@pytest.fixture
def forum():
    return DiscourseSandbox(api_key=KEY, api_username="system")


@pytest.fixture
def api(forum):
    with (
        SandboxServer(forum.app) as server,
        httpx.Client(base_url=server.url, headers={"Api-Key": KEY, "Api-Username": "system"}, timeout=10) as client,
    ):
        yield client


def create(api, title, external_id=None):
    body = {"title": title, "raw": BODY, "category": 4}
    if external_id is not None:
        body["external_id"] = external_id
    return api.post("/posts.json", json=body)


def test_a_trashed_topic_is_404_by_external_id_even_to_an_admin_and_keeps_its_id_taken(api, forum):
    first = create(api, "Verified reviews: Elden Ring Steam Key", "shop-product-42")
    assert first.status_code == 200
    forum.delete_topic_by_hand(first.json()["topic_id"])
    assert api.get("/t/external_id/shop-product-42.json").status_code == 404
    # the admin still reads the trashed topic by its id, with deleted_at set
    topic = api.get(f"/t/{first.json()['topic_id']}.json").json()
    assert topic["deleted_at"] is not None
    again = create(api, "Verified reviews: Elden Ring Steam Key", "SHOP-product-42")
    assert again.status_code == 422
    assert again.json()["success"] is False and len(again.json()["errors"]) == 1  # the title is free again
    fresh = create(api, "Verified reviews: Elden Ring Steam Key", "shop-product-42_g2")
    assert fresh.status_code == 200


def test_external_ids_are_ascii_word_characters_only(api):
    refused = create(api, "Verified reviews: 王者荣耀 点券 60元", "shop-product-王者荣耀")
    assert refused.status_code == 422 and refused.json()["errors"] == ["External is invalid"]
    assert api.get("/t/external_id/shop-product-王者荣耀.json").status_code == 404  # the route does not match
    too_long = create(api, "Verified reviews: a long external id", "x" * 51)
    assert too_long.status_code == 422


def test_titles_follow_text_sentinel(api, forum):
    long_word = "Verified reviews: " + "Pneumonoultramicroscopicsilicovolcanoconiosis"
    assert create(api, long_word).status_code == 422
    assert create(api, "Verified reviews: " + "a" * 30 + " and more").status_code == 200
    assert create(api, "VERIFIED REVIEWS: SHOUTING PRODUCT").status_code == 422  # seems_quiet?
    assert create(api, "Verified reviews: 王者荣耀点券" + "六" * 30).status_code == 422  # CJK letters are \p{Alnum}
    forum.locale = "zh_CN"  # no word length on a CJK forum
    assert create(api, "Verified reviews: 王者荣耀点券" + "七" * 30).status_code == 200
    forum.allow_uppercase_posts = True
    assert create(api, "VERIFIED REVIEWS: ANOTHER PRODUCT").status_code == 200


def test_a_subfolder_install_serves_and_redirects_under_its_path():
    forum = DiscourseSandbox(api_key=KEY, api_username="system", base_path="/forum/")
    with SandboxServer(forum.app) as server:
        headers = {"Api-Key": KEY, "Api-Username": "system"}
        with httpx.Client(base_url=server.url + "/forum", headers=headers, timeout=10) as api:
            made = create(api, "Verified reviews: Elden Ring Steam Key", "shop-product-42")
            assert made.status_code == 200
            moved = api.get("/t/external_id/shop-product-42.json")
            assert moved.status_code == 301
            location = httpx.URL(moved.headers["location"])
            assert location.path == f"/forum/t/verified-reviews-elden-ring-steam-key/{made.json()['topic_id']}.json"
            assert (location.host, location.port) == (httpx.URL(server.url).host, httpx.URL(server.url).port)
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as root:
            outside = root.get("/t/external_id/shop-product-42.json")
            assert outside.status_code == 404 and outside.headers["content-type"].startswith("text/plain")
