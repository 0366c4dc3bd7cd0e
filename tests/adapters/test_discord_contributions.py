"""The Discord adapter as a ContributionSource: members' posts in forum channels and who reacted to them, read from
the sandbox over loopback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.communities.discord import DiscordCommunity, DiscordSettings
from adapters.communities.discord_contributions import snowflake_at, snowflake_time
from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer

START = 1_800_000_000.0  # 2027-01-15


@pytest.fixture
def discord():
    now = [START]
    sandbox = DiscordSandbox(bot_token="t0k", route_limit=100_000, global_per_second=1_000_000, clock=lambda: now[0])
    sandbox.tick = lambda s: now.__setitem__(0, now[0] + s)  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + API  # type: ignore[attr-defined]
        yield sandbox


def community(discord, **keys):
    settings = DiscordSettings(kind="discord", bot_token="t0k", guild_id=discord.guild_id, api_base=discord.url, **keys)
    return DiscordCommunity("chat", settings, sleep=lambda s: None)


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def member(discord, days_old: float) -> str:
    """A member whose account was made ``days_old`` days before the start."""
    return discord.add_member(discord.snowflake(START - days_old * 86400))


def test_posts_since_with_likers_and_their_account_ages(discord):
    forum, other = discord.add_forum("help"), discord.add_forum("off-topic")
    alice, bob, carol = member(discord, 400), member(discord, 90), member(discord, 1)
    old_thread = discord.start_post(forum, alice, "Old question", "before the window")
    discord.tick(3600)
    since = discord.clock()
    discord.tick(60)
    answer = discord.post_message(old_thread, bob, "an answer in an old thread", reply_to=old_thread)
    thread = discord.start_post(forum, alice, "How do I redeem?", "a new question")
    elsewhere = discord.start_post(other, bob, "chat", "not an earning channel")
    discord.react(old_thread, answer, alice, "🔥")
    discord.react(old_thread, answer, carol, "👍")
    discord.react(thread, thread, bob, "🔥")
    discord.react(elsewhere, elsewhere, alice, "🔥")

    posts = {p.post_id: p for p in community(discord).contributions([forum], at(since))}

    assert set(posts) == {answer, thread}  # not the old starter message, not the other forum
    reply = posts[answer]
    assert (reply.author_id, reply.where, reply.removed, reply.accepted) == (bob, forum, False, False)
    assert reply.created_at == snowflake_time(answer) and reply.created_at >= at(since)
    ages = {liker.user_id: liker.joined_at for liker in reply.likers}
    assert set(ages) == {alice, carol}
    assert abs(ages[alice] - at(START - 400 * 86400)) < timedelta(seconds=1)
    assert abs(ages[carol] - at(START - 86400)) < timedelta(seconds=1)
    assert [liker.user_id for liker in posts[thread].likers] == [bob]
    assert posts[thread].author_username and posts[thread].where == forum


def test_a_member_with_several_emojis_and_a_super_reaction_likes_once(discord):
    forum = discord.add_forum("help")
    alice, bob, carol = member(discord, 400), member(discord, 300), member(discord, 200)
    since = discord.clock()
    thread = discord.start_post(forum, alice, "Guide", "a useful guide")
    for emoji in ("🔥", "👍", "❤️"):
        discord.react(thread, thread, bob, emoji)
    discord.react(thread, thread, bob, "🎉", burst=True)
    discord.react(thread, thread, carol, "🎉", burst=True)  # only a super reaction: listed with type=1
    party = discord.add_emoji("party")
    discord.react(thread, thread, carol, f"party:{party}")

    [post] = community(discord).contributions([forum], at(since))

    assert sorted(liker.user_id for liker in post.likers) == sorted([bob, carol])


def test_bots_webhooks_and_deleted_messages_are_left_out(discord):
    forum = discord.add_forum("reviews")
    alice, bob = member(discord, 400), member(discord, 300)
    since = discord.clock()
    thread = discord.start_post(forum, alice, "t", "hi")
    gone = discord.post_message(thread, bob, "spam")
    discord.react(thread, gone, alice, "🔥")
    bot_message = discord.post_message(thread, bob, "from the bot")
    discord.messages[bot_message]["author"] = discord.state.bot_user()
    discord.react(thread, thread, discord.client_id, "🔥")  # the bot's own reaction
    discord.react(thread, thread, bob, "🔥")
    discord.delete_message(thread, gone)

    posts = list(community(discord).contributions([forum], at(since)))

    assert [p.post_id for p in posts] == [thread]
    assert [liker.user_id for liker in posts[0].likers] == [bob]


def test_archived_threads_and_long_threads_are_read_in_pages(discord):
    forum = discord.add_forum("help")
    alice, bob = member(discord, 400), member(discord, 300)
    since = discord.clock()
    busy = discord.start_post(forum, alice, "busy", "start")
    replies = [discord.post_message(busy, bob, f"reply {n}") for n in range(230)]
    discord.react(busy, replies[-1], alice, "🔥")
    quiet = discord.start_post(forum, bob, "quiet", "archived later")
    discord.react(quiet, quiet, alice, "🔥")
    discord.tick(60)
    discord.archive(quiet)
    fans = [discord.snowflake(START - 100 * 86400) for _ in range(150)]
    for fan in fans:
        discord.react(busy, busy, fan, "🔥")

    posts = {p.post_id: p for p in community(discord).contributions([forum], at(since))}

    assert set(posts) == {busy, quiet, *replies}
    assert [liker.user_id for liker in posts[quiet].likers] == [alice]
    assert [liker.user_id for liker in posts[replies[-1]].likers] == [alice]
    assert sorted(liker.user_id for liker in posts[busy].likers) == sorted(fans)
    pages = [r for r in discord.requests if r["path"] == f"{API}/channels/{busy}/messages"]
    assert len(pages) == 3  # 231 messages, 100 a page


def test_work_is_capped_and_the_cap_is_reported(discord):
    forum = discord.add_forum("help")
    alice = member(discord, 400)
    since = discord.clock()
    for n in range(5):
        thread = discord.start_post(forum, alice, f"t{n}", "x")
        for _ in range(3):
            discord.post_message(thread, alice, "y")
    adapter = community(discord, earn_max_messages=7)
    assert len(list(adapter.contributions([forum], at(since)))) == 7
    assert adapter.contributions_complete is False
    few_threads = community(discord, earn_max_threads=2)
    assert len(list(few_threads.contributions([forum], at(since)))) == 8
    assert few_threads.contributions_complete is False
    everything = community(discord)
    assert len(list(everything.contributions([forum], at(since)))) == 20
    assert everything.contributions_complete is True


def test_the_request_budget_ends_the_walk_and_keeps_what_was_read(discord):
    forum = discord.add_forum("help")
    alice, bob = member(discord, 400), member(discord, 300)
    since = discord.clock()
    threads = [discord.start_post(forum, alice, f"t{n}", "x") for n in range(6)]
    for thread in threads:
        discord.react(thread, thread, bob, "🔥")
    discord.reset_log()
    adapter = community(discord, earn_max_requests=5)
    posts = list(adapter.contributions([forum], at(since)))
    assert len(discord.requests) == 5 and adapter.contributions_complete is False
    assert 1 <= len(posts) < 6 and all(p.likers for p in posts)


def test_author_names_are_bounded_and_stripped(discord):
    forum = discord.add_forum("help")
    since = discord.clock()
    author = discord.add_user("a\x1b]8;;evil\x07b" + "c" * 50, user_id=discord.snowflake(START - 86400 * 400))
    discord.add_member(author)
    discord.start_post(forum, author, "t", "x")
    [post] = community(discord).contributions([forum], at(since))
    assert "\x1b" not in post.author_username and "\x07" not in post.author_username
    assert len(post.author_username) <= 32


def test_places_that_are_not_channels_read_nothing(discord):
    assert list(community(discord).contributions(["Support", ""], at(START))) == []
    assert discord.requests == []


def test_snowflake_time_round_trips():
    moment = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert snowflake_time(snowflake_at(moment)) == moment
    assert snowflake_time("175928847299117063") == datetime(2016, 4, 30, 11, 18, 25, 796000, tzinfo=UTC)
    assert snowflake_time("not-a-snowflake") is None
