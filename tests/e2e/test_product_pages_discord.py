"""Product cards and announcements on Discord over loopback, through ``cardbridge sync``: the card is the pinned
starter message of the product's thread, edited in place; announcements go to a channel once, and ping nobody."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest

from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer

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
[reviews]
discord = {{ forum_channel = "{forum}", tags = ["Reviews"] }}
[products]
cards = ["discord"]
[products.announce]
discord = {{ channel = "{news}", max_per_day = 3 }}
"""


@pytest.fixture
def discord_world(world):
    world.discord = d = DiscordSandbox(bot_token="bot-token-123")
    world.discord_server = SandboxServer(d.app).start()
    world.forum_id = d.add_forum("reviews", tags=("Reviews",))
    world.news = d.add_text_channel("shop-news")
    world.key = world.shop.add_product("Elden Ring @everyone Key", "199.00")
    world.config_path.write_text(
        CONFIG.format(
            shop=world.shop_server.url,
            guild=d.guild_id,
            api=world.discord_server.url + API,
            forum=world.forum_id,
            news=world.news,
        ),
        encoding="utf-8",
    )
    yield world
    world.discord_server.stop()


def sync(world):
    run = world.cli("sync")
    assert run.code == 0, run.output


def an_hour_passes(world):
    with sqlite3.connect(world.db_path) as db:
        for product, written in db.execute("SELECT product_id, written_at FROM product_cards").fetchall():
            earlier = datetime.fromisoformat(written) - timedelta(hours=1, seconds=1)
            db.execute(
                "UPDATE product_cards SET written_at = ? WHERE product_id = ?", (earlier.isoformat(sep=" "), product)
            )


def test_the_card_is_the_pinned_starter_message_edited_in_place_and_a_restock_is_announced_once(discord_world):
    world, d = discord_world, discord_world.discord
    sync(world)
    [thread] = d.threads_of(world.forum_id)
    starter = d.messages[thread["id"]]  # a forum post's starter message has the thread's id
    assert starter["pinned"] and "Price: 199.00" in starter["content"] and "✅ in stock" in starter["content"]
    assert starter["edited_timestamp"] is None

    world.shop.set_stock(world.key, 0)
    an_hour_passes(world)
    sync(world)
    assert len(d.threads_of(world.forum_id)) == 1
    starter = d.messages[thread["id"]]
    assert "❌ sold out" in starter["content"] and starter["edited_timestamp"] is not None
    assert [m for m in d.messages.values() if m["channel_id"] == thread["id"]] == [starter]  # no new message

    world.shop.set_stock(world.key, 2)
    sync(world)
    sync(world)
    news = [m for m in d.messages.values() if m["channel_id"] == world.news]
    assert len(news) == 1 and "back in stock" in news[0]["content"]
    assert d.pings == []  # "@everyone" in the product's name pinged nobody
