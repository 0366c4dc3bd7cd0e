"""The sandbox Discord API answers like REST v10 (shared/specs/discord: CONNECTOR-NOTES.md, rate-limits.mdx), and its
OAuth2 code flow like discord.com (docs topics/oauth2.mdx, RFC 6749)."""

import html
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer


@pytest.fixture
def discord():
    now = [1_800_000_000.0]
    sandbox = DiscordSandbox(bot_token="t0k", route_limit=2, route_window=5.0, clock=lambda: now[0])
    sandbox.tick = lambda s: now.__setitem__(0, now[0] + s)  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + API  # type: ignore[attr-defined]
        sandbox.root = server.url  # type: ignore[attr-defined]
        yield sandbox


def bot(discord, token="t0k"):
    return httpx.Client(
        base_url=discord.url,
        headers={"Authorization": f"Bot {token}", "User-Agent": "DiscordBot (https://example.com, 0.1)"},
    )


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
    thread = c.post(
        f"/channels/{forum}/threads",
        json={
            "name": "Elden Ring Steam Key",
            "applied_tags": [tag],
            "message": {"content": "Great @everyone", "allowed_mentions": {"parse": []}},
        },
    ).json()
    assert thread["id"] == thread["message"]["id"] and thread["applied_tags"] == [tag]
    assert discord.pings == []
    discord.tick(10)
    discord.archive(thread["id"])
    edit = c.patch(f"/channels/{thread['id']}/messages/{thread['id']}", json={"content": "edited"})
    assert edit.status_code == 400 and edit.json()["code"] == 50083
    assert c.patch(f"/channels/{thread['id']}", json={"archived": False}).status_code == 200
    discord.tick(10)
    assert (
        c.patch(f"/channels/{thread['id']}/messages/{thread['id']}", json={"content": "x" * 2001}).json()["code"]
        == 50035
    )
    c.patch(f"/channels/{thread['id']}/messages/{thread['id']}", json={"content": "ping @everyone"})
    assert len(discord.pings) == 1  # no allowed_mentions: it would have pinged


# ---- OAuth2, Bearer routes, Linked Roles, Add Guild Member, Create Message -----------------------------------------

REDIRECT = "https://shop.example/discord/callback"


def browser(discord):
    return httpx.Client(base_url=discord.root, follow_redirects=False)


def query(location):
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def consent(discord, scope="identify", state="st4te", redirect_uri=REDIRECT, decision="authorize"):
    """Open the consent page like a browser, then submit its form; returns the 302 Location."""
    b = browser(discord)
    page = b.get(
        "/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": discord.client_id,
            "scope": scope,
            "state": state,
            "redirect_uri": redirect_uri,
            "prompt": "consent",
        },
    )
    assert page.status_code == 200, page.text
    fields = {
        k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
    }
    answer = b.post("/oauth2/authorize", data={**fields, "decision": decision})
    assert answer.status_code == 302
    return answer.headers["location"]


def exchange(discord, auth=None, **form):
    auth = (discord.client_id, discord.client_secret) if auth is None else auth
    return httpx.post(f"{discord.root}/api/oauth2/token", data=form, auth=auth or None)


