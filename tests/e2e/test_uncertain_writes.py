"""A write the server applied but whose answer was lost (a gateway's 502 after the application committed, or an
answer that never came before the timeout) is never sent again blindly: neither Discord nor Discourse takes
idempotency keys, so the action is verified on the next pass (its message or thread looked for) and sent only if it
is not there. Over loopback, with the sandboxes' fault injection."""

from __future__ import annotations

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
timeout_seconds = 1
[reviews]
discord = {{ forum_channel = "{forum}", thread_per = "{thread_per}" }}
[delivery]
max_attempts = 3
retry_base_seconds = 0
"""


@pytest.fixture
def review_world(world):
    def setup(thread_per: str) -> None:
        world.discord = d = DiscordSandbox(bot_token="bot-token-123")
        world.discord_server = SandboxServer(d.app).start()
        world.forum_id = d.add_forum("reviews")
        world.product = world.shop.add_product("Elden Ring Steam Key", "199.00")
        world.config_path.write_text(
            CONFIG.format(
                shop=world.shop_server.url,
                guild=d.guild_id,
                api=world.discord_server.url + API,
                forum=world.forum_id,
                thread_per=thread_per,
            ),
            encoding="utf-8",
        )

    world.setup = setup
    yield world
    if hasattr(world, "discord_server"):
        world.discord_server.stop()


def posted(d, review):
    return [m for m in d.messages.values() if m["content"].endswith(f"cardbridge review {review}")]


@pytest.mark.parametrize(
    ("thread_per", "fault"),
    [
        ("product", "status_after"),  # the review's message POST: applied, answered 502
        ("review", "status_after"),  # the review's thread POST: applied, answered 502
        ("product", "hang_after"),  # applied, the answer held past the 1 s timeout
    ],
)
def test_a_review_post_applied_without_an_answer_is_posted_once(review_world, thread_per, fault):
    world = review_world
    world.setup(thread_per)
    d = world.discord
    review = world.shop.add_review(world.product, "Di", "di@example.com", 5, "Fast key")
    path = r"^/api/v10/channels/\d+/messages$" if thread_per == "product" else rf"/channels/{world.forum_id}/threads$"
    if fault == "status_after":
        d.knobs.add_fault(path, kind="status_after", method="POST", status=502, times=-1)
    else:
        d.knobs.add_fault(path, kind="hang_after", method="POST", seconds=3, times=-1)
    first = world.cli("sync")
    assert first.code == 1, first.output  # the pass says Discord failed
    assert len(posted(d, review)) == 1  # Discord has it once: the client did not send it again
    status = world.cli("status", "--json").json()["outbox"]
    assert status["dead"] == 0  # not parked: it is verified next time
    d.knobs.clear_faults()
    second = world.cli("sync")
    assert second.code == 0, second.output
    assert len(posted(d, review)) == 1  # found by its marker or thread name, not posted again
    assert len(d.threads_of(world.forum_id)) == 1
    d.reset_log()
    assert world.cli("sync").code == 0
    assert d.writes() == []  # recorded as posted


POINTS = """
[points]
per_order = 10
forum = { mode = "gamification" }
"""


@pytest.mark.parametrize("path", [r"score_events", r"^/user_badges\.json$"])
def test_a_forum_write_applied_without_an_answer_is_applied_once(world, path):
    """A score event or a badge grant the forum applied but answered 502 for: verified, never sent again."""
    world.write_config(extra=POINTS)
    card = world.shop.add_product("王者荣耀 点券 60元", "60.00")
    world.shop.add_order(email="amy@example.com", items=[(card, 1)], status="completed")
    world.forum.add_user("amy", "amy@example.com")
    world.forum.knobs.add_fault(path, kind="status_after", method="POST", status=502, times=-1)
    first = world.cli("sync")
    assert first.code == 1, first.output
    world.forum.knobs.clear_faults()
    assert world.cli("sync").code == 0
    amy = world.forum.user("amy")["id"]
    assert [e["points"] for e in world.forum.score_events(amy)] == [10]
    assert world.forum.badges_of("amy") == ["Verified Buyer"]
    assert world.forum.count("POST", path) == 1  # once, ever
    status = world.cli("status", "--json").json()["outbox"]
    assert status["dead"] == 0 and status["failed"] == 0 and status["pending"] == 0 and status["sending"] == 0
