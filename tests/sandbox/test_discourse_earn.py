"""The Discourse sandbox's personal messages, likes and accepted solutions over real HTTP, each as the real forum
answers it (sources cited in sandbox/discourse/private_messages.py, post_actions.py, solved.py)."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "earn-key"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def forum(clock):
    forum = DiscourseSandbox(api_key=KEY, api_username="cardbridge", clock=clock)
    forum.add_user("alice", "alice@example.com", trust_level=1)
    forum.add_user("bob", "bob@example.com", trust_level=1)
    forum.add_user("newbie", "newbie@example.com", trust_level=0)
    # Members post, message and like faster here than the forum's per-user limits allow; an admin can switch them off
    # (0), as this does. test_member_rate_limits shows them on.
    forum.rate_limit_create_topic = forum.rate_limit_create_post = 0
    forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
    return forum


@pytest.fixture
def url(forum):
    with SandboxServer(forum.app) as server:
        yield server.url


def as_user(url: str, username: str) -> httpx.Client:
    """A member acting through the admin key (``Api-Username``), as the sandbox's other tests act as users."""
    return httpx.Client(base_url=url, headers={"Api-Key": KEY, "Api-Username": username}, timeout=10)


def send_pm(url: str, sender: str, raw: str, title: str = "Redeem points", to: str = "cardbridge") -> httpx.Response:
    with as_user(url, sender) as http:
        return http.post(
            "/posts.json",
            json={"title": title, "raw": raw, "archetype": "private_message", "target_recipients": to},
        )


# ---- personal messages ------------------------------------------------------------------------------------------------


def test_a_pm_body_of_nine_characters_is_refused_with_the_real_error_shape(url):
    refused = send_pm(url, "alice", "redeem 50")  # 9 characters
    assert refused.status_code == 422
    assert refused.json() == {
        "action": "create_post",
        "errors": ["Body is too short (minimum is 10 characters)"],
        "success": False,
    }
    assert send_pm(url, "alice", "redeem 500").status_code == 200  # 10 characters


def test_a_chinese_forum_takes_a_three_character_pm(url, forum):
    forum.locale = "zh_CN"  # min_personal_message_post_length's locale_default: 3
    assert send_pm(url, "alice", "兑换五十").status_code == 200
    assert send_pm(url, "alice", "兑换", title="兑换积分").status_code == 422


def test_a_pm_title_shorter_than_two_characters_is_refused(url):
    refused = send_pm(url, "alice", "please redeem 50 points", title="R")
    assert refused.status_code == 422
    assert refused.json()["errors"] == ["Title is too short (minimum is 2 characters)"]


def test_the_same_body_again_within_the_window_is_refused_and_allowed_after_it(url, clock):
    assert send_pm(url, "alice", "please redeem 50 points").status_code == 200
    again = send_pm(url, "alice", "please  redeem 50\npoints", title="Redeem again")  # whitespace does not count
    assert again.status_code == 422
    assert again.json()["errors"] == ["Body is too similar to what you recently posted"]
    clock.now += 5 * 60 + 1  # unique_posts_mins: 5
    assert send_pm(url, "alice", "please redeem 50 points", title="Redeem later").status_code == 200


def test_the_duplicate_check_spares_staff(url):
    with as_user(url, "cardbridge") as http:
        first = http.post("/posts.json", json={"title": "Hello", "raw": "a note to alice", "archetype":
                                               "private_message", "target_recipients": "alice"})  # fmt: skip
        second = http.post("/posts.json", json={"title": "Hello again", "raw": "a note to alice", "archetype":
                                                "private_message", "target_recipients": "bob"})  # fmt: skip
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["id"] != second.json()["id"]


def test_a_trust_level_0_member_cannot_send_a_pm(url):
    refused = send_pm(url, "newbie", "please redeem 50 points")
    assert refused.status_code == 422 and refused.json()["success"] is False


