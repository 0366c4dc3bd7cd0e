"""Discord review threads and points tiers over loopback HTTP, through the CLI: reviews land in the forum channel
escaped and without pings, edits reach archived threads, deletions delete, a moderator's deletion is a conflict, and
tier roles follow the points total both ways."""

from __future__ import annotations

import re

import pytest

from adapters.communities.discord_constants import SUPPRESS_EMBEDS
from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer
from tests.mappings.test_discord_posts import clickable

CONFIG = """
[state]
url = "sqlite:///state.db"
[shop]
kind = "woocommerce"
base_url = "{shop}"
consumer_key = "${{WC_CONSUMER_KEY}}"
consumer_secret = "${{WC_CONSUMER_SECRET}}"
[communities.discord]
kind = "discord"
bot_token = "bot-token-123"
guild_id = "{guild}"
api_base = "{api}"
[[rules]]
name = "verified-buyer"
products = "*"
grant.discord = {{ role = "{buyer}" }}
[reviews]
discord = {{ forum_channel = "{forum}", thread_per = "{thread_per}", tags = ["Reviews"], verified_tag = "{verified_tag}" }}
[points]
per_order = 60
per_review = 50
discord = {{ tiers = {{ "100" = "{silver}", "150" = "{gold}" }} }}
[delivery]
max_attempts = 2
retry_base_seconds = 0
"""


@pytest.fixture
def forum_world(world):
    def setup(thread_per: str = "product", verified_tag: str = "Verified purchase") -> None:
        world.discord = d = DiscordSandbox(bot_token="bot-token-123")
        world.discord_server = SandboxServer(d.app).start()
        world.buyer_role, world.silver, world.gold = (
            d.add_role("Buyer", 2),
            d.add_role("Silver", 3),
            d.add_role("Gold", 4),
        )
        world.forum_id = d.add_forum("reviews", tags=("Reviews", "Verified purchase"))
        world.product = world.shop.add_product("Elden Ring Steam Key", "199.00")
        world.config_path.write_text(
            CONFIG.format(
                shop=world.shop_server.url,
                guild=d.guild_id,
                api=world.discord_server.url + API,
                buyer=world.buyer_role,
                forum=world.forum_id,
                thread_per=thread_per,
                verified_tag=verified_tag if thread_per == "review" else "",
                silver=world.silver,
                gold=world.gold,
            ),
            encoding="utf-8",
        )

    world.setup = setup
    yield world
    if hasattr(world, "discord_server"):
        world.discord_server.stop()


HOSTILE = (
    "@everyone FREE KEYS <@123456789012345678> <@&800000000000000001> **bold** ||spoiler|| # heading "
    "[x](https://evil.example) :) join discord.gg/freekeys or discord.com/invite/abc, see keys.example/cheap 例子.cn"
)


def messages(d, thread_id):
    return [m for m in d.messages.values() if m["channel_id"] == thread_id]


