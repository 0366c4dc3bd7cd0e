"""The Discord adapter as a TopicSource: forum threads with the demand tag, with their replies (``message_count``),
reactions on the starter message and owner, read from the sandbox over loopback."""

from __future__ import annotations

import pytest

from adapters.communities.discord import DiscordCommunity, DiscordSettings
from adapters.insights import TopicSource
from mappings.demand import rank
from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer

START = 1_800_000_000.0


@pytest.fixture
def discord():
    now = [START]
    sandbox = DiscordSandbox(bot_token="t0k", route_limit=100_000, global_per_second=1_000_000, clock=lambda: now[0])
    sandbox.tick = lambda s: now.__setitem__(0, now[0] + s)  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + API  # type: ignore[attr-defined]
        yield sandbox


def community(discord) -> DiscordCommunity:
    settings = DiscordSettings(kind="discord", bot_token="t0k", guild_id=discord.guild_id, api_base=discord.url)
    return DiscordCommunity("chat", settings, sleep=lambda s: None)


def test_tagged_threads_of_the_forum_with_replies_and_reactions(discord):
    forum = discord.add_forum("shop-talk", tags=("Request", "Chat"))
    other = discord.add_forum("elsewhere", tags=("Request",))
    alice, bob, carol = discord.add_member(), discord.add_member(), discord.add_member()
    asked = discord.start_post(forum, alice, "求 原神月卡 大包装", "每个月都买，出个大包装吧", tags=("Request",))
    discord.post_message(asked, bob, "+1")
    discord.post_message(asked, carol, "同求")
    discord.react(asked, asked, bob, "👍")
    discord.react(asked, asked, carol, "👍")
    discord.tick(60)
    xbox = discord.start_post(forum, bob, "Xbox Game Pass please", "would buy monthly", tags=("Request",))
    discord.archive(xbox)  # archived threads are read too
    discord.start_post(forum, carol, "What are you playing", "racing games", tags=("Chat",))
    discord.start_post(other, carol, "Another forum's request", "not this forum", tags=("Request",))

    source = community(discord)
    assert isinstance(source, TopicSource)
    topics = {t.topic_id: t for t in source.demand_topics(forum, "request", limit=50)}
    assert set(topics) == {asked, xbox}
    first = topics[asked]
    assert (first.reply_count, first.like_count, first.views) == (2, 2, 0)
    assert first.tags == ("Request",) and first.participants == (alice,)
    ranked = rank(list(topics.values()), {"1": "原神月卡"}, buyers={alice}, now=first.created_at)
    assert [(d.topic.topic_id, d.product.product_id if d.product else None, d.verified_buyers) for d in ranked] == [
        (asked, "1", 1),
        (xbox, None, 0),
    ]
    assert source.demand_topics(forum, "no-such-tag", limit=50) == []