def test_only_participants_and_admins_see_a_pm(url, forum):
    post = send_pm(url, "alice", "please redeem 50 points").json()
    with as_user(url, "bob") as bob:
        assert bob.get(f"/t/{post['topic_id']}.json").status_code == 403
        assert bob.get(f"/posts/{post['id']}.json").status_code == 403
        refused = bob.post("/posts.json", json={"topic_id": post["topic_id"], "raw": "let me in on this one"})
        assert refused.status_code == 422
    with as_user(url, "cardbridge") as admin:
        topic = admin.get(f"/t/{post['topic_id']}.json").json()
    assert topic["archetype"] == "private_message"
    assert {u["username"] for u in topic["details"]["allowed_users"]} == {"alice", "cardbridge"}


def test_the_inbox_lists_the_pm_for_its_recipient_and_not_for_others(url):
    post = send_pm(url, "alice", "please redeem 50 points").json()
    with as_user(url, "cardbridge") as admin:
        inbox = admin.get("/topics/private-messages/cardbridge.json").json()
        bobs = admin.get("/topics/private-messages/bob.json").json()  # an admin may read anyone's
    assert [t["id"] for t in inbox["topic_list"]["topics"]] == [post["topic_id"]]
    assert bobs["topic_list"]["topics"] == []
    with as_user(url, "bob") as bob:
        assert bob.get("/topics/private-messages/alice.json").status_code == 403


def test_a_reply_in_a_pm_with_the_system_user_skips_the_length_check(clock):
    forum = DiscourseSandbox(api_key=KEY, api_username="system", clock=clock)
    forum.add_user("alice", "alice@example.com", trust_level=1)
    forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
    with SandboxServer(forum.app) as server:
        first = send_pm(server.url, "alice", "redeem", to="system")
        assert first.status_code == 422  # a new message has no topic yet: the PM length applies
        topic = send_pm(server.url, "alice", "please redeem 50 points", to="system").json()["topic_id"]
        with as_user(server.url, "alice") as alice:
            # ``pm_with_non_human_user?``: one human and system, so the body checks are skipped
            assert alice.post("/posts.json", json={"topic_id": topic, "raw": "ok"}).status_code == 200


def test_the_post_created_webhook_names_the_pm_and_is_signed(url, forum):
    post = send_pm(url, "alice", "please redeem 50 points").json()
    headers, body = forum.post_created_webhook(post["id"], "s3cret")
    assert headers["x-discourse-event"] == "post_created" and headers["x-discourse-event-type"] == "post"
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["x-discourse-event-signature"] == expected
    payload = json.loads(body)["post"]
    assert payload["id"] == post["id"] and payload["topic_archetype"] == "private_message"
    assert payload["raw"] == "please redeem 50 points" and "actions_summary" not in payload


# ---- likes ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def thread(url, forum):
    """A topic by alice with a reply by bob in "Support"; returns (topic id, first post id, reply id)."""
    forum.add_category("Support")
    with as_user(url, "alice") as alice:
        first = alice.post("/posts.json", json={"title": "How do I redeem a card code?", "category": "Support",
                                                "raw": "I bought a code and cannot find where to enter it."})  # fmt: skip
    with as_user(url, "bob") as bob:
        reply = bob.post("/posts.json", json={"topic_id": first.json()["topic_id"],
                                              "raw": "Open the store, choose Redeem, paste the code."})  # fmt: skip
    return first.json()["topic_id"], first.json()["id"], reply.json()["id"]


def like(url: str, username: str, post_id: int) -> httpx.Response:
    with as_user(url, username) as http:
        return http.post("/post_actions.json", json={"id": post_id, "post_action_type_id": 2})


def test_a_self_like_is_refused_and_a_like_is_counted_once(url, forum, thread):
    _, _, reply = thread
    refused = like(url, "bob", reply)
    assert refused.status_code == 403
    assert refused.json() == {"errors": ["You are not permitted to view the requested resource."]}
    liked = like(url, "alice", reply)
    assert liked.status_code == 200
    assert liked.json()["actions_summary"][0] == {"id": 2, "count": 1, "acted": True}
    assert like(url, "alice", reply).status_code == 403  # the same action twice
    assert forum.likers_of(reply) == ["alice"]


