"""The sandbox Discord sends interactions and serves what follows them as Discord does (discord-api-docs
developers/interactions/overview.mdx, receiving-and-responding.mdx, application-commands.mdx), and keeps members'
reactions like message.mdx describes. A tiny endpoint built on the adapter's verifier answers its interactions."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.communities.discord import DiscordCommunity, DiscordSettings
from adapters.communities.discord_interactions import COMMANDS, deferred_ephemeral, pong
from sandbox.discord import API, DiscordSandbox
from sandbox.discord.outgoing import CommandNotRegistered
from sandbox.server import SandboxServer


@pytest.fixture
def discord():
    now = [1_800_000_000.0]
    sandbox = DiscordSandbox(bot_token="t0k", route_limit=1000, global_per_second=100_000, clock=lambda: now[0])
    sandbox.tick = lambda s: now.__setitem__(0, now[0] + s)  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + API  # type: ignore[attr-defined]
        yield sandbox


def bot(discord, token="t0k"):
    return httpx.Client(base_url=discord.url, headers={"Authorization": f"Bot {token}"})


def community(discord, **keys):
    settings = DiscordSettings(
        kind="discord",
        bot_token="t0k",
        guild_id=discord.guild_id,
        api_base=discord.url,
        application_id=discord.client_id,
        public_key=discord.public_key,
        **keys,
    )
    return DiscordCommunity("chat", settings, sleep=lambda s: None, clock=lambda: discord.clock())


def endpoint_app(adapter, received):
    """The daemon's route in miniature: 401 unless verified, PONG for a PING, a deferred ephemeral for a command."""

    async def interactions(request: Request) -> Response:
        body = await request.body()
        signature = request.headers.get("x-signature-ed25519", "")
        timestamp = request.headers.get("x-signature-timestamp", "")
        if not adapter.verify_interaction(signature, timestamp, body):
            return Response("invalid request signature", status_code=401)
        command = adapter.read_interaction(body)
        if command is None:
            return JSONResponse(pong())
        received.append(command)
        return JSONResponse(deferred_ephemeral())

    return Starlette(routes=[Route("/interactions", interactions, methods=["POST"])])


@pytest.fixture
def endpoint(discord):
    adapter = community(discord)
    received: list = []
    with SandboxServer(endpoint_app(adapter, received)) as server:
        adapter.received = received
        adapter.endpoint = server.url + "/interactions"
        yield adapter
    adapter.close()


def register(discord):
    assert (
        bot(discord)
        .put(f"/applications/{discord.client_id}/guilds/{discord.guild_id}/commands", json=COMMANDS)
        .status_code
        == 200
    )


def test_saving_the_endpoint_needs_a_pong_and_a_401_for_a_forged_signature(discord, endpoint):
    assert discord.verify_endpoint(endpoint.endpoint) is True
    me = bot(discord).get("/applications/@me").json()
    assert me["interactions_endpoint_url"] == endpoint.endpoint and me["verify_key"] == discord.public_key

    async def anything(request: Request) -> Response:  # an endpoint that checks no signature
        return JSONResponse({"type": 1})

    with SandboxServer(Starlette(routes=[Route("/i", anything, methods=["POST"])])) as careless:
        assert discord.verify_endpoint(careless.url + "/i") is False
    assert bot(discord).get("/applications/@me").json()["interactions_endpoint_url"] == endpoint.endpoint


def test_a_signed_command_is_answered_and_a_missing_or_tampered_signature_is_401(discord, endpoint):
    register(discord)
    member = discord.add_member()
    status, answer = discord.send_interaction(endpoint.endpoint, "redeem", member, {"points": 500})
    assert status == 200 and answer == {"type": 5, "data": {"flags": 64}}
    [command] = endpoint.received
    assert (command.command, command.amount, command.user_id, command.guild_id) == (
        "redeem",
        500,
        member,
        discord.guild_id,
    )
    assert discord.reply_of(command.token)["flags"] == 64 | 128  # ephemeral, "thinking…"

    assert discord.send_interaction(endpoint.endpoint, "points", member, sign=False)[0] == 401
    assert discord.send_interaction(endpoint.endpoint, "points", member, tamper=True)[0] == 401
    assert len(endpoint.received) == 1


def test_a_stale_timestamp_is_refused_like_a_bad_signature(discord, endpoint):
    register(discord)
    member = discord.add_member()
    adapter_clock_ahead = community(discord)
    body, timestamp = b'{"type":1}', str(int(discord.clock()))
    signature = discord.state.signing_key.sign(timestamp.encode() + body).hex()
    assert adapter_clock_ahead.verify_interaction(signature, timestamp, body)
    discord.tick(16 * 60)
    assert not adapter_clock_ahead.verify_interaction(signature, timestamp, body)
    assert discord.send_interaction(endpoint.endpoint, "points", member)[0] == 200