def test_review_thread_per_product_escaped_no_pings_edit_archived_delete(forum_world):
    world = forum_world
    world.setup("product")
    d = world.discord
    ann = world.shop.add_customer("ann@example.com", "Ann", "Wu")
    world.shop.add_order(customer_id=ann, items=[(world.product, 1)], status="completed")
    review = world.shop.add_review(world.product, "Ann", "ann@example.com", 5, HOSTILE)
    other = world.shop.add_review(world.product, "Guest", "guest@example.com", 2, "x" * 5000)
    run = world.cli("sync")
    assert run.code == 0, run.output
    [thread] = d.threads_of(world.forum_id)
    assert thread["name"] == f"Reviews: Elden Ring Steam Key · #p{world.product}"  # the marker finds it after a crash
    assert [t["name"] for t in d.channels[world.forum_id]["available_tags"] if t["id"] in thread["applied_tags"]] == [
        "Reviews"
    ]
    posted = messages(d, thread["id"])
    assert len(posted) == 3  # the product intro and two reviews, in one thread
    assert d.pings == []  # @everyone, a user mention and a role mention: nobody was pinged
    sends = [r for r in d.requests if r["method"] == "POST"]
    assert sends and all(r["body"].get("message", r["body"])["allowed_mentions"] == {"parse": []} for r in sends)
    text = next(m["content"] for m in posted if f"cardbridge review {review}" in m["content"])
    assert "@\u200beveryone" in text and "\\<@123456789012345678\\>" in text and "\\*\\*bold\\*\\*" in text
    assert "\\|\\|spoiler\\|\\|" in text and "\\[x\\]\\(`https:\u200b//evil.\u200bexample`" in text
    # No link, no invite: URLs, invites and bare domains are code spans broken by zero-width spaces, embeds suppressed.
    reviews = [m for m in posted if "cardbridge review" in m["content"]]  # the intro links the shop's own page
    assert len(reviews) == 2 and all(clickable(m["content"]) == [] for m in reviews)
    assert "`discord.\u200bgg/freekeys`" in text and "`例子.\u200bcn`" in text
    assert all(m["flags"] == SUPPRESS_EMBEDS for m in posted)
    assert "✅ Verified purchase" in text
    long_text = next(m["content"] for m in posted if f"cardbridge review {other}" in m["content"])
    assert len(long_text) <= 2000 and "…" in long_text and "no paid order" in long_text

    # Nothing changed: no write at all.
    d.reset_log()
    assert world.cli("sync").code == 0
    assert d.writes() == []

    # An edit in the shop reaches the message even though Discord archived the thread meanwhile.
    d.archive(thread["id"])
    world.shop.edit_review(review, text="Changed my mind: still great")
    run = world.cli("sync")
    assert run.code == 0, run.output
    edited = next(m for m in messages(d, thread["id"]) if f"cardbridge review {review}" in m["content"])
    assert "Changed my mind" in edited["content"] and edited["edited_timestamp"]
    assert d.channels[thread["id"]]["thread_metadata"]["archived"] is True  # left as it was found

    # A review deleted in the shop is deleted on Discord.
    world.shop.delete_review(other)
    assert world.cli("sync").code == 0
    assert not any(f"cardbridge review {other}" in m["content"] for m in messages(d, thread["id"]))

    # A moderator deleting the connector's message is a conflict, not a re-post.
    del d.messages[edited["id"]]
    world.shop.edit_review(review, text="Edited again")
    run = world.cli("sync")
    assert "conflict" in run.output.lower()
    listed = world.cli("conflicts")
    assert "deleted on Discord" in listed.stdout
    assert not any(f"cardbridge review {review}" in m["content"] for m in messages(d, thread["id"]))

    # The admin puts the shop's review back: it is posted again, in the same thread.
    [line] = [line for line in listed.stdout.splitlines() if "deleted on Discord" in line]
    conflict_id = re.search(r"│\s*(\d+)", line).group(1)
    assert world.cli("conflicts", "resolve", conflict_id, "--keep", "shop").code == 0
    assert world.cli("sync").code == 0
    [back] = [m for m in messages(d, thread["id"]) if f"cardbridge review {review}" in m["content"]]
    assert "Edited again" in back["content"] and len(d.threads_of(world.forum_id)) == 1


def test_thread_per_review_tags_verified_and_tier_roles_follow_points(forum_world):
    world = forum_world
    world.setup("review")
    d = world.discord
    bo = world.shop.add_customer("bo@example.com", "Bo", "Li")
    order = world.shop.add_order(customer_id=bo, items=[(world.product, 1)], status="completed")
    member = d.add_member()
    assert world.cli("sync").code == 0
    run = world.cli("link", "--customer", str(bo), "--discord-user", member)
    assert run.code == 0, run.output
    assert d.roles_of(member) == {world.buyer_role}  # 60 points: below the first tier
    review = world.shop.add_review(world.product, "Bo", "bo@example.com", 4, "Works, key arrived in a minute")
    assert world.cli("sync").code == 0
    [thread] = d.threads_of(world.forum_id)
    assert thread["name"].endswith(f"· #{review}") and thread["name"].startswith("★★★★☆")
    tag_names = {t["id"]: t["name"] for t in d.channels[world.forum_id]["available_tags"]}
    assert sorted(tag_names[t] for t in thread["applied_tags"]) == ["Reviews", "Verified purchase"]
    starter = d.messages[thread["id"]]  # the starter message has the thread's id
    assert f"<@{member}>" in starter["content"] and d.pings == []
    assert d.roles_of(member) == {world.buyer_role, world.silver}  # 60 + 50 = 110 points: silver
    world.shop.add_order(customer_id=bo, items=[(world.product, 1)], status="completed")
    assert world.cli("sync").code == 0
    assert d.roles_of(member) == {world.buyer_role, world.gold}  # 170: gold replaces silver
    world.shop.set_status(order, "refunded")
    assert world.cli("sync").code == 0
    assert d.roles_of(member) == {world.buyer_role, world.silver}  # 110 after the reversal: back to silver
    world.shop.edit_review(review, status="hold")  # unapproved in the shop
    assert world.cli("sync").code == 0
    assert d.threads_of(world.forum_id) == []  # the review's thread is deleted
    assert d.roles_of(member) == {world.buyer_role}  # 60: below every tier