def test_post_action_users_lists_likers_and_bounds_the_page(url, thread):
    _, _, reply = thread
    like(url, "alice", reply)
    with as_user(url, "cardbridge") as admin:
        listed = admin.get("/post_action_users.json", params={"id": reply, "post_action_type_id": 2}).json()
        too_many = admin.get("/post_action_users.json", params={"id": reply, "post_action_type_id": 2, "limit": 201})
    assert [u["username"] for u in listed["post_action_users"]] == ["alice"]
    assert "created_at" not in listed["post_action_users"][0]  # PostActionUserSerializer has no account age
    assert too_many.status_code == 400 and too_many.json()["error_type"] == "invalid_parameters"


# ---- accepted solutions, removal ------------------------------------------------------------------------------------------


def test_the_topic_owner_accepts_a_reply_where_solutions_are_enabled(url, forum, thread):
    topic, first, reply = thread
    with as_user(url, "alice") as alice:
        assert alice.post("/solution/accept.json", json={"id": reply}).status_code == 403  # not enabled here
        forum.enable_solutions("Support")
        assert alice.post("/solution/accept.json", json={"id": first}).status_code == 403  # never the first post
        assert alice.post("/solution/accept.json", json={"id": reply}).status_code == 200
    with as_user(url, "bob") as bob:
        assert bob.post("/solution/accept.json", json={"id": reply}).status_code == 403  # not the owner
    with as_user(url, "cardbridge") as admin:
        posts = admin.get(f"/t/{topic}.json").json()["post_stream"]["posts"]
    assert [p["accepted_answer"] for p in posts] == [False, True]
    forum.delete_post_by_hand(reply)
    assert forum.accepted_answer(topic) is None  # post_destroyed unaccepts it


def test_a_hidden_post_reads_hidden_with_its_reason_for_staff(url, forum, thread):
    _, _, reply = thread
    forum.hide_post_by_hand(reply)
    with as_user(url, "cardbridge") as admin:
        post = admin.get(f"/posts/{reply}.json").json()
    assert post["hidden"] is True and post["hidden_reason_id"] == 1