def test_the_client_sends_only_registered_commands_with_valid_options(discord, endpoint):
    member = discord.add_member()
    with pytest.raises(CommandNotRegistered):
        discord.send_interaction(endpoint.endpoint, "redeem", member, {"points": 5})
    register(discord)
    for options in ({}, {"points": 0}, {"points": "5"}, {"amount": 5}):
        with pytest.raises(CommandNotRegistered):
            discord.send_interaction(endpoint.endpoint, "redeem", member, options)


def test_the_reply_can_be_edited_for_15_minutes_then_401_50027(discord, endpoint):
    register(discord)
    member = discord.add_member()
    discord.send_interaction(endpoint.endpoint, "points", member)
    token = endpoint.received[-1].token
    path = f"/webhooks/{discord.client_id}/{token}/messages/@original"
    webhook = httpx.Client(base_url=discord.url)  # no Authorization: the token is the credential
    edited = webhook.patch(path, json={"content": "You have 120 points", "allowed_mentions": {"parse": []}})
    assert edited.status_code == 200 and edited.json()["content"] == "You have 120 points"
    assert edited.json()["flags"] == 64  # still ephemeral, no longer loading
    assert webhook.get(path).json()["content"] == "You have 120 points"
    discord.tick(15 * 60 + 1)
    late = webhook.patch(path, json={"content": "too late"})
    assert late.status_code == 401 and late.json()["code"] == 50027
    unknown = webhook.patch(f"/webhooks/{discord.client_id}/nope/messages/@original", json={"content": "x"})
    assert unknown.status_code == 404 and unknown.json()["code"] == 10015
    assert [e["content"] for e in discord.reply_edits(token)] == ["You have 120 points"]


def test_an_unanswered_interaction_has_no_reply_to_edit(discord):
    register(discord)
    member = discord.add_member()

    async def broken(request: Request) -> Response:
        return Response("oops", status_code=500)

    with SandboxServer(Starlette(routes=[Route("/i", broken, methods=["POST"])])) as server:
        assert discord.send_interaction(server.url + "/i", "points", member)[0] == 500
    token = discord.interactions_sent()[-1]["payload"]["token"]
    answer = httpx.patch(
        f"{discord.url}/webhooks/{discord.client_id}/{token}/messages/@original", json={"content": "x"}
    )
    assert answer.status_code == 404 and answer.json()["code"] == 10015


def test_a_deferred_answer_with_other_flags_fails_the_interaction(discord):
    register(discord)
    member = discord.add_member()

    async def wrong(request: Request) -> Response:
        return JSONResponse({"type": 5, "data": {"flags": 64 | 4}})

    with SandboxServer(Starlette(routes=[Route("/i", wrong, methods=["POST"])])) as server:
        discord.send_interaction(server.url + "/i", "points", member)
    assert discord.reply_of(discord.interactions_sent()[-1]["payload"]["token"]) is None


def test_interaction_payload_has_discords_fields(discord, endpoint):
    register(discord)
    member = discord.add_member()
    discord.send_interaction(endpoint.endpoint, "redeem", member, {"points": 7})
    payload = discord.interactions_sent()[-1]["payload"]
    for key in ("id", "application_id", "type", "data", "guild_id", "channel_id", "member", "token", "version"):
        assert key in payload, key
    assert payload["member"]["user"]["id"] == member and payload["version"] == 1
    assert payload["data"]["options"] == [{"name": "points", "type": 4, "value": 7}]
    assert payload["app_permissions"].isdigit() and payload["locale"]
    discord.send_interaction(endpoint.endpoint, "points", member, in_dm=True)
    dm = discord.interactions_sent()[-1]["payload"]
    assert "member" not in dm and dm["user"]["id"] == member and "guild_id" not in dm
    assert endpoint.received[-1].guild_id is None and endpoint.received[-1].user_id == member


def test_bulk_overwrite_keeps_ids_counts_creates_and_checks_the_form(discord):
    c = bot(discord)
    path = f"/applications/{discord.client_id}/guilds/{discord.guild_id}/commands"
    first = c.put(path, json=COMMANDS).json()
    again = c.put(path, json=COMMANDS).json()
    assert [x["id"] for x in first] == [x["id"] for x in again] and discord.command_creates == 2
    assert {x["name"] for x in c.get(path).json()} == {"points", "redeem"}
    bad = c.put(path, json=[{"name": "Points", "description": "x", "type": 1}])
    assert bad.status_code == 400 and bad.json()["code"] == 50035
    empty = c.put(path, json=[{"name": "points", "description": "", "type": 1}])
    assert empty.status_code == 400 and empty.json()["code"] == 50035
    other_app = c.put(f"/applications/123/guilds/{discord.guild_id}/commands", json=COMMANDS)
    assert other_app.status_code == 403 and other_app.json()["code"] == 20012
    assert c.put(path, json=[COMMANDS[0]]).status_code == 200
    assert [x["name"] for x in discord.commands()] == ["points"]  # an overwrite deletes what it does not list


