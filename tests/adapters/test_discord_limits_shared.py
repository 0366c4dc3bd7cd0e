"""Two processes with one bot (replicas) share its Discord limits through the state store (SQLite and PostgreSQL): a
bucket's remaining count spent by one holds the other back until the reset, and a ``shared`` 429 one drew defers the
other's request to that channel without sending it (discord/discord-api-docs developers/topics/rate-limits.mdx:14-16,
84-102). Each replica is its own :class:`DiscordClient` over loopback to the Discord sandbox."""

from __future__ import annotations

import time

import pytest

from adapters.communities.discord_client import DiscordClient
from connector.core.http import Deferred, RemoteError
from connector.state.rate_limits import RateLimits
from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer

TOKEN = "bot-token-123"


@pytest.fixture
def discord():
    # Three messages per channel every two seconds, so a reset comes quickly.
    sandbox = DiscordSandbox(bot_token=TOKEN, route_limit=3, route_window=2.0)
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + API  # type: ignore[attr-defined]
        yield sandbox


def replica(discord, store, sleeps: list[float], token: str = TOKEN) -> DiscordClient:  # type: ignore[no-untyped-def]
    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    client = DiscordClient(token, discord.url, sleep=sleep, max_wait=60.0)
    client.share_limits(RateLimits(store.engine))  # each replica its own view of the store: nothing shared in memory
    return client


def answered_429(discord) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for r in discord.requests if r["status"] == 429)


def test_a_bucket_spent_by_one_replica_holds_the_other_until_its_reset(store, discord):
    channel = discord.add_text_channel()
    sleeps_a: list[float] = []
    sleeps_b: list[float] = []
    a, b = replica(discord, store, sleeps_a), replica(discord, store, sleeps_b)
    a.send_message(channel, {"content": "1"})  # Discord: 2 left in this window
    b.send_message(channel, {"content": "2"})  # 1 left
    a.send_message(channel, {"content": "3"})  # 0 left: B's own last answer said 1
    b.send_message(channel, {"content": "4"})  # so B waits for the reset instead of drawing a 429
    assert answered_429(discord) == 0
    assert sleeps_a == [] and len(sleeps_b) == 1 and 0.5 < sleeps_b[0] <= 2.1
    posted = [m["content"] for m in discord.state.messages.values() if m["channel_id"] == channel]
    assert posted == ["1", "2", "3", "4"]


def test_a_shared_429_one_replica_drew_defers_the_others_request_unsent(store, discord):
    held_channel, other_channel = discord.add_text_channel("held"), discord.add_text_channel("other")
    held = discord.limiter.hold_resource(held_channel, 1337, time.time(), method="POST")
    a, b = replica(discord, store, []), replica(discord, store, [])
    with pytest.raises(Deferred) as drawn:
        a.send_message(held_channel, {"content": "x"})
    assert drawn.value.scope == "shared" and drawn.value.sent
    with pytest.raises(Deferred) as deferred:
        b.send_message(held_channel, {"content": "y"})  # B never sent to this channel: it learns from the store
    assert not deferred.value.sent and deferred.value.scope == "shared" and deferred.value.retry_after > 1300
    assert held.refused == 1
    b.send_message(other_channel, {"content": "z"})  # the same bucket on another channel goes on
    # Another bot's limits are its own: its request is sent (and refused by the sandbox, which knows one bot only).
    with pytest.raises(RemoteError) as other_bot:
        replica(discord, store, [], token="another-bot").send_message(held_channel, {"content": "w"})
    assert other_bot.value.status == 401


def test_a_global_429_holds_every_replica_of_the_bot(store, discord):
    channel = discord.add_text_channel()
    a, b = replica(discord, store, []), replica(discord, store, [])
    # Another integration of the bot has sent its 50 requests this second; a wait of a second is above A's cap.
    discord.limiter.gates["bot"] = [time.time()] * discord.limiter.global_per_second
    a.http.max_wait = 0.5
    with pytest.raises(Deferred) as drawn:
        a.send_message(channel, {"content": "x"})
    assert drawn.value.sent
    sent = len(discord.requests)
    b.http.max_wait = 0.5
    with pytest.raises(Deferred) as deferred:
        b.send_message(channel, {"content": "y"})
    assert deferred.value.scope == "global" and not deferred.value.sent
    assert len(discord.requests) == sent
