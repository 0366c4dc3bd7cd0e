"""Discourse community adapter: typed payloads, capabilities, its own settings (respx, documented shapes)."""

import json

import httpx
import pytest
import respx

from adapters.base import (
    Action,
    CommunityAdapter,
    HolderListing,
    MemberAuthorization,
    MemberCheck,
    PostReader,
    RemotePost,
    ThreadCheck,
    UserLookup,
)
from adapters.communities.discourse import DiscourseCommunity, DiscourseSettings
from adapters.communities.discourse_posts import content_hash
from connector.core.config import ConfigError, validate_table
from connector.core.payloads import DiscordPost, DiscoursePost, PointsTotal, ScoreEvent, Skip, Unsendable

BASE = "https://forum.example.com"


@pytest.fixture
def forum():
    settings = DiscourseSettings(kind="discourse", base_url=BASE, api_key="k", requests_per_minute=10_000)
    return DiscourseCommunity("forum", settings, sleep=lambda s: None)


def post_payload(**changes):
    values = {
        "raw": "★★★★★ great\n\n<!-- review 7 -->",
        "hash": content_hash("★★★★★ great\n\n<!-- review 7 -->"),
        "marker": "<!-- review 7 -->",
        "post_id": None,
        "post_hash": None,
        "topic_id": "40",
        "external_id": "shop-product-3",
        "topic_title": "Reviews: Game Key",
        "topic_intro": "Reviews of Game Key",
        "category": "Reviews",
        "category_color": "2E7D32",
        "category_text_color": "FFFFFF",
        "product_id": "3",
    }
    return DiscoursePost(**(values | changes))


def test_settings_are_its_own_model_and_name_the_key():
    assert DiscourseCommunity.settings is DiscourseSettings
    with pytest.raises(ConfigError, match=r'communities.forum.base_url: is required for kind = "discourse"'):
        validate_table(DiscourseSettings, {"kind": "discourse"}, "communities.forum")
    with pytest.raises(ConfigError, match=r"communities.forum.bot_token: unknown key"):
        validate_table(
            DiscourseSettings, {"kind": "discourse", "base_url": BASE, "bot_token": "x"}, "communities.forum"
        )


def test_capabilities_are_protocols(forum):
    assert isinstance(forum, CommunityAdapter)
    for capability in (HolderListing, PostReader, UserLookup):
        assert isinstance(forum, capability), capability.__name__
    for capability in (MemberCheck, ThreadCheck, MemberAuthorization):
        assert not isinstance(forum, capability), capability.__name__


@respx.mock
def test_skip_and_unsendable_make_no_call(forum):
    outcomes = forum.apply(
        [
            Action(1, "review", "7", "create", "alice", payload=Skip()),
            Action(2, "points", "order:1", "grant", "alice", payload=Unsendable("the member left")),
        ]
    )
    assert outcomes[0].ok and outcomes[0].data == {"skipped": True}
    assert not outcomes[1].ok and outcomes[1].permanent and outcomes[1].error == "the member left"
    assert not respx.calls


@respx.mock
def test_a_payload_of_the_wrong_type_fails_for_good_naming_it(forum):
    discord = DiscordPost(
        raw="x",
        hash=None,
        marker="m",
        forum_channel="1",
        thread_per="product",
        tags=(),
        verified_tag=None,
        verified=False,
        post_id=None,
        thread_id=None,
        topic_id=None,
        thread_name="t",
        topic_title="t",
        topic_intro="i",
        product_id="3",
    )
    [review, points, total] = forum.apply(
        [
            Action(1, "review", "7", "create", "alice", payload=discord),
            Action(2, "points", "order:1", "grant", "alice", payload=None),
            Action(3, "points_total", "total", "set", "alice", payload=post_payload()),
        ]
    )
    assert review.permanent and review.error == "a 'review' action needs a DiscoursePost, got DiscordPost"
    assert points.permanent and points.error == "a 'points' action needs a ScoreEvent, got no payload"
    assert total.permanent and total.error == "a 'points_total' action needs a PointsTotal, got DiscoursePost"
    assert not respx.calls


