"""Discourse client against the documented response shapes (respx)."""

import json

import httpx
import pytest
import respx

from adapters.communities.discourse_client import DiscourseClient
from connector.core.http import RemoteError

BASE = "https://forum.example.com"


@pytest.fixture
def client():
    return DiscourseClient(BASE, "secret-key", "system", requests_per_minute=None, sleep=lambda s: None)


@respx.mock
def test_auth_headers_are_sent(client):
    route = respx.get(f"{BASE}/admin/badges.json").mock(return_value=httpx.Response(200, json={"badges": []}))
    client.badges()
    request = route.calls.last.request
    assert request.headers["Api-Key"] == "secret-key"
    assert request.headers["Api-Username"] == "system"


@respx.mock
def test_user_by_email_matches_primary_email_exactly(client):
    route = respx.get(f"{BASE}/admin/users/list/active.json").mock(
        return_value=httpx.Response(
            200, json=[{"id": 5, "username": "alice", "email": "Alice@Example.com", "active": True}]
        )
    )
    user = client.user_by_email("alice@example.com")
    assert user is not None and user.username == "alice"
    params = route.calls.last.request.url.params
    assert params["email"] == "alice@example.com" and params["show_emails"] == "true"
    assert params["activation"] == "activated"  # the list's "active" only orders; this filters
    assert "emails" not in params  # never the invite-sending parameter


@respx.mock
@pytest.mark.parametrize("row", [{"active": False}, {}, {"active": "true"}])
def test_user_by_email_skips_an_account_not_activated_even_if_the_forum_sends_it(client, row):
    """A forum from before ``activation=`` ignores it; a row whose ``active`` is not true is nobody's proof."""
    respx.get(f"{BASE}/admin/users/list/active.json").mock(
        return_value=httpx.Response(200, json=[{"id": 5, "username": "mallory", "email": "alice@example.com", **row}])
    )
    assert client.user_by_email("alice@example.com") is None


@respx.mock
def test_user_by_email_none_when_list_empty(client):
    respx.get(f"{BASE}/admin/users/list/active.json").mock(return_value=httpx.Response(200, json=[]))
    assert client.user_by_email("nobody@example.com") is None


@respx.mock
def test_bulk_user_scan_pages_until_a_short_page(client):
    page1 = [{"id": i, "username": f"u{i}", "email": f"u{i}@x.org", "active": True} for i in range(100)]
    page2 = [{"id": 100, "username": "u100", "email": "u100@x.org", "active": True}]
    route = respx.get(f"{BASE}/admin/users/list/active.json").mock(
        side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=page2)]
    )
    pages = list(client.users_with_emails())
    assert [len(p) for p in pages] == [100, 1]
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2"]
    assert {c.request.url.params["activation"] for c in route.calls} == {"activated"}


@respx.mock
def test_bulk_user_scan_drops_rows_not_activated_but_pages_on_what_the_forum_sent(client):
    """An older forum ignores ``activation=``: a full page of unconfirmed sign-ups is dropped, and still not the end."""
    page1 = [{"id": i, "username": f"u{i}", "email": f"u{i}@x.org", "active": False} for i in range(100)]
    page2 = [
        {"id": 100, "username": "u100", "email": "u100@x.org", "active": True},
        {"id": 101, "username": "u101", "email": "u101@x.org", "active": False},
    ]
    route = respx.get(f"{BASE}/admin/users/list/active.json").mock(
        side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=page2)]
    )
    pages = list(client.users_with_emails())
    assert [[u.username for u in p] for p in pages] == [["u100"]]
    assert len(route.calls) == 2


@respx.mock
def test_grant_badge_returns_user_badge_id(client):
    route = respx.post(f"{BASE}/user_badges.json").mock(
        return_value=httpx.Response(
            200, json={"badges": [], "user_badge": {"id": 77, "badge_id": 3, "user_id": 5, "granted_at": "2026-01-01"}}
        )
    )
    assert client.grant_badge("alice", 3) == 77
    assert json.loads(route.calls.last.request.content) == {"username": "alice", "badge_id": 3}


@respx.mock
def test_add_members_by_id_returns_who_the_forum_resolved(client):
    route = respx.put(f"{BASE}/groups/9/members.json").mock(
        return_value=httpx.Response(200, json={"success": "OK", "usernames": ["Alice_Liu"], "emails": []})
    )
    assert client.add_members(9, user_ids=["5", "6"]) == {"alice_liu"}  # id 6 resolved to nobody: dropped
    assert json.loads(route.calls.last.request.content) == {"user_ids": "5,6"}


@respx.mock
def test_add_members_422_is_raised_whatever_its_words_for_the_caller_to_read_back(client):
    """A zh_CN forum's "already members" 422: the client does not read the text (the adapter reads the group)."""
    respx.put(f"{BASE}/groups/9/members.json").mock(
        return_value=httpx.Response(422, json={"errors": ["以下用户已是此群组的成员：alice"]})
    )
    with pytest.raises(RemoteError) as raised:
        client.add_members(9, usernames=["alice"])
    assert raised.value.status == 422


def test_add_members_refuses_more_than_1000_or_both_selectors(client):
    with pytest.raises(ValueError):
        client.add_members(9, usernames=[f"u{i}" for i in range(1001)])
    with pytest.raises(ValueError):
        client.add_members(9, usernames=["a"], user_ids=["1"])


@respx.mock
def test_remove_members_counts_skipped_users_as_resolved(client):
    respx.delete(f"{BASE}/groups/9/members.json").mock(
        return_value=httpx.Response(200, json={"success": "OK", "usernames": ["bob"], "skipped_usernames": ["Eve"]})
    )
    assert client.remove_members(9, user_ids=["2", "3"]) == {"bob", "eve"}


@respx.mock
def test_user_by_id_finds_a_renamed_account_and_none_when_gone(client):
    respx.get(f"{BASE}/admin/users/5.json").mock(
        return_value=httpx.Response(200, json={"id": 5, "username": "alice_liu", "active": True})
    )
    respx.get(f"{BASE}/admin/users/6.json").mock(
        return_value=httpx.Response(404, json={"errors": ["找不到请求的 URL 或资源。"], "error_type": "not_found"})
    )
    found = client.user_by_id("5")
    assert found is not None and (found.id, found.username) == (5, "alice_liu")
    assert client.user_by_id(6) is None


@respx.mock
def test_403_invalid_access_raises_with_status(client):
    respx.get(f"{BASE}/admin/badges.json").mock(
        return_value=httpx.Response(
            403,
            json={
                "errors": ["You are not permitted to view the requested resource. The API username or key is invalid."],
                "error_type": "invalid_access",
            },
        )
    )
    with pytest.raises(RemoteError) as info:
        client.badges()
    assert info.value.status == 403 and info.value.body["error_type"] == "invalid_access"


@respx.mock
def test_group_lookup_404_is_none(client):
    respx.get(f"{BASE}/groups/verified-buyers.json").mock(
        return_value=httpx.Response(
            404, json={"errors": ["The requested URL or resource could not be found."], "error_type": "not_found"}
        )
    )
    assert client.group("verified-buyers") is None


@respx.mock
def test_user_badge_id_finds_the_grant(client):
    respx.get(f"{BASE}/user-badges/alice.json").mock(
        return_value=httpx.Response(
            200, json={"user_badges": [{"id": 12, "badge_id": 4}, {"id": 13, "badge_id": 3}], "badges": []}
        )
    )
    assert client.user_badge_id("alice", 3) == 13
    assert client.user_badge_id("alice", 99) is None
