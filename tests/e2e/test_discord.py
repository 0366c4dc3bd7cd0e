"""Discord roles over loopback HTTP: linked buyers get the role once, refunds remove it, a role backed by two rules
survives one refund, buckets are respected, 401 stops at once, 50013 is reported once, members who join later get it,
and relinking strips the old account."""

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
bot_token = "${{DISCORD_BOT_TOKEN}}"
guild_id = "{guild}"
api_base = "{api}"
[[rules]]
name = "verified-buyer"
products = "*"
grant.discord = {{ role = "{buyer}" }}
[[rules]]
name = "steam"
products = [{steam}]
grant.discord = {{ role = "{vip}" }}
[[rules]]
name = "monthly"
products = [{monthly}]
grant.discord = {{ role = "{vip}" }}
[[rules]]
name = "staff-only"
products = [{staff_product}]
grant.discord = {{ role = "{above}" }}
[delivery]
max_attempts = 3
retry_base_seconds = 0
"""


@pytest.fixture
def discord_world(world):
    world.discord = DiscordSandbox(bot_token="bot-token-123", route_limit=3, route_window=1.0)
    world.discord_server = SandboxServer(world.discord.app).start()
    d = world.discord
    world.buyer_role, world.vip_role = d.add_role("Verified Buyer", 2), d.add_role("VIP", 3)
    world.above_role = d.add_role("Staff", 50)  # above the bot's role (10)
    world.steam = world.shop.add_product("Elden Ring Steam Key", "199.00")
    world.monthly = world.shop.add_product("网易云音乐 黑胶VIP 月卡", "15.00")
    world.staff = world.shop.add_product("Staff pass", "1.00")
    world.config_path.write_text(
        CONFIG.format(
            shop=world.shop_server.url,
            guild=d.guild_id,
            api=world.discord_server.url + API,
            buyer=world.buyer_role,
            vip=world.vip_role,
            above=world.above_role,
            steam=world.steam,
            monthly=world.monthly,
            staff_product=world.staff,
        ),
        encoding="utf-8",
    )
    world.env_extra = {"DISCORD_BOT_TOKEN": "bot-token-123"}
    yield world
    world.discord_server.stop()


def role_puts(discord, user):
    return [
        r for r in discord.requests if r["method"] == "PUT" and f"/members/{user}/" in r["path"] and r["status"] == 204
    ]


def test_linked_buyers_get_roles_once_refund_and_shared_roles(discord_world):
    world, d = discord_world, discord_world.discord
    env = world.env_extra
    ann = world.shop.add_customer("ann@example.com", "Ann", "Wu")
    steam_order = world.shop.add_order(customer_id=ann, items=[(world.steam, 1)], status="completed")
    world.shop.add_order(customer_id=ann, items=[(world.monthly, 1)], status="completed")
    assert world.cli("sync", **env).code == 0  # unlinked: nothing to do on Discord yet
    ann_discord = d.add_member()
    run = world.cli("link", "--customer", str(ann), "--discord-user", ann_discord, **env)
    assert run.code == 0, run.output
    assert d.roles_of(ann_discord) == {world.buyer_role, world.vip_role}
    assert all(r["audit_reason"] and r["user_agent"].startswith("DiscordBot (") for r in role_puts(d, ann_discord))
    assert world.cli("sync", **env).code == 0
    assert len(role_puts(d, ann_discord)) == 2  # once each
    world.shop.set_status(steam_order, "refunded")
    assert world.cli("sync", **env).code == 0
    assert d.roles_of(ann_discord) == {world.buyer_role, world.vip_role}  # VIP still backed by the monthly card


def test_member_not_in_guild_waits_and_relink_strips_the_old_account(discord_world):
    world, d = discord_world, discord_world.discord
    env = world.env_extra
    bo = world.shop.add_customer("bo@example.com", "Bo", "Li")
    world.shop.add_order(customer_id=bo, items=[(world.monthly, 1)], status="processing")
    assert world.cli("sync", **env).code == 0
    ghost = "700000000000000077"  # has not joined the guild
    run = world.cli("link", "--customer", f"c:{bo}", "--discord-user", ghost, **env)
    assert run.code == 0, run.output
    status = world.cli("status", "--json", **env).json()
    assert status["outbox"]["pending"] == 2 and status["outbox"]["dead"] == 0
    d.add_member(ghost)  # joins
    assert world.cli("sync", **env).code == 0
    assert d.roles_of(ghost) == {world.buyer_role, world.vip_role}
    new_account = d.add_member()
    assert world.cli("link", "--customer", f"c:{bo}", "--discord-user", new_account, **env).code == 0
    assert d.roles_of(new_account) == {world.buyer_role, world.vip_role}
    assert d.roles_of(ghost) == set()  # the old account lost the managed roles


def test_tight_bucket_is_waited_for_not_bounced_off(discord_world):
    world, d = discord_world, discord_world.discord
    env = world.env_extra
    members = []
    for i in range(5):
        customer = world.shop.add_customer(f"m{i}@example.com", "M", str(i))
        world.shop.add_order(customer_id=customer, items=[(world.steam, 1)], status="completed")
        members.append((customer, d.add_member()))
    assert world.cli("sync", **env).code == 0
    for customer, member in members:
        assert world.cli("link", "--customer", str(customer), "--discord-user", member, **env).code == 0
    assert all(d.roles_of(m) == {world.buyer_role, world.vip_role} for _, m in members)
    assert [r for r in d.requests if r["status"] == 429] == []  # bucket of 3 per second: waited, never 429
    assert world.cli("status", "--json", **env).json()["outbox"]["failed"] == 0


def test_401_stops_at_once_and_50013_is_parked_once(discord_world):
    world, d = discord_world, discord_world.discord
    cy = world.shop.add_customer("cy@example.com", "Cy", "Ho")
    world.shop.add_order(customer_id=cy, items=[(world.staff, 1)], status="completed")
    member = d.add_member()
    world.cli("sync", **world.env_extra)
    bad = world.cli("link", "--customer", str(cy), "--discord-user", member, DISCORD_BOT_TOKEN="wrong")
    assert bad.code == 1 and "bot token was refused (401)" in bad.stdout
    assert d.invalid_requests == 1  # one refused request, not one per action
    good = world.cli("sync", **world.env_extra)
    assert good.code == 1
    assert "above the bot's highest role" in good.stdout
    status = world.cli("status", "--json", **world.env_extra).json()
    assert status["outbox"]["dead"] == 1
    assert d.roles_of(member) == {world.buyer_role}
    world.cli("sync", **world.env_extra)
    assert len([r for r in d.requests if f"/roles/{world.above_role}" in r["path"]]) == 1  # not retried in a loop


def test_reconcile_finds_roles_removed_by_hand_and_members_who_left(discord_world):
    world, d = discord_world, discord_world.discord
    env = world.env_extra
    ed, fay = (
        world.shop.add_customer("ed@example.com", "Ed", "Ma"),
        world.shop.add_customer("fay@example.com", "Fay", "Xu"),
    )
    for customer in (ed, fay):
        world.shop.add_order(customer_id=customer, items=[(world.steam, 1)], status="completed")
    assert world.cli("sync", **env).code == 0
    ed_member, fay_member = d.add_member(), d.add_member()
    assert world.cli("link", "--customer", str(ed), "--discord-user", ed_member, **env).code == 0
    assert world.cli("link", "--customer", str(fay), "--discord-user", fay_member, **env).code == 0
    with d._lock:
        d.members[ed_member].discard(world.vip_role)  # a moderator took VIP away from Ed
    d.remove_member(fay_member)  # Fay left the server
    d.reset_log()
    run = world.cli("reconcile", **env)
    assert run.code == 0, run.output
    assert f"role '{world.vip_role}' was removed from {ed_member} by hand" in run.stdout
    assert f"{fay_member} left" in run.stdout
    reads = [r for r in d.requests if r["method"] == "GET"]
    assert len(reads) == 2  # one read per member, not one per member and role
    assert d.roles_of(ed_member) == {world.buyer_role}  # the moderator's removal stands (respect_manual_removal)
    d.add_member(fay_member)  # Fay comes back
    assert world.cli("sync", **env).code == 0
    assert d.roles_of(fay_member) == {world.buyer_role, world.vip_role}
