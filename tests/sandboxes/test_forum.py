"""The sandbox forum answers like Discourse (shared/specs/discourse: ENDPOINTS.md, ERRORS_RATE_LIMITS_WEBHOOKS.md)."""

import httpx
import pytest

from connector.sandbox.forum import DiscourseSandbox
from connector.sandbox.server import SandboxServer


@pytest.fixture
def forum():
    now = [1000.0]
    sandbox = DiscourseSandbox(api_key="k", clock=lambda: now[0])
    sandbox.tick = lambda seconds: now.__setitem__(0, now[0] + seconds)  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url  # type: ignore[attr-defined]
        yield sandbox


def api(forum, key="k"):
    return httpx.Client(base_url=forum.url, headers={"Api-Key": key, "Api-Username": "system"})


def test_bad_key_gets_invalid_access(forum):
    answer = api(forum, key="wrong").get("/admin/badges.json")
    assert answer.status_code == 403 and answer.json()["error_type"] == "invalid_access"


def test_email_lookup_is_exact_on_the_primary_email(forum):
    forum.add_user("alice", "Alice@Example.com", secondary_emails=("alice.alt@example.com",))
    c = api(forum)
    found = c.get("/admin/users/list/active.json", params={"email": "alice@example.com", "show_emails": "true"}).json()
    assert [u["username"] for u in found] == ["alice"] and found[0]["email"] == "alice@example.com"
    assert c.get("/admin/users/list/active.json", params={"email": "alice.alt@example.com"}).json() == []
    assert "email" not in c.get("/admin/users/list/active.json", params={"email": "alice@example.com"}).json()[0]


def test_user_list_pages_by_100(forum):
    for i in range(150):
        forum.add_user(f"u{i}", f"u{i}@example.com")
    c = api(forum)
    assert len(c.get("/admin/users/list/active.json", params={"page": 1}).json()) == 100
    assert len(c.get("/admin/users/list/active.json", params={"page": 2}).json()) == 51  # + system


def test_single_grant_badge_is_idempotent_and_revocable(forum):
    forum.add_user("alice", "a@example.com")
    c = api(forum)
    badge = c.post("/admin/badges.json", json={"name": "Verified Buyer", "badge_type_id": 3}).json()["badge"]
    assert c.post("/admin/badges.json", json={"name": "Verified Buyer", "badge_type_id": 3}).status_code == 422
    first = c.post("/user_badges.json", json={"username": "alice", "badge_id": badge["id"]}).json()["user_badge"]
    again = c.post("/user_badges.json", json={"username": "alice", "badge_id": badge["id"]}).json()["user_badge"]
    assert first["id"] == again["id"] and forum.user_badge_count("Verified Buyer") == 1
    assert c.post("/user_badges.json", json={"username": "nobody", "badge_id": badge["id"]}).status_code == 404
    assert c.delete(f"/user_badges/{first['id']}.json").json() == {"success": "OK"}
    assert forum.badges_of("alice") == []


def test_group_members_batch_422_and_skipped(forum):
    for name in ("alice", "bob"):
        forum.add_user(name, f"{name}@example.com")
    c = api(forum)
    group = c.post("/admin/groups.json", data={"group[name]": "verified-buyers", "group[title]": "Verified Buyer",
                                               "group[flair_icon]": "check", "group[primary_group]": "true"}).json()
    group_id = group["basic_group"]["id"]
    added = c.put(f"/groups/{group_id}/members.json", json={"usernames": "alice,bob"}).json()
    assert added == {"success": "OK", "usernames": ["alice", "bob"], "emails": []}
    assert forum.user("alice")["title"] == "Verified Buyer" and forum.user("alice")["flair_name"] == "verified-buyers"
    again = c.put(f"/groups/{group_id}/members.json", json={"usernames": "alice"})
    assert again.status_code == 422 and "already a member" in again.json()["errors"][0]
    removed = c.request("DELETE", f"/groups/{group_id}/members.json", json={"usernames": "alice,carol"}).json()
    assert removed["usernames"] == ["alice"] and removed["skipped_usernames"] == ["carol"]
    assert forum.user("alice")["title"] is None
    members = c.get("/groups/verified-buyers/members.json").json()
    assert members["meta"]["total"] == 1 and members["members"][0]["username"] == "bob"


def test_rate_limit_429_shapes(forum):
    forum.rate_limit_per_minute = 2
    c = api(forum)
    assert c.get("/admin/badges.json").status_code == 200
    forum.tick(10)
    assert c.get("/admin/badges.json").status_code == 200
    limited = c.get("/admin/badges.json")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "50"
    assert limited.headers["content-type"].startswith("application/json")
    body = limited.json()
    assert body["error_type"] == "rate_limit" and body["extras"]["wait_seconds"] == 50
    forum.plain_text_429 = True
    plain = c.get("/admin/badges.json")
    assert plain.status_code == 429 and plain.headers["content-type"].startswith("text/plain")
    assert "Please retry again in 50 seconds" in plain.text
    forum.tick(51)
    assert c.get("/admin/badges.json").status_code == 200
    assert forum.rate_limited_count == 2


def test_topic_external_id_redirects_and_duplicates_are_refused(forum):
    c = api(forum)
    created = c.post("/posts.json", json={"title": "王者荣耀 点券 reviews", "raw": "first", "category": 1,
                                           "external_id": "shop-product-12"}).json()
    dup = c.post("/posts.json", json={"title": "another title", "raw": "x", "external_id": "SHOP-product-12"})
    assert dup.status_code == 422 and "External ID has already been taken" in dup.json()["errors"]
    redirect = c.get("/t/external_id/shop-product-12.json", follow_redirects=False)
    assert redirect.status_code == 301
    topic = c.get(redirect.headers["Location"]).json()
    assert topic["id"] == created["topic_id"] and topic["post_stream"]["posts"][0]["raw"] == "first"
    post_id = created["id"]
    edited = c.put(f"/posts/{post_id}.json", json={"post": {"raw": "second"}}).json()["post"]
    assert edited["version"] == 2
    conflict = c.put(f"/posts/{post_id}.json", json={"post": {"raw": "third", "original_text": "stale"}})
    assert conflict.status_code == 409
