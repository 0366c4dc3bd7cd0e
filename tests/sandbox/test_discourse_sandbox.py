"""The Discourse sandbox over real HTTP: it must answer what a real forum answers (shapes, errors, quirks)."""

from __future__ import annotations

import httpx
import pytest

from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "test-key"
INVALID_CREDENTIALS = {
    "errors": ["You are not permitted to view the requested resource. The API username or key is invalid."],
    "error_type": "invalid_access",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def forum(clock):
    return DiscourseSandbox(api_key=KEY, api_username="system", clock=clock)


class _CurrentApp:
    """One loopback server for the module; each test points it at its own fresh forum."""

    app = None

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def _shared_server():
    current = _CurrentApp()
    with SandboxServer(current) as running:
        yield current, running


@pytest.fixture
def server(forum, _shared_server):
    current, running = _shared_server
    current.app = forum.app
    yield running


@pytest.fixture
def api(server):
    with httpx.Client(base_url=server.url, headers={"Api-Key": KEY, "Api-Username": "system"}, timeout=10) as client:
        yield client


def make_badge(api, name="Verified Buyer", **extra):
    response = api.post("/admin/badges.json", json={"name": name, "badge_type_id": 3, "allow_title": True, **extra})
    assert response.status_code == 200, response.text
    return response.json()["badge"]["id"]


def make_group(api, name="verified-buyers", **extra):
    fields = {
        "group[name]": name,
        "group[title]": "Verified Buyer",
        "group[flair_icon]": "check-circle",
        "group[flair_bg_color]": "2e7d32",
        "group[flair_color]": "ffffff",
        "group[primary_group]": "true",
    }
    fields.update({f"group[{k}]": v for k, v in extra.items()})
    response = api.post("/admin/groups.json", data=fields)  # form-encoded, Rails-style nested keys
    assert response.status_code == 200, response.text
    return response.json()["basic_group"]


def make_topic(api, title="Reviews: Elden Ring Steam Key", external_id="shop-product-42", category=4):
    body = {"title": title, "raw": "Buyer reviews for this product are collected here.", "category": category}
    if external_id is not None:
        body["external_id"] = external_id
    return api.post("/posts.json", json=body)


# ---- auth, errors, the log ---------------------------------------------------------------------------------------------


def test_bad_key_or_user_is_403_invalid_access_and_unknown_route_is_404(server, api, forum):
    for headers in ({"Api-Key": "wrong", "Api-Username": "system"}, {"Api-Key": KEY, "Api-Username": "nobody"},
                    {"Api-Key": KEY}, {}):  # fmt: skip
        response = httpx.get(server.url + "/admin/badges.json", headers=headers)
        assert response.status_code == 403
        assert response.json() == INVALID_CREDENTIALS
    assert (
        httpx.post(server.url + "/user_badges.json", json={"username": "x"}, headers={"Api-Key": "no"}).status_code
        == 403
    )

    missing = api.get("/no/such/route.json")
    assert missing.status_code == 404
    assert missing.json() == {
        "errors": ["The requested URL or resource could not be found."],
        "error_type": "not_found",
    }

    # a non-admin acting user does not even see /admin routes (Rails AdminConstraint)
    forum.add_user("alice", "alice@example.com")
    assert api.get("/admin/badges.json", headers={"Api-Username": "alice"}).status_code == 404

    record = forum.requests[0]
    assert set(record) >= {"method", "path", "query", "body", "status", "time"}
    assert (record["method"], record["path"], record["status"]) == ("GET", "/admin/badges.json", 403)
    assert forum.count("GET", r"^/admin/badges") == 5 and len(forum.writes()) == 1


# ---- users ---------------------------------------------------------------------------------------------------------------


def test_email_lookup_is_exact_case_insensitive_and_primary_only(api, forum):
    forum.add_user("alice", "Alice@Example.com", secondary_emails=["alice.alt@example.com"])
    forum.add_user("alicia", "alicia@example.com")

    found = api.get("/admin/users/list/active.json", params={"email": "ALICE@example.COM", "show_emails": "true"})
    assert found.status_code == 200
    assert [(u["username"], u["email"], u["secondary_emails"]) for u in found.json()] == [
        ("alice", "alice@example.com", ["alice.alt@example.com"])
    ]
    assert api.get("/admin/users/list/active.json", params={"email": "alice.alt@example.com"}).json() == []
    assert api.get("/admin/users/list/active.json", params={"email": "alice@example"}).json() == []
    # without show_emails the address is not in the answer at all
    assert "email" not in api.get("/admin/users/list/active.json", params={"email": "alice@example.com"}).json()[0]
    # the `filter` parameter is the substring search, unlike `email`
    assert {u["username"] for u in api.get("/admin/users/list/active.json", params={"filter": "ali"}).json()} == {
        "alice",
        "alicia",
    }


def test_show_emails_pages_100_users_and_orders_as_asked(api, forum):
    for n in range(250):
        forum.add_user(f"buyer{n:03d}", f"buyer{n:03d}@example.com")
    pages = []
    for page in (1, 2, 3, 4):
        params = {"show_emails": "true", "page": page, "order": "created", "asc": "true"}
        pages.append(api.get("/admin/users/list/active.json", params=params).json())
    assert [len(p) for p in pages] == [100, 100, 51, 0]  # 250 buyers + the system user
    ids = [u["id"] for p in pages for u in p]
    assert ids == sorted(ids) and len(set(ids)) == 251 and ids[0] == -1
    assert all("email" in u for p in pages for u in p)
    # the "active" list is ordered by last seen, then username; it does not filter inactive users
    forum.add_user("aaron", "aaron@example.com", active=False)
    first = api.get("/admin/users/list/active.json").json()[0]
    assert first["username"] == "aaron" and first["active"] is False


def test_accounts_not_activated_are_listed_unless_activation_activated_is_sent(api, forum):
    """lib/admin_user_index_query.rb: ``query == "active"`` only orders (:60); ``filter_by_activation`` (:85-92)
    filters; a forum from before it ignores the parameter."""
    forum.add_user("alice", "alice@example.com")
    forum.add_user("mallory", "bob@example.com", active=False)  # signed up with Bob's address, never confirmed it

    def usernames(**params):
        answer = api.get("/admin/users/list/active.json", params={"show_emails": "true", **params})
        assert answer.status_code == 200
        assert all(isinstance(u["active"], bool) for u in answer.json())  # every row says
        return {u["username"]: u["active"] for u in answer.json() if u["id"] > 0}

    assert usernames() == {"alice": True, "mallory": False}
    assert usernames(email="bob@example.com") == {"mallory": False}
    assert usernames(activation="activated") == {"alice": True}
    assert usernames(activation="activated", email="bob@example.com") == {}
    assert usernames(activation="not_activated") == {"mallory": False}
    assert usernames(activation="anything else") == {"alice": True, "mallory": False}
    assert usernames(activation="activated", filter="example.com") == {"alice": True}

    forum.activate("mallory")  # the owner of the address clicked the confirmation link
    assert usernames(activation="activated", email="bob@example.com") == {"mallory": True}

    forum.add_user("eve", "eve@example.com", active=False)
    forum.activation_filter = False  # an older forum: the parameter is ignored
    assert usernames(activation="activated", email="eve@example.com") == {"eve": False}


# ---- badges ----------------------------------------------------------------------------------------------------------------


def test_badge_create_grant_is_idempotent_for_single_grant_and_revoke(api, forum):
    forum.add_user("alice", "alice@example.com")
    badge_id = make_badge(api)
    duplicate = api.post("/admin/badges.json", json={"name": "Verified Buyer", "badge_type_id": 3})
    assert duplicate.status_code == 422 and duplicate.json() == {"errors": ["Name has already been taken"]}
    assert api.post("/admin/badges.json", json={"name": "No Type"}).json() == {"errors": ["Badge type can't be blank"]}

    first = api.post("/user_badges.json", json={"username": "alice", "badge_id": badge_id})
    assert first.status_code == 200
    user_badge = first.json()["user_badge"]
    assert user_badge["badge_id"] == badge_id and user_badge["granted_by_id"] == -1
    assert first.json()["badges"][0]["name"] == "Verified Buyer"
    again = api.post("/user_badges.json", data={"username": "ALICE", "badge_name": "Verified Buyer"})
    assert again.json()["user_badge"]["id"] == user_badge["id"]  # the existing grant, no duplicate
    assert forum.badges_of("alice") == ["Verified Buyer"] and forum.user_badge_count("Verified Buyer") == 1
    listed = api.get("/user-badges/alice.json").json()
    assert [(ub["id"], ub["badge_id"]) for ub in listed["user_badges"]] == [(user_badge["id"], badge_id)]
    grantees = api.get("/user_badges.json", params={"badge_id": badge_id}).json()["user_badge_info"]
    assert [ub["user_id"] for ub in grantees["user_badges"]] == [forum.user("alice")["id"]]

    assert api.post("/user_badges.json", json={"username": "ghost", "badge_id": badge_id}).status_code == 404
    assert api.post("/user_badges.json", json={"username": "alice", "badge_id": 9999}).status_code == 404
    assert api.post("/user_badges.json", json={"badge_id": badge_id}).json() == {
        "errors": ["param is missing or the value is empty: username"]
    }
    disabled = make_badge(api, "Old Badge", enabled="false")  # form-style "false"; JSON false would be ignored
    assert api.post("/user_badges.json", json={"username": "alice", "badge_id": disabled}).status_code == 404

    # revoking clears a title equal to the badge name
    api.put("/u/alice.json", json={"title": "Verified Buyer"})
    assert api.delete(f"/user_badges/{user_badge['id']}.json").json() == {"success": "OK"}
    assert forum.badges_of("alice") == [] and forum.user("alice")["title"] is None
    assert api.delete(f"/user_badges/{user_badge['id']}.json").status_code == 404

    multi = make_badge(api, "Reviewer", multiple_grant=True)
    ids = {
        api.post("/user_badges.json", json={"username": "alice", "badge_id": multi}).json()["user_badge"]["id"]
        for _ in range(2)
    }
    assert len(ids) == 2


# ---- groups ----------------------------------------------------------------------------------------------------------------


def test_group_add_batch_already_members_422_and_remove_with_skipped(api, forum):
    for name in ("alice", "bob", "carol", "dave"):
        forum.add_user(name, f"{name}@example.com")
    group = make_group(api)
    assert (
        group["title"] == "Verified Buyer" and group["flair_url"] == "check-circle" and group["primary_group"] is True
    )
    taken = api.post("/admin/groups.json", json={"group": {"name": "Verified-Buyers"}})
    assert taken.status_code == 422 and taken.json() == {"errors": ["Name has already been taken"]}
    gid = group["id"]

    added = api.put(f"/groups/{gid}/members.json", json={"usernames": "alice,bob,ghost"})
    assert added.json() == {"success": "OK", "usernames": ["alice", "bob"], "emails": []}
    alice = forum.user("alice")
    assert alice["title"] == "Verified Buyer" and alice["primary_group_name"] == "verified-buyers"
    assert alice["flair_group_name"] == "verified-buyers"
    shown = api.get("/u/alice.json").json()["user"]
    assert (shown["primary_group_name"], shown["flair_name"], shown["flair_url"]) == (
        "verified-buyers",
        "verified-buyers",
        "check-circle",
    )

    one = api.put(f"/groups/{gid}/members.json", json={"usernames": "alice"})
    assert one.status_code == 422 and one.json() == {"errors": ["'alice' is already a member of this group."]}
    both = api.put(f"/groups/{gid}/members.json", data={"usernames": "bob,alice"})
    assert both.json() == {"errors": ["The following users are already members of this group: alice, bob"]}
    mixed = api.put(f"/groups/{gid}/members.json", json={"usernames": "alice,carol"})
    assert mixed.status_code == 200 and mixed.json()["usernames"] == ["alice", "carol"]
    nobody = api.put(f"/groups/{gid}/members.json", json={"usernames": "ghost"})
    assert nobody.status_code == 400 and nobody.json() == {
        "errors": ["You supplied invalid parameters to the request: usernames"],
        "error_type": "invalid_parameters",
    }
    too_many = forum  # 1001 real users are needed before the cap applies
    for n in range(1001):
        too_many.add_user(f"u{n}", f"u{n}@example.com")
    capped = api.put(f"/groups/{gid}/members.json", json={"usernames": ",".join(f"u{n}" for n in range(1001))})
    assert capped.status_code == 422 and capped.json() == {"errors": ["Maximum 1000 users can be added at once"]}

    members = api.get("/groups/verified-buyers/members.json", params={"limit": 2}).json()
    assert members["meta"] == {"total": 3, "limit": 2, "offset": 0}
    assert [m["username"] for m in members["members"]] == ["carol", "bob"]  # username DESC unless asc
    assert api.get("/groups/verified-buyers/members.json", params={"limit": 5000}).status_code == 400

    removed = api.request("DELETE", f"/groups/{gid}/members.json", json={"usernames": "alice,dave"})
    assert removed.json() == {"success": "OK", "usernames": ["alice"], "skipped_usernames": ["dave"]}
    alice = forum.user("alice")
    assert (alice["title"], alice["primary_group_id"], alice["flair_group_id"]) == (None, None, None)
    assert forum.groups_of("alice") == [] and forum.groups_of("bob") == ["verified-buyers"]
    assert api.request("DELETE", f"/groups/{gid}/members.json", data={"username": "bob"}).json()["usernames"] == ["bob"]


# ---- rate limits -----------------------------------------------------------------------------------------------------------


def test_admin_api_rate_limit_is_a_sliding_window_answering_json_429(server, forum, clock):
    forum.rate_limit_per_minute = 3
    with httpx.Client(base_url=server.url, headers={"Api-Key": KEY, "Api-Username": "system"}) as api:
        for _ in range(3):  # t = 0, 10, 20
            assert api.get("/admin/badges.json").status_code == 200
            clock.advance(10)
        clock.advance(-10)
        limited = api.get("/admin/badges.json")
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("application/json")
        assert limited.headers["Retry-After"] == "40"  # until the request at t=0 leaves the window
        assert limited.headers["Discourse-Rate-Limit-Error-Code"] == "admin_api_key_rate_limit"
        assert limited.json()["extras"] == {"wait_seconds": 40, "time_left": "40 seconds"}
        clock.advance(28)  # t = 48
        later = api.get("/admin/badges.json")
        assert later.headers["Retry-After"] == "12"
        assert later.json() == {
            "errors": ["You’ve performed this action too many times. Please wait 12 seconds before trying again."],
            "error_type": "rate_limit",
            "extras": {"wait_seconds": 12, "time_left": "12 seconds"},
        }
        clock.advance(12)  # t = 60: the oldest request leaves the window; the rejected ones never entered it
        assert api.get("/admin/badges.json").status_code == 200
        again = api.get("/admin/badges.json")  # the oldest is now t=10
        assert again.status_code == 429 and again.json()["extras"]["wait_seconds"] == 10
    assert forum.rate_limited_count == 3
    assert [r["status"] for r in forum.requests][-2:] == [200, 429]

    # a full window answers "1 minute"
    fresh = DiscourseSandbox(api_key=KEY, rate_limit_per_minute=1, clock=clock)
    with (
        SandboxServer(fresh.app) as other,
        httpx.Client(base_url=other.url, headers={"Api-Key": KEY, "Api-Username": "system"}) as api,
    ):
        assert api.get("/categories.json").status_code == 200
        assert api.get("/categories.json").json()["extras"] == {"wait_seconds": 60, "time_left": "1 minute"}


def test_plain_text_429_variant(server, forum, clock):
    forum.rate_limit_per_minute = 1
    forum.plain_text_429 = True
    with httpx.Client(base_url=server.url, headers={"Api-Key": KEY, "Api-Username": "system"}) as api:
        assert api.get("/categories.json").status_code == 200
        clock.advance(50)
        limited = api.get("/categories.json")
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("text/plain")
    assert limited.headers["Retry-After"] == "10"
    assert limited.text == (
        "Slow down, too many requests from this IP address.\nPlease retry again in 10 seconds.\n"
        "Error code: ip_10_secs_limit.\n"
    )


# ---- topics and posts ------------------------------------------------------------------------------------------------------


def test_external_id_is_unique_and_redirects_with_301(api, clock):
    created = make_topic(api)
    assert created.status_code == 200
    post = created.json()
    assert post["post_number"] == 1 and post["topic_slug"] == "reviews-elden-ring-steam-key"

    clock.advance(121)  # past the 120 s memoization of identical API posts
    duplicate = make_topic(api, title="Another title for the same product", external_id="SHOP-PRODUCT-42")
    assert duplicate.status_code == 422
    assert duplicate.json() == {
        "action": "create_post",
        "errors": ["External has already been taken"],
        "success": False,
    }
    bad = make_topic(api, title="A title with a bad external id", external_id="no spaces allowed")
    assert bad.json()["errors"] == ["External is invalid"]

    moved = api.get("/t/external_id/shop-product-42.json", follow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["Location"].endswith(f"/t/reviews-elden-ring-steam-key/{post['topic_id']}.json")
    topic = api.get("/t/external_id/shop-product-42.json", follow_redirects=True).json()
    assert (topic["id"], topic["external_id"], topic["posts_count"]) == (post["topic_id"], "shop-product-42", 1)
    assert topic["post_stream"]["stream"] == [post["id"]]
    assert api.get("/t/external_id/unknown.json", follow_redirects=False).status_code == 404


def test_identical_post_within_120s_is_memoized_and_topic_validations_apply(api, forum, clock):
    first = make_topic(api, external_id=None).json()
    again = make_topic(api, external_id=None).json()
    assert again["id"] == first["id"] and len(forum.topics()) == 1  # a retried create does not duplicate
    clock.advance(121)
    assert make_topic(api, external_id=None).json()["errors"] == ["Title has already been used"]
    short = api.post("/posts.json", json={"title": "Too short", "raw": "Long enough body text here.", "category": 4})
    assert short.json()["errors"] == ["Title is too short (minimum is 15 characters)"]
    uncategorized = api.post(
        "/posts.json", json={"title": "A topic without category", "raw": "Long enough body text here."}
    )
    assert uncategorized.json()["errors"] == ["Category can't be blank"]
    gone = api.post("/posts.json", json={"topic_id": 99999, "raw": "A reply to a topic that does not exist."})
    assert gone.status_code == 422 and gone.json()["success"] is False


def test_post_edit_versions_409_conflict_escaping_and_soft_delete(api, forum, clock):
    topic = make_topic(api).json()
    raw = "Great key <script>alert(1)</script> & fast delivery!"
    reply = api.post("/posts.json", data={"topic_id": topic["topic_id"], "raw": raw}).json()
    assert reply["raw"] == raw and "<script>" not in reply["cooked"] and "&lt;script&gt;" in reply["cooked"]
    pid = reply["id"]

    conflict = api.put(f"/posts/{pid}.json", json={"post": {"raw": "x" * 30, "original_text": "not the current raw"}})
    assert conflict.status_code == 409
    assert conflict.json() == {
        "errors": ["That post was edited by another user and your changes can no longer be saved."]
    }
    assert api.put(f"/posts/{pid}.json", json={"raw": "no post key"}).status_code == 400

    # the author's own small edit within the 5-minute grace period keeps the version
    small = api.put(f"/posts/{pid}.json", data={"post[raw]": raw + " Recommended.", "post[original_text]": raw})
    assert small.status_code == 200 and small.json()["post"]["version"] == 1
    clock.advance(301)
    edited = api.put(
        f"/posts/{pid}.json",
        json={"post": {"raw": "Edited after the grace period, still a review.", "edit_reason": "typo"}},
    )
    assert edited.json()["post"]["version"] == 2 and edited.json()["post"]["edit_reason"] == "typo"

    forum.edit_post_by_hand(pid, "A moderator rewrote this review entirely.")
    shown = api.get(f"/posts/{pid}.json").json()
    assert shown["version"] == 3 and shown["raw"] == "A moderator rewrote this review entirely."
    assert forum.posts_of_topic(topic["topic_id"])[1]["last_editor_username"] == "moderator"

    assert api.delete(f"/posts/{pid}.json").status_code == 200
    assert api.get(f"/posts/{pid}.json").json()["deleted_at"] is not None  # staff still see it
    view = api.get(f"/t/{topic['topic_id']}.json").json()
    assert view["posts_count"] == 1 and pid not in view["post_stream"]["stream"]


# ---- user fields, gamification, bodies, faults ---------------------------------------------------------------------------


def test_user_fields_and_multipart_bodies(api, forum):
    forum.add_user("alice", "alice@example.com")
    field_id = forum.add_user_field("Verified purchases")
    updated = api.put("/u/alice.json", files={f"user_fields[{field_id}]": (None, "3"), "user_fields[999]": (None, "x")})
    assert updated.status_code == 200 and updated.json()["success"] == "OK"
    assert updated.json()["user"]["user_fields"] == {str(field_id): "3"}  # undefined field ids are ignored
    tagged = api.post("/posts.json", data={"title": "Reviews: a tagged product", "raw": "Tagged topic body text here.",
                                           "category": "4", "tags[]": ["steam", "keys"]})  # fmt: skip
    assert tagged.status_code == 200
    assert api.get(f"/t/{tagged.json()['topic_id']}.json").json()["tags"] == ["steam", "keys"]
    put = next(r for r in forum.requests if r["method"] == "PUT")
    assert put["body"] == {"user_fields": {str(field_id): "3", "999": "x"}}


def test_gamification_score_events(api, forum):
    uid = forum.add_user("alice", "alice@example.com")
    created = api.post("/admin/plugins/gamification/score_events.json",
                       json={"user_id": uid, "date": "2026-03-01", "points": -5, "description": "refund"})  # fmt: skip
    assert created.status_code == 200
    event = created.json()
    assert (event["user_id"], event["date"], event["points"], event["description"]) == (uid, "2026-03-01", -5, "refund")
    assert api.post(
        "/admin/plugins/gamification/score_events.json", json={"user_id": uid, "date": "2026-03-01"}
    ).json() == {"errors": ["param is missing or the value is empty: points"]}
    assert api.put("/admin/plugins/gamification/score_events.json", json={"id": event["id"], "points": 0}).json() == {
        "success": "OK"
    }
    listed = api.get("/admin/plugins/gamification/score_events.json", params={"user_id": uid}).json()
    assert [(e["id"], e["points"], e["description"]) for e in listed["events"]] == [(event["id"], 0, "refund")]
    assert api.delete("/admin/plugins/gamification/score_events.json").status_code == 404  # there is no DELETE


def test_knob_fault_answers_injected_status_then_recovers(api, forum):
    forum.knobs.add_fault(r"^/admin/badges", kind="status", status=503, times=1)
    first = api.get("/admin/badges.json")
    assert first.status_code == 503 and first.json()["error_type"] == "sandbox_fault"
    assert api.get("/admin/badges.json").status_code == 200
    assert forum.count("GET", r"^/admin/badges") == 1  # the faulted request never reached the forum


# ---- locale and renamed users (issue 13, items 1 and 2) ------------------------------------------------------------------


def test_a_zh_cn_forum_answers_its_errors_in_chinese_with_the_same_shapes(server, api, forum):
    forum.locale = "zh_CN"
    forum.add_user("alice", "alice@example.com")
    group = make_group(api)
    assert api.put(f"/groups/{group['id']}/members.json", json={"usernames": "alice"}).status_code == 200

    again = api.put(f"/groups/{group['id']}/members.json", json={"usernames": "alice"})
    # GroupMemberAdder::AlreadyMembers → render_json_error: 422, no error_type, zh_CN has only the "other" form
    assert again.status_code == 422 and again.json() == {"errors": ["以下用户已是此群组的成员：alice"]}
    nobody = api.put(f"/groups/{group['id']}/members.json", json={"usernames": "nobody"})
    assert nobody.status_code == 400
    assert nobody.json() == {"errors": ["您为请求提供了无效参数：usernames"], "error_type": "invalid_parameters"}
    missing = api.post("/user_badges.json", json={"username": "nobody", "badge_id": 1})
    assert missing.status_code == 404
    assert missing.json() == {"errors": ["找不到请求的 URL 或资源。"], "error_type": "not_found"}
    refused = httpx.get(server.url + "/admin/badges.json", headers={"Api-Key": "wrong", "Api-Username": "system"})
    assert refused.status_code == 403 and refused.json() == {
        "errors": ["您没有权限查看请求的资源。API 用户名或者密钥无效。"],
        "error_type": "invalid_access",
    }

    forum.locale = "en"
    english = api.put(f"/groups/{group['id']}/members.json", json={"usernames": "alice"})
    assert english.json() == {"errors": ["'alice' is already a member of this group."]}


def test_a_renamed_user_is_found_by_id_only_and_old_names_are_dropped_silently(api, forum):
    bob = forum.add_user("bob", "bob@example.com")
    forum.add_user("alice", "alice@example.com")
    group = make_group(api)
    badge = make_badge(api)
    renamed = api.put("/u/bob/preferences/username.json", json={"new_username": "bobby"})
    assert renamed.status_code == 200 and renamed.json() == {"id": bob, "username": "bobby"}

    # the old name resolves to nobody: dropped from a batch without a word, 400 when it is the only one
    mixed = api.put(f"/groups/{group['id']}/members.json", json={"usernames": "bob,alice"})
    assert mixed.status_code == 200 and mixed.json()["usernames"] == ["alice"]
    assert forum.groups_of("bobby") == []
    alone = api.put(f"/groups/{group['id']}/members.json", json={"usernames": "bob"})
    assert alone.status_code == 400 and alone.json()["error_type"] == "invalid_parameters"
    assert api.post("/user_badges.json", json={"username": "bob", "badge_id": badge}).status_code == 404
    assert api.get("/user-badges/bob.json").status_code == 404

    # by id the account is found whatever its name
    by_id = api.put(f"/groups/{group['id']}/members.json", json={"user_ids": f"{bob},99999"})
    assert by_id.status_code == 200 and by_id.json()["usernames"] == ["bobby"]
    assert api.get(f"/admin/users/{bob}.json").json()["username"] == "bobby"
    assert api.get("/admin/users/99999.json").status_code == 404
    taken = api.put("/u/bobby/preferences/username.json", json={"new_username": "alice"})
    assert taken.status_code == 422 and "error_type" not in taken.json()