@respx.mock
def test_review_post_points_and_total_are_written_from_the_dataclasses(forum):
    posts = respx.post(f"{BASE}/posts.json").mock(return_value=httpx.Response(200, json={"id": 501, "version": 1}))
    # The stored topic is read for the review's marker first (another state store may have posted it): not there.
    respx.get(f"{BASE}/t/40.json").mock(return_value=httpx.Response(200, json={"post_stream": {"stream": [400]}}))
    respx.get(f"{BASE}/t/40/posts.json").mock(
        return_value=httpx.Response(200, json={"post_stream": {"posts": [{"id": 400, "username": "system"}]}})
    )
    events = respx.post(f"{BASE}/admin/plugins/gamification/score_events.json").mock(
        return_value=httpx.Response(200, json={"id": 9})
    )
    day = respx.get(f"{BASE}/admin/plugins/gamification/score_events.json").mock(
        return_value=httpx.Response(200, json={"events": []})
    )
    field = respx.put(f"{BASE}/u/alice.json").mock(return_value=httpx.Response(200, json={"success": "OK"}))
    review, points, total = forum.apply(
        [
            Action(1, "review", "7", "create", "alice", payload=post_payload()),
            Action(2, "points", "order:1", "grant", "alice", payload=ScoreEvent("12", 10, "2026-11-01", "order:1")),
            Action(3, "points_total", "total", "set", "alice", payload=PointsTotal(35, 4)),
        ]
    )
    assert review.ok and review.data["post_id"] == "501" and review.data["topic_id"] == "40"
    assert json.loads(posts.calls.last.request.content) == {"topic_id": 40, "raw": post_payload().raw}
    assert points.ok and points.ref == "9"
    assert dict(day.calls.last.request.url.params) == {"user_id": "12", "date": "2026-11-01"}  # looked for first
    assert json.loads(events.calls.last.request.content) == {
        "user_id": 12,
        "date": "2026-11-01",
        "points": 10,
        "description": "order:1",
    }
    assert total.ok and json.loads(field.calls.last.request.content) == {"user_fields": {"4": "35"}}


@respx.mock
def test_a_moderators_edit_is_a_conflict_and_read_post_shows_it(forum):
    respx.get(f"{BASE}/posts/501.json").mock(
        return_value=httpx.Response(
            200, json={"id": 501, "raw": "edited by a mod", "version": 3, "last_editor_username": "mod"}
        )
    )
    edit = respx.put(f"{BASE}/posts/501.json")
    payload = post_payload(post_id="501", post_hash=content_hash("what we wrote"))
    [outcome] = forum.apply([Action(1, "review", "7", "edit", "alice", payload=payload)])
    assert outcome.ok and outcome.conflict == "the post was edited on the forum by mod (version 3)"
    assert not edit.called
    assert forum.read_post("501") == RemotePost("501", "edited by a mod", 3, False, "mod")


@respx.mock
def test_read_post_and_find_user_answer_none_when_gone(forum):
    respx.get(f"{BASE}/posts/77.json").mock(return_value=httpx.Response(404, json={"errors": ["not found"]}))
    respx.get(f"{BASE}/posts/78.json").mock(
        return_value=httpx.Response(200, json={"id": 78, "raw": "x", "deleted_at": "2026-11-01T00:00:00Z"})
    )
    assert forum.read_post("77") is None
    assert forum.read_post("78").deleted
    assert forum.read_post("not-a-number") is None
    respx.get(f"{BASE}/u/alice.json").mock(
        return_value=httpx.Response(200, json={"user": {"id": 12, "username": "Alice"}})
    )
    respx.get(f"{BASE}/u/nobody.json").mock(return_value=httpx.Response(404, json={"errors": ["not found"]}))
    found = forum.find_user("alice")
    assert found is not None and (found.user_id, found.username) == ("12", "Alice")
    assert forum.find_user("nobody") is None


@respx.mock
def test_verify_finds_a_score_event_by_its_description(forum):
    respx.get(f"{BASE}/admin/plugins/gamification/score_events.json").mock(
        return_value=httpx.Response(200, json={"events": [{"id": 4, "description": "order:1"}]})
    )
    event = ScoreEvent("12", 10, "2026-11-01", "order:1")
    found = forum.verify(Action(1, "points", "order:1", "grant", "alice", payload=event))
    assert found is not None and found.ref == "4"
    assert forum.verify(Action(2, "review", "7", "create", "alice", payload=Skip())) is None