def test_daily_command_creates_are_capped(discord):
    c = bot(discord)
    path = f"/applications/{discord.client_id}/guilds/{discord.guild_id}/commands"
    for n in range(20):
        batch = [{"name": f"c{n}-{i}", "description": "d", "type": 1} for i in range(10)]
        assert c.put(path, json=batch).status_code == 200
    refused = c.put(path, json=[{"name": "one-more", "description": "d", "type": 1}])
    assert refused.json()["code"] == 30034


# ---- reactions -------------------------------------------------------------------------------------------------------


def test_reactions_summary_users_paging_and_member_tokens(discord):
    forum = discord.add_forum("help")
    alice, bob = discord.add_member(), discord.add_member()
    thread = discord.start_post(forum, alice, "How do I redeem?", "question")
    c = bot(discord)
    member = httpx.Client(base_url=discord.url, headers={"Authorization": discord.client_token(bob)})
    react = f"/channels/{thread}/messages/{thread}/reactions/%F0%9F%94%A5/@me"
    assert member.put(react).status_code == 204
    assert c.put(react).status_code == 204  # the bot
    for n in range(120):
        discord.react(thread, thread, str(10**17 + n), "🔥")
    message = c.get(f"/channels/{thread}/messages/{thread}").json()
    [summary] = message["reactions"]
    assert summary["count"] == 122 and summary["me"] is True and summary["emoji"] == {"id": None, "name": "🔥"}
    first = c.get(f"/channels/{thread}/messages/{thread}/reactions/🔥", params={"limit": 100}).json()
    rest = c.get(
        f"/channels/{thread}/messages/{thread}/reactions/🔥", params={"limit": 100, "after": first[-1]["id"]}
    ).json()
    ids = [int(u["id"]) for u in first + rest]
    assert len(ids) == 122 and ids == sorted(ids)
    assert c.get(f"/channels/{thread}/messages/{thread}/reactions/🔥").json().__len__() == 25
    assert c.get(f"/channels/{thread}/messages/{thread}/reactions/🔥", params={"limit": 101}).status_code == 400
    unknown = c.get(f"/channels/{thread}/messages/{thread}/reactions/abc")
    assert unknown.status_code == 400 and unknown.json()["code"] == 10014
    assert c.put(f"/channels/{thread}/messages/{thread}/reactions/nope:123/@me").json()["code"] == 10014


def test_super_reactions_are_listed_by_type(discord):
    forum = discord.add_forum("help")
    alice = discord.add_member()
    thread = discord.start_post(forum, alice, "t", "hi")
    discord.react(thread, thread, "111111111111111111", "🎉", burst=True)
    c = bot(discord)
    [summary] = c.get(f"/channels/{thread}/messages/{thread}").json()["reactions"]
    assert summary["count_details"] == {"burst": 1, "normal": 0}
    assert c.get(f"/channels/{thread}/messages/{thread}/reactions/🎉").json() == []
    assert [
        u["id"] for u in c.get(f"/channels/{thread}/messages/{thread}/reactions/🎉", params={"type": 1}).json()
    ] == ["111111111111111111"]


def test_deleted_messages_vanish_and_archived_threads_take_no_reactions(discord):
    forum = discord.add_forum("help")
    alice = discord.add_member()
    thread = discord.start_post(forum, alice, "t", "hi")
    reply = discord.post_message(thread, alice, "more")
    discord.react(thread, reply, alice, "🔥")
    c = bot(discord)
    discord.delete_message(thread, reply)
    assert c.get(f"/channels/{thread}/messages/{reply}").json()["code"] == 10008
    assert c.get(f"/channels/{thread}/messages/{reply}/reactions/🔥").json()["code"] == 10008
    assert [m["id"] for m in c.get(f"/channels/{thread}/messages").json()] == [thread]
    discord.archive(thread)
    archived = c.put(f"/channels/{thread}/messages/{thread}/reactions/🔥/@me")
    assert archived.status_code == 400 and archived.json()["code"] == 50083


def test_messages_after_are_the_oldest_above_it_listed_newest_first(discord):
    forum = discord.add_forum("help")
    alice = discord.add_member()
    thread = discord.start_post(forum, alice, "t", "0")
    ids = [thread] + [discord.post_message(thread, alice, str(n)) for n in range(1, 6)]
    c = bot(discord)
    page = c.get(f"/channels/{thread}/messages", params={"after": ids[1], "limit": 2}).json()
    assert [m["id"] for m in page] == [ids[3], ids[2]]
    both = c.get(f"/channels/{thread}/messages", params={"after": ids[1], "before": ids[4]})
    assert both.status_code == 400


def test_snowflakes_tell_the_time(discord):
    member = discord.add_member()
    assert ((int(member) >> 22) + 1_420_070_400_000) // 1000 == int(discord.clock())
    old = discord.snowflake(1_500_000_000.0)
    assert ((int(old) >> 22) + 1_420_070_400_000) // 1000 == 1_500_000_000


def test_the_application_shows_its_public_key(discord):
    key = discord.public_key
    assert len(key) == 64 and int(key, 16) >= 0
    assert json.loads(json.dumps(bot(discord).get("/applications/@me").json()))["verify_key"] == key
