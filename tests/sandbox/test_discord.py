"""The sandbox Discord API answers like REST v10 (shared/specs/discord: CONNECTOR-NOTES.md, rate-limits.mdx)."""

import httpx
import pytest

from connector.sandbox.discord import API, DiscordSandbox
from connector.sandbox.server import SandboxServer


@pytest.fixture
def discord():
    now = [1_800_000_000.0]
    sandbox = DiscordSandbox(bot_token="t0k", route_limit=2, route_window=5.0, clock=lambda: now[0])
    sandbox.tick = lambda s: now.__setitem__(0, now[0] + s)  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + API  # type: ignore[attr-defined]
        yield sandbox


def bot(discord, token="t0k"):
    return httpx.Client(base_url=discord.url, headers={"Authorization": f"Bot {token}",
                                                       "User-Agent": "DiscordBot (https://example.com, 0.1)"})


def test_bad_token_is_401_and_counts_as_invalid(discord):
    answer = bot(discord, token="nope").get(f"/guilds/{discord.guild_id}/roles")
    assert answer.status_code == 401 and answer.json() == {"message": "401: Unauthorized", "code": 0}
    assert discord.invalid_requests == 1


def test_roles_put_delete_and_error_codes(discord):
    role = discord.add_role("Verified Buyer", position=2)
    above = discord.add_role("Admin", position=50)
    member = discord.add_member()
    c = bot(discord)
    path = f"/guilds/{discord.guild_id}/members/{member}/roles/{role}"
    assert c.put(path, headers={"X-Audit-Log-Reason": "paid%20order"}).status_code == 204
    assert discord.roles_of(member) == {role}
    assert discord.requests[-1]["audit_reason"] == "paid%20order"
    discord.tick(10)
    assert c.delete(path).status_code == 204 and discord.roles_of(member) == set()
    missing = c.put(f"/guilds/{discord.guild_id}/members/424242/roles/{role}")
    assert missing.status_code == 404 and missing.json()["code"] == 10007
    discord.tick(10)
    forbidden = c.put(f"/guilds/{discord.guild_id}/members/{member}/roles/{above}")
    assert forbidden.status_code == 403 and forbidden.json()["code"] == 50013


def test_bucket_headers_and_429(discord):
    role = discord.add_role("Verified Buyer", position=2)
    members = [discord.add_member() for _ in range(3)]
    c = bot(discord)
    first = c.put(f"/guilds/{discord.guild_id}/members/{members[0]}/roles/{role}")
    assert first.headers["X-RateLimit-Limit"] == "2" and first.headers["X-RateLimit-Remaining"] == "1"
    assert float(first.headers["X-RateLimit-Reset-After"]) == pytest.approx(5.0)
    assert first.headers["X-RateLimit-Bucket"]
    c.put(f"/guilds/{discord.guild_id}/members/{members[1]}/roles/{role}")
    limited = c.put(f"/guilds/{discord.guild_id}/members/{members[2]}/roles/{role}")
    assert limited.status_code == 429
    body = limited.json()
    assert body["global"] is False and body["retry_after"] == pytest.approx(5.0)
    assert limited.headers["X-RateLimit-Scope"] == "user" and limited.headers["Retry-After"] == "5"
    discord.tick(5)
    assert c.put(f"/guilds/{discord.guild_id}/members/{members[2]}/roles/{role}").status_code == 204


def test_forum_thread_edit_archive_and_pings(discord):
    forum = discord.add_forum("reviews", tags=("5 stars",))
    c = bot(discord)
    tag = c.get(f"/channels/{forum}").json()["available_tags"][0]["id"]
    thread = c.post(f"/channels/{forum}/threads", json={
        "name": "Elden Ring Steam Key", "applied_tags": [tag],
        "message": {"content": "Great @everyone", "allowed_mentions": {"parse": []}}}).json()
    assert thread["id"] == thread["message"]["id"] and thread["applied_tags"] == [tag]
    assert discord.pings == []
    discord.tick(10)
    discord.archive(thread["id"])
    edit = c.patch(f"/channels/{thread['id']}/messages/{thread['id']}", json={"content": "edited"})
    assert edit.status_code == 400 and edit.json()["code"] == 50083
    assert c.patch(f"/channels/{thread['id']}", json={"archived": False}).status_code == 200
    discord.tick(10)
    assert c.patch(f"/channels/{thread['id']}/messages/{thread['id']}", json={"content": "x" * 2001}).json()["code"] == 50035
    c.patch(f"/channels/{thread['id']}/messages/{thread['id']}", json={"content": "ping @everyone"})
    assert len(discord.pings) == 1  # no allowed_mentions: it would have pinged