def login(discord, scope="identify", username="ann"):
    """A fresh Discord account that went through the whole code flow; returns (user id, token answer)."""
    discord.redirect_uris.add(REDIRECT)
    discord.browser_user = user = discord.add_user(username)
    code = query(consent(discord, scope=scope))["code"]
    answer = exchange(discord, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert answer.status_code == 200, answer.text
    return user, answer.json()


def bearer(discord, access_token):
    return httpx.Client(base_url=discord.url, headers={"Authorization": f"Bearer {access_token}"})


def test_code_flow_consent_page_token_and_users_me(discord):
    discord.redirect_uris.add(REDIRECT)
    discord.browser_user = ann = discord.add_user("ann")
    page = browser(discord).get(
        "/oauth2/authorize",
        params={
            "response_type": "code",
            "client_id": discord.client_id,
            "scope": "identify guilds.join",
            "state": "xyz",
            "redirect_uri": REDIRECT,
            "prompt": "consent",
        },
    )
    assert "Sandbox Discord — An external application wants to access your Discord account" in page.text
    assert "<strong>ann</strong>" in page.text and page.text.count("<li") == 2
    assert '<button name="decision" value="authorize">Authorize</button>' in page.text
    assert '<button name="decision" value="cancel">Cancel</button>' in page.text
    location = consent(discord, scope="identify guilds.join", state="xyz")
    assert location.startswith(REDIRECT + "?") and query(location)["state"] == "xyz"
    token = exchange(discord, grant_type="authorization_code", code=query(location)["code"], redirect_uri=REDIRECT)
    assert token.status_code == 200 and token.headers["cache-control"] == "no-store"
    body = token.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 604800 and body["scope"] == "identify guilds.join"
    assert body["access_token"] and body["refresh_token"] and discord.token_requests == 1
    me = bearer(discord, body["access_token"]).get("/users/@me")
    assert me.status_code == 200 and me.headers["X-RateLimit-Limit"] == "2"
    assert me.json() == {"id": ann, "username": "ann", "global_name": "ann", "discriminator": "0", "avatar": None}
    info = bearer(discord, body["access_token"]).get("/oauth2/@me").json()
    assert info["application"]["id"] == discord.client_id and info["user"]["id"] == ann
    assert info["scopes"] == ["identify", "guilds.join"] and info["expires"].startswith("2027-")
    assert [r["path"] for r in discord.requests][:2] == ["/oauth2/authorize", "/oauth2/authorize"]


def test_authorize_page_refusals(discord):
    discord.redirect_uris.add(REDIRECT)
    b = browser(discord)
    base = {"response_type": "code", "client_id": discord.client_id, "scope": "identify", "state": "s"}
    assert "log in" in b.get("/oauth2/authorize", params={**base, "redirect_uri": REDIRECT}).text  # nobody logged in
    discord.browser_user = discord.add_user("ann")
    wrong = b.get("/oauth2/authorize", params={**base, "redirect_uri": "https://evil.example/cb"})
    assert wrong.status_code == 400 and "Invalid OAuth2 redirect_uri" in wrong.text and "<form" not in wrong.text
    assert b.get("/oauth2/authorize", params={**base, "client_id": "1", "redirect_uri": REDIRECT}).status_code == 400
    bad_scope = b.get("/oauth2/authorize", params={**base, "scope": "identify nope", "redirect_uri": REDIRECT})
    assert bad_scope.status_code == 302 and query(bad_scope.headers["location"])["error"] == "invalid_scope"
    cancelled = query(consent(discord, decision="cancel", state="keep-me"))
    assert cancelled["error"] == "access_denied" and cancelled["state"] == "keep-me" and "code" not in cancelled


def test_code_is_single_use_short_lived_and_bound_to_its_redirect_uri(discord):
    discord.redirect_uris.update({REDIRECT, "https://shop.example/other"})
    discord.browser_user = discord.add_user("ann")
    code = query(consent(discord))["code"]
    wrong = exchange(discord, grant_type="authorization_code", code=code, redirect_uri="https://shop.example/other")
    assert wrong.status_code == 400 and wrong.json() == {
        "error": "invalid_grant",
        "error_description": 'Invalid "redirect_uri" in request.',
    }
    first = httpx.post(
        f"{discord.root}{API}/oauth2/token",
        data={  # client credentials in the form this time
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": discord.client_id,
            "client_secret": discord.client_secret,
        },
    )
    assert first.status_code == 200
    again = exchange(discord, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
    assert again.status_code == 400 and again.json() == {
        "error": "invalid_grant",
        "error_description": 'Invalid "code" in request.',
    }
    # RFC 6749 §4.1.2: a replayed code revokes what it issued
    assert bearer(discord, first.json()["access_token"]).get("/users/@me").status_code == 401
    late = query(consent(discord))["code"]
    discord.tick(601)
    assert (
        exchange(discord, grant_type="authorization_code", code=late, redirect_uri=REDIRECT).json()["error"]
        == "invalid_grant"
    )


def test_client_authentication_and_grant_types(discord):
    _user, _ = login(discord)
    bad = exchange(discord, auth=(discord.client_id, "wrong"), grant_type="refresh_token", refresh_token="x")
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_client"}
    assert bad.headers["www-authenticate"].startswith("Basic")
    form = exchange(
        discord,
        auth=False,
        grant_type="refresh_token",
        refresh_token="x",
        client_id=discord.client_id,
        client_secret="wrong",
    )
    assert form.status_code == 401 and form.json() == {"error": "invalid_client"}
    unsupported = exchange(discord, grant_type="password", username="ann", password="hunter2")
    assert unsupported.status_code == 400 and unsupported.json() == {"error": "unsupported_grant_type"}
    as_json = httpx.post(
        f"{discord.root}/api/oauth2/token",
        json={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(discord.client_id, discord.client_secret),
    )  # the token URL only reads form bodies
    assert as_json.status_code == 400 and as_json.json()["error"] == "unsupported_grant_type"
    assert discord.token_requests == 5 and discord.invalid_requests == 2


def test_refresh_rotates_and_an_expired_token_needs_a_refresh(discord):
    user, first = login(discord)
    discord.expire_tokens()
    expired = bearer(discord, first["access_token"]).get("/users/@me")
    assert expired.status_code == 401 and expired.json() == {"message": "401: Unauthorized", "code": 0}
    assert discord.invalid_requests == 1
    assert bearer(discord, "never-issued").get("/users/@me").status_code == 401 and discord.invalid_requests == 2
    fresh = exchange(discord, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert fresh.status_code == 200
    renewed = fresh.json()
    assert renewed["refresh_token"] != first["refresh_token"] and renewed["scope"] == "identify"
    assert bearer(discord, renewed["access_token"]).get("/users/@me").json()["id"] == user
    replay = exchange(discord, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert set(discord.issued_tokens()) == {
        first["access_token"],
        first["refresh_token"],
        renewed["access_token"],
        renewed["refresh_token"],
    }


def test_role_connection_metadata_scope_and_values(discord):
    c = bot(discord)
    records = [
        {"type": 2, "key": "points", "name": "Points", "description": "Loyalty points"},
        {"type": 7, "key": "buyer", "name": "Buyer", "description": "Has bought something"},
    ]
    path = f"/applications/{discord.client_id}/role-connections/metadata"
    assert c.put(path, json=records).json() == records and discord.metadata_records == records
    invalid = c.put(path, json=[{"type": 9, "key": "Bad-Key", "name": "x", "description": "y"}])
    assert invalid.status_code == 400 and invalid.json()["code"] == 50035
    assert set(invalid.json()["errors"]["0"]) == {"type", "key"} and discord.metadata_records == records
    discord.tick(10)
    assert c.put(path, json=records * 3).status_code == 400
    assert c.get(path).json() == records
    _, plain = login(discord, scope="identify", username="bob")
    mine = f"/users/@me/applications/{discord.client_id}/role-connection"
    denied = bearer(discord, plain["access_token"]).put(mine, json={"metadata": {"points": "1"}})
    assert denied.status_code == 403 and denied.json() == {"message": "Missing required OAuth2 scope", "code": 50026}
    ann, token = login(discord, scope="identify role_connections.write", username="ann")
    u = bearer(discord, token["access_token"])
    assert u.get(mine).json() == {"platform_name": None, "platform_username": None, "metadata": {}}
    connection = {"platform_name": "CardBridge", "platform_username": "ann", "metadata": {"points": 120, "buyer": 1}}
    put = u.put(mine, json=connection)
    assert put.status_code == 200 and put.headers["X-RateLimit-Remaining"] == "1"  # a bucket of this token's own
    stored = {"platform_name": "CardBridge", "platform_username": "ann", "metadata": {"points": "120", "buyer": "1"}}
    assert put.json() == stored and discord.role_connection(ann) == stored and discord.role_connection("1") is None
    assert discord.requests[-1]["method"] == "PUT" and discord.requests[-1]["body"]["metadata"]["points"] == 120
    assert u.put(mine, json=connection).headers["X-RateLimit-Remaining"] == "0"
    assert u.put(mine, json=connection).status_code == 429
    assert c.get(path).status_code == 200  # the bot's buckets are not the token's
    discord.tick(10)
    unknown = u.put(mine, json={"metadata": {"vip_level": "3"}})
    assert unknown.status_code == 400 and unknown.json()["code"] == 50035
    assert "vip_level" in unknown.json()["errors"]["metadata"] and discord.role_connection(ann) == stored
    too_long = u.put(mine, json={"platform_name": "x" * 51})
    assert too_long.status_code == 400 and "platform_name" in too_long.json()["errors"]
    discord.tick(10)
    other_app = u.put("/users/@me/applications/1234/role-connection", json={})
    assert other_app.status_code == 404 and other_app.json()["code"] == 10002
    assert bot(discord).put(mine, json={}).status_code == 401  # a Bearer-only route


def test_add_guild_member_201_then_204_without_roles(discord):
    buyer = discord.add_role("Verified Buyer", position=2)
    vip = discord.add_role("VIP", position=3)
    staff = discord.add_role("Staff", position=50)
    ann, token = login(discord, scope="identify guilds.join")
    c = bot(discord)
    path = f"/guilds/{discord.guild_id}/members/{ann}"
    above = c.put(path, json={"access_token": token["access_token"], "roles": [staff]})
    assert above.status_code == 403 and above.json()["code"] == 50013 and ann not in discord.members
    joined = c.put(path, json={"access_token": token["access_token"], "roles": [buyer]})
    assert joined.status_code == 201 and joined.json()["roles"] == [buyer] and joined.json()["user"]["id"] == ann
    assert joined.json().keys() == c.get(path).json().keys()
    discord.tick(10)
    again = c.put(path, json={"access_token": token["access_token"], "roles": [vip]})
    assert again.status_code == 204 and again.content == b"" and discord.roles_of(ann) == {buyer}  # roles NOT applied
    _bob, bobs = login(discord, scope="identify guilds.join", username="bob")
    discord.tick(10)
    wrong_user = c.put(path, json={"access_token": bobs["access_token"]})
    assert wrong_user.status_code == 403 and wrong_user.json() == {
        "message": "Invalid OAuth2 access token",
        "code": 50025,
    }
    cara, no_join = login(discord, scope="identify", username="cara")
    missing = c.put(f"/guilds/{discord.guild_id}/members/{cara}", json={"access_token": no_join["access_token"]})
    assert missing.status_code == 403 and missing.json()["code"] == 50026 and cara not in discord.members


def test_create_message_thread_forum_archived_locked(discord):
    forum = discord.add_forum("reviews")
    c = bot(discord)
    thread = c.post(f"/channels/{forum}/threads", json={"name": "Elden Ring", "message": {"content": "first"}}).json()
    sent = c.post(f"/channels/{thread['id']}/messages", json={"content": "update <@123>"})
    assert sent.status_code == 200
    message = sent.json()
    assert message["channel_id"] == thread["id"] and message["edited_timestamp"] is None
    assert message["author"]["bot"] is True and message["embeds"] == []
    assert discord.channels[thread["id"]]["message_count"] == 1 and len(discord.pings) == 1  # the starter not counted
    discord.tick(10)
    edited = c.patch(f"/channels/{thread['id']}/messages/{message['id']}", json={"content": "edited"})
    assert edited.status_code == 200
    assert c.get(f"/channels/{thread['id']}/messages/{message['id']}").json()["content"] == "edited"
    in_forum = c.post(f"/channels/{forum}/messages", json={"content": "hi"})
    assert in_forum.status_code == 400 and in_forum.json() == {
        "message": "Cannot send a message in a forum channel",
        "code": 40058,
    }
    discord.tick(10)
    assert c.post("/channels/424242/messages", json={"content": "hi"}).json()["code"] == 10003
    assert c.post(f"/channels/{thread['id']}/messages", json={"content": "x" * 2001}).json()["code"] == 50035
    discord.tick(10)
    discord.archive(thread["id"])  # sending unarchives a thread that is not locked (threads.mdx)
    assert c.post(f"/channels/{thread['id']}/messages", json={"content": "back"}).status_code == 200
    assert discord.channels[thread["id"]]["thread_metadata"]["archived"] is False
    discord.archive(thread["id"], locked=True)
    locked = c.post(f"/channels/{thread['id']}/messages", json={"content": "no"})
    assert locked.status_code == 400 and locked.json()["code"] == 50083
    discord.tick(10)
    assert c.delete(f"/channels/{thread['id']}/messages/{message['id']}").status_code == 204
    assert discord.channels[thread["id"]]["message_count"] == 1


def test_forum_with_require_tag(discord):
    forum = discord.add_forum("reviews", tags=("5 stars",), require_tag=True)
    c = bot(discord)
    tag = c.get(f"/channels/{forum}").json()["available_tags"][0]["id"]
    post = {"name": "Elden Ring", "message": {"content": "great"}}
    untagged = c.post(f"/channels/{forum}/threads", json=post)
    assert untagged.status_code == 400 and untagged.json() == {
        "code": 40067,
        "message": "A tag is required to create a forum post in this channel",
    }
    discord.tick(10)
    assert c.post(f"/channels/{forum}/threads", json={**post, "applied_tags": ["999"]}).json()["code"] == 40067
    assert c.post(f"/channels/{forum}/threads", json={**post, "applied_tags": [tag]}).status_code == 201


def test_users_me_answers_email_and_verified_as_stored_and_only_with_the_email_scope(discord):
    """discord-api-docs user.mdx (User Structure): ``verified?`` boolean and ``email?`` ?string, scope ``email``."""
    discord.redirect_uris.add(REDIRECT)
    accounts = {
        "ann": discord.add_user("ann", email="Ann@Example.com"),
        "bea": discord.add_user("bea", email="bea@example.com", verified=False),
        "cy": discord.add_user("cy", email=None),
        "dee": discord.add_user("dee"),
    }

    def me(user, scope):
        discord.browser_user = user
        code = query(consent(discord, scope=scope))["code"]
        token = exchange(discord, grant_type="authorization_code", code=code, redirect_uri=REDIRECT).json()
        answer = bearer(discord, token["access_token"]).get("/users/@me")
        assert answer.status_code == 200, answer.text
        discord.tick(10)  # the sandbox's per-route limit is 2 per 5 s
        return answer.json()

    seen = {name: me(user, "identify email") for name, user in accounts.items()}
    assert {name: (u["email"], u["verified"]) for name, u in seen.items()} == {
        "ann": ("Ann@Example.com", True),
        "bea": ("bea@example.com", False),
        "cy": (None, False),
        "dee": ("dee@users.discord.invalid", True),
    }
    without = me(accounts["bea"], "identify")
    assert "email" not in without and "verified" not in without


def test_a_shared_scope_429_does_not_count_as_an_invalid_request(discord):
    """rate-limits.mdx:138: ``shared`` 429s are not the caller's fault; a ``user`` one is."""
    discord.limiter.hold_resource(discord.guild_id, 1337.0, discord.clock())
    answer = bot(discord).get(f"/guilds/{discord.guild_id}/roles")
    assert answer.status_code == 429 and answer.headers["x-ratelimit-scope"] == "shared"
    assert int(answer.headers["retry-after"]) == 1337
    assert discord.invalid_requests == 0
