"""Points back to the shop on Discord, end to end over loopback: a buyer's points become a coupon with ``/redeem``.

The daemon (``cardbridge run``) serves the interactions endpoint; the Discord sandbox sends real-shaped, signed
interactions to it and keeps what the member sees; the WooCommerce sandbox makes the coupon and takes it at checkout.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from adapters.communities.discord_contributions import snowflake_at
from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer
from tests.e2e.conftest import COUPON_KEY
from tests.e2e.test_daemon import free_port, start, wait_for

SECRET = "r" * 40
CODE = re.compile(r"CB-[A-Z2-7]{12}")


@pytest.fixture
def redeem_world(world):
    world.discord = DiscordSandbox(bot_token="bot-token-123")
    world.discord_server = SandboxServer(world.discord.app).start()
    world.port = free_port()
    world.base = f"http://127.0.0.1:{world.port}"
    world.processes = []
    d = world.discord
    world.write_config(
        extra=f"""
[communities.discord]
kind = "discord"
bot_token = "bot-token-123"
guild_id = "{d.guild_id}"
api_base = "{world.discord_server.url + API}"
application_id = "{d.state.client_id}"
public_key = "{d.public_key}"
[points]
per_order = 600
[redeem]
secret = "{SECRET}"
options = [{{ points = 500, coupon = {{ amount = "5.00", type = "fixed_cart" }} }}]
communities = ["discord"]
[schedule]
sync_every = 3600
reconcile_every = 3600
retry_every = 3600
[server]
listen = "127.0.0.1:{world.port}"
"""
    )
    world.add_coupon_key()
    card = world.shop.add_product("Steam 钱包充值卡 $20", "145.00")
    customer = world.shop.add_customer("alice@example.com", username="alice")
    world.shop.add_order(customer, items=[(card, 1)])
    world.member = d.add_member()
    world.customer = customer
    assert world.cli("sync").code == 0
    linked = world.cli("link", "--customer", str(customer), "--discord-user", world.member)
    assert linked.code == 0, linked.output
    yield world
    for process in world.processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    world.discord_server.stop()


def _use(world, code: str, email: str) -> httpx.Response:
    """A buyer checks out with the code (WooCommerce REST ``POST /orders`` with ``coupon_lines``)."""
    return httpx.post(
        world.shop_server.url + "/wp-json/wc/v3/orders",
        auth=COUPON_KEY,
        json={"status": "processing", "billing": {"email": email}, "coupon_lines": [{"code": code}]},
    )


def test_a_member_redeems_with_slash_commands_and_the_shop_takes_the_code_once_for_them_only(redeem_world):
    world = redeem_world
    d = world.discord
    start(world)
    url = world.base + "/interactions/discord"
    assert d.verify_endpoint(url), "Discord would refuse to save the endpoint"
    assert {c["name"] for c in d.commands()} == {"points", "redeem"}

    status, answer = d.send_interaction(url, "redeem", world.member, {"points": 500})
    assert status == 200 and answer["type"] == 5 and answer["data"]["flags"] == 64
    token = d.interactions_sent()[-1]["payload"]["token"]
    assert wait_for(lambda: (d.reply_of(token) or {}).get("content", "").count("CB-") == 1, 20)
    edits = d.reply_edits(token)
    assert edits and all(e["allowed_mentions"] == {"parse": []} for e in edits)
    code = CODE.search(d.reply_of(token)["content"]).group(0)
    assert "100" in d.reply_of(token)["content"]  # points left

    assert _use(world, code, "mallory@example.com").status_code == 400  # not the member's email
    assert _use(world, code, "alice@example.com").status_code == 201
    assert _use(world, code, "alice@example.com").status_code == 400  # once
    assert len([c for c in world.shop.all_coupons() if c["code"] == code.lower()]) == 1

    # A second /redeem is refused at once: the balance never goes below zero.
    status, answer = d.send_interaction(url, "redeem", world.member, {"points": 500})
    assert (status, answer["type"]) == (200, 4)
    assert "500" in answer["data"]["content"] and "100" in answer["data"]["content"]
    assert answer["data"]["allowed_mentions"] == {"parse": []}

    # /points shows the balance and the code again, privately.
    status, answer = d.send_interaction(url, "points", world.member)
    assert status == 200 and answer["data"]["flags"] == 64
    assert "100" in answer["data"]["content"] and code in answer["data"]["content"]

    metrics = httpx.get(world.base + "/metrics").text
    assert 'cardbridge_points_redemptions{status="issued"} 1.0' in metrics
    assert 'cardbridge_points{kind="redeemed"} 500.0' in metrics
    page = httpx.get(world.base + "/").text
    assert "<h2>Redemptions</h2>" in page and "<td>issued</td><td>1</td>" in page
    assert code not in metrics + page

    listed = world.cli("redemptions", "--json").json()
    assert [r["status"] for r in listed["redemptions"]] == ["refused", "issued"]
    assert listed["counts"]["points_redeemed"] == 500
    assert code not in world.cli("redemptions").stdout
    assert len(world.shop.all_coupons()) == 1


def test_a_forged_or_tampered_interaction_is_401_and_redeems_nothing(redeem_world):
    world = redeem_world
    d = world.discord
    start(world)
    url = world.base + "/interactions/discord"
    assert d.send_interaction(url, "redeem", world.member, {"points": 500}, sign=False)[0] == 401
    assert d.send_interaction(url, "redeem", world.member, {"points": 500}, tamper=True)[0] == 401
    assert world.cli("redemptions", "--json").json()["redemptions"] == []
    assert world.shop.all_coupons() == []


def test_kill_9_after_the_coupon_is_made_and_before_the_reply_makes_one_coupon_and_the_member_gets_it(redeem_world):
    world = redeem_world
    d = world.discord
    daemon = start(world)
    url = world.base + "/interactions/discord"
    # The shop makes the coupon, then its answer never comes back: the daemon is killed while it waits.
    made = world.shop.knobs.add_fault(r"/coupons$", kind="hang_after", method="POST", seconds=60)
    status, answer = d.send_interaction(url, "redeem", world.member, {"points": 500})
    assert (status, answer["type"]) == (200, 5)
    token = d.interactions_sent()[-1]["payload"]["token"]
    assert wait_for(lambda: made.hits >= 1 and len(world.shop.all_coupons()) == 1, 20)
    daemon.kill()
    daemon.wait(10)
    assert d.reply_of(token)["content"] in ("", None) or "CB-" not in d.reply_of(token)["content"]

    start(world)  # the first pass works the stored redemption: the shop is asked for the code before making one
    assert wait_for(lambda: "CB-" in ((d.reply_of(token) or {}).get("content") or ""), 20)
    code = CODE.search(d.reply_of(token)["content"]).group(0)
    assert [c["code"] for c in world.shop.all_coupons()] == [code.lower()]
    listed = world.cli("redemptions", "--json").json()["redemptions"]
    assert [(r["status"], r["answer"]) for r in listed] == [("issued", "sent")]
    assert listed[0]["points"] == 500


def test_reactions_in_a_forum_channel_earn_points_once_per_member_and_a_deleted_post_gives_them_back(redeem_world):
    world = redeem_world
    d = world.discord
    guides = d.add_forum("guides")
    with world.config_path.open("a", encoding="utf-8") as config:
        config.write(
            f'[earn]\ndiscord = {{ channels = ["{guides}"], per_reaction = 100, min_likes = 3, daily_cap = 1000, per_post_cap = 1000 }}\n'
        )
    old = int(snowflake_at(datetime(2024, 1, 5, tzinfo=UTC)))
    likers = [d.add_member(str(old + n)) for n in range(1, 4)]
    newcomer = d.add_member()  # an account made today: its reaction does not count
    post = d.start_post(guides, world.member, "How I top up my Steam wallet", "Three steps, and it arrives at once.")
    for liker in likers:
        d.react(post, post, liker, "👍")
    d.react(post, post, likers[0], "🔥")  # a second emoji from the same member counts once
    d.react(post, post, newcomer, "👍")
    d.react(post, post, world.member, "👍")  # the author's own reaction does not count
    assert world.cli("sync").code == 0
    shown = world.cli("points", "show", str(world.customer), "--json").json()
    assert shown["total"] == 600 + 300
    d.delete_message(post, post)
    assert world.cli("sync").code == 0
    assert world.cli("points", "show", str(world.customer), "--json").json()["total"] == 600