def test_unknown_tag_is_parked_with_a_clear_reason(forum_world):
    world = forum_world
    world.setup("product")
    text = world.config_path.read_text().replace('tags = ["Reviews"]', 'tags = ["Reveiws"]')
    world.config_path.write_text(text)
    world.shop.add_review(world.product, "Cy", "cy@example.com", 5, "Great")
    run = world.cli("sync")
    assert run.code == 1
    assert "'Reveiws' is not one of the forum's tags" in run.output
    assert world.cli("status", "--json").json()["outbox"]["dead"] == 1
    assert world.discord.threads_of(world.forum_id) == []


@pytest.mark.parametrize("thread_per", ["product", "review"])
def test_a_crash_after_discord_posted_the_review_does_not_post_it_twice(forum_world, thread_per):
    """Kill the CLI while Discord holds the answer to the review's POST (the message exists, the connector never
    heard): the next pass finds it by its marker or thread name and posts nothing again."""
    import signal
    import sqlite3

    world = forum_world
    world.setup(thread_per)
    d = world.discord
    review = world.shop.add_review(world.product, "Di", "di@example.com", 5, "Fast key")
    path = r"/channels/\d+/messages$" if thread_per == "product" else rf"/channels/{world.forum_id}/threads$"
    # In product mode the thread (and its intro) goes first, undisturbed; the review's message then hangs.
    d.knobs.add_fault(path, kind="hang_after", method="POST", seconds=60)
    process = world.spawn("sync")
    assert d.knobs.hung.wait(30), "the review's POST never reached Discord"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    d.knobs.clear_faults()
    with sqlite3.connect(world.db_path) as db:
        assert db.execute("select count(*) from outbox where status = 'sending'").fetchone()[0] == 1
    run = world.cli("sync")
    assert run.code == 0, run.output
    posted = [m for m in d.messages.values() if m["content"].endswith(f"cardbridge review {review}")]
    assert len(posted) == 1
    assert len(d.threads_of(world.forum_id)) == 1
    d.reset_log()
    assert world.cli("sync").code == 0
    assert d.writes() == []  # recorded as posted: nothing to do


@pytest.mark.parametrize("archived", [False, True], ids=["active", "archived"])
def test_a_crash_after_discord_created_the_product_thread_leaves_one_thread(forum_world, archived):
    """Kill the CLI while Discord holds the answer to the product thread's POST (the thread exists, its id was never
    stored): the next pass finds the thread by its name marker, among the guild's active threads or, when Discord
    archived it meanwhile, the forum's archived ones, and posts every review in it once."""
    import signal

    world = forum_world
    world.setup("product")
    d = world.discord
    reviews = [
        world.shop.add_review(world.product, "Di", "di@example.com", 5, "Fast key"),
        world.shop.add_review(world.product, "Ed", "ed@example.com", 4, "Works"),
    ]
    d.knobs.add_fault(rf"/channels/{world.forum_id}/threads$", kind="hang_after", method="POST", seconds=60)
    process = world.spawn("sync")
    assert d.knobs.hung.wait(30), "the thread's POST never reached Discord"
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    d.knobs.clear_faults()
    [orphan] = d.threads_of(world.forum_id)  # Discord made it; CardBridge never heard its id
    assert orphan["name"] == f"Reviews: Elden Ring Steam Key · #p{world.product}"
    if archived:
        d.archive(orphan["id"])  # the process stayed down longer than the thread's auto-archive time
    run = world.cli("sync")
    assert run.code == 0, run.output
    [thread] = d.threads_of(world.forum_id)
    assert thread["id"] == orphan["id"]
    posted = [m["content"] for m in messages(d, thread["id"])]
    assert len(posted) == 3  # the intro and each review, once
    for review in reviews:
        assert sum(content.endswith(f"cardbridge review {review}") for content in posted) == 1
    d.reset_log()
    assert world.cli("sync").code == 0
    assert d.writes() == []


def test_a_pass_reads_the_forums_threads_once_not_once_per_product(forum_world):
    """Finding a thread again costs reads (a lost or second state store may have opened it): one read of the bot's
    threads serves every product of the pass."""
    world = forum_world
    world.setup("product")
    d = world.discord
    world.shop.add_review(world.product, "Fy", "fy@example.com", 5, "Good")
    other = world.shop.add_product("Steam Wallet 10", "10.00")
    world.shop.add_review(other, "Fy", "fy@example.com", 4, "Fine")
    assert world.cli("sync").code == 0
    assert len(d.threads_of(world.forum_id)) == 2
    assert len([r for r in d.requests if "/threads/active" in r["path"]]) == 1
    assert len([r for r in d.requests if "/threads/archived" in r["path"]]) == 1