def test_the_category_list_pages_by_30_newest_bumped_first(url, forum):
    forum.add_category("Guides")
    with as_user(url, "cardbridge") as admin:
        for n in range(31):
            admin.post("/posts.json", json={"title": f"Guide number {n} for the shop", "category": "Guides",
                                            "raw": f"How to use the shop, part {n} of many.",
                                            "created_at": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00Z"})  # fmt: skip
        category = next(c for c in admin.get("/categories.json").json()["category_list"]["categories"]
                        if c["name"] == "Guides")  # fmt: skip
        first = admin.get(f"/c/{category['slug']}/{category['id']}/l/latest.json").json()["topic_list"]
        second = admin.get(f"/c/{category['slug']}/{category['id']}/l/latest.json", params={"page": 1}).json()
    assert len(first["topics"]) == 30 and "more_topics_url" in first
    assert len(second["topic_list"]["topics"]) == 1
    bumped = [t["bumped_at"] for t in first["topics"]]
    assert bumped == sorted(bumped, reverse=True)


# ---- members' rate limits -------------------------------------------------------------------------------------------------


def test_member_rate_limits(clock):
    """One post per 5 s (30 s for a new user) and one topic per 15 s (120 s): the 429 carries the wait; staff are
    exempt."""
    forum = DiscourseSandbox(api_key=KEY, api_username="cardbridge", clock=clock)
    forum.add_user("alice", "alice@example.com", trust_level=1, created_at="2024-01-01T00:00:00.000Z")
    forum.add_user("fresh", "fresh@example.com", trust_level=1)  # signed up today: a new user
    with SandboxServer(forum.app) as server:
        first = send_pm(server.url, "alice", "please redeem 50 points")
        assert first.status_code == 200
        with as_user(server.url, "alice") as alice:
            too_soon = alice.post(
                "/posts.json", json={"topic_id": first.json()["topic_id"], "raw": "and 20 more, please"}
            )
        assert too_soon.status_code == 429
        assert too_soon.json()["error_type"] == "rate_limit" and too_soon.json()["extras"]["wait_seconds"] == 5
        assert too_soon.headers["retry-after"] == "5"
        clock.now += 5
        with as_user(server.url, "alice") as alice:
            later = alice.post("/posts.json", json={"topic_id": first.json()["topic_id"], "raw": "and 20 more, please"})
        assert later.status_code == 200
        assert send_pm(server.url, "alice", "another request for points").status_code == 429  # a topic per 15 s
        assert send_pm(server.url, "fresh", "please redeem 50 points").status_code == 200
        clock.now += 20
        assert send_pm(server.url, "fresh", "please redeem 60 points").status_code == 429  # 120 s for a new user
        with as_user(server.url, "cardbridge") as admin:
            for n in range(3):
                reply = admin.post(
                    "/posts.json", json={"topic_id": first.json()["topic_id"], "raw": f"noted, request {n}"}
                )
                assert reply.status_code == 200


def test_deleted_topics_are_listed_for_staff_only(url, forum):
    forum.add_category("Guides")
    with as_user(url, "cardbridge") as admin:
        made = admin.post("/posts.json", json={"title": "An outdated guide to the shop", "category": "Guides",
                                               "raw": "This guide is about the old checkout page."}).json()  # fmt: skip
        forum.delete_topic_by_hand(made["topic_id"])
        category = next(c for c in admin.get("/categories.json").json()["category_list"]["categories"]
                        if c["name"] == "Guides")  # fmt: skip
        path = f"/c/{category['slug']}/{category['id']}/l/latest.json"
        assert admin.get(path).json()["topic_list"]["topics"] == []
        listed = admin.get(path, params={"status": "deleted"}).json()["topic_list"]["topics"]
    assert [t["id"] for t in listed] == [made["topic_id"]]
    with as_user(url, "alice") as alice:
        assert alice.get(path, params={"status": "deleted"}).json()["topic_list"]["topics"] == []


def test_a_pm_body_that_says_nothing_or_shouts_is_refused_as_unclear(url):
    """``TextSentinel.body_sentinel``: a PM needs 3 distinct bytes (7 scaled by 10/20), a letter or digit, and a
    lowercase letter; both errors come together when the body is short as well."""
    both = send_pm(url, "alice", "!!!!!!!!!")
    assert both.json()["errors"] == [
        "Body is too short (minimum is 10 characters)",
        "Body seems unclear, is it a complete sentence?",
    ]
    assert send_pm(url, "alice", "REDEEM 500 POINTS NOW").json()["errors"] == [
        "Body seems unclear, is it a complete sentence?"
    ]
    assert send_pm(url, "alice", "aaaaaaaaaaaa").status_code == 422  # one distinct byte


def test_an_in_process_like_is_refused_as_the_route_refuses(forum, thread):
    _, _, reply = thread
    assert forum.like_as("bob", reply) is False  # bob wrote it
    assert forum.like_as("alice", reply) is True
    assert forum.like_as("alice", reply) is False  # twice
    assert forum.likers_of(reply) == ["alice"]


def test_likes_past_the_daily_limit_are_refused_with_a_429(url, forum, thread):
    topic_id, _, reply = thread
    forum.max_likes_per_day = 1  # a trust level 1 member: no multiplier
    with as_user(url, "cardbridge") as admin:
        other = admin.post("/posts.json", json={"topic_id": topic_id, "raw": "Staff note: codes are case sensitive."})
    assert like(url, "alice", reply).status_code == 200
    refused = like(url, "alice", other.json()["id"])
    assert refused.status_code == 429 and refused.json()["error_type"] == "rate_limit"
    assert forum.likers_of(other.json()["id"]) == []
