"""``cardbridge check`` for a Discord guild, against the sandbox Discord over loopback: a bot with its role on top and
Manage Roles passes every check; a bad token, a bot not in the guild, a role above the bot's, a channel overwrite that
denies the bot and a missing OAuth2 redirect each fail at their line, naming the key or setting to change, never a
secret, and nothing is written."""

from __future__ import annotations

import socket

import pytest

from adapters.checks import Check, CheckContext, SelfCheck
from adapters.communities.discord import DiscordCommunity, DiscordSettings
from adapters.registry import open_community
from connector.core.config import Grant, PointsTarget, ReviewTarget, Rule, parse_config
from connector.core.settings import validate_table
from sandbox.discord import DiscordSandbox
from sandbox.discord.permissions import MANAGE_ROLES, MANAGE_THREADS, SEND_MESSAGES_IN_THREADS, VIEW_CHANNEL
from sandbox.server import SandboxServer

TOKEN, SECRET = "bot-token-s3cret", "client-s3cret"
PUBLIC = "https://shop-bridge.example.com"
REDIRECT = f"{PUBLIC}/link/callback"


@pytest.fixture
def discord():
    sandbox = DiscordSandbox(bot_token=TOKEN, client_secret=SECRET)
    sandbox.verified = sandbox.add_role("Verified Buyer", position=2)  # type: ignore[attr-defined]
    sandbox.vip = sandbox.add_role("VIP", position=3)  # type: ignore[attr-defined]
    sandbox.forum = sandbox.add_forum("reviews")  # type: ignore[attr-defined]
    sandbox.redirect_uris.add(REDIRECT)
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url  # type: ignore[attr-defined]
        yield sandbox


def run(sandbox, token: str = TOKEN, context: CheckContext | None = None, tiers: bool = True) -> list[Check]:  # type: ignore[no-untyped-def]
    table = {
        "kind": "discord",
        "bot_token": token,
        "guild_id": sandbox.guild_id,
        "api_base": f"{sandbox.url}/api/v10",
        "application_id": sandbox.client_id,
        "client_secret": SECRET,
        "max_retry_seconds": 2,
    }
    settings = validate_table(DiscordSettings, table, "communities.chat")
    rules = [Rule(name="buyers", grant={"chat": Grant(role=sandbox.verified)})]
    if context is None:
        context = CheckContext(
            review=ReviewTarget(forum_channel=sandbox.forum),
            points=PointsTarget(tiers={"100": sandbox.vip}) if tiers else None,
            link_redirect_uri=REDIRECT,
        )
    adapter = DiscordCommunity("chat", settings, rules=rules)
    assert isinstance(adapter, SelfCheck)
    try:
        checks = list(adapter.check(context))
    finally:
        adapter.close()
    for line in checks:
        assert "s3cret" not in line.what + line.detail + line.fix
    assert [r for r in sandbox.requests if r["method"] != "GET"] == []
    return checks


def by_what(checks: list[Check]) -> dict[str, Check]:
    return {c.what: c for c in checks}


def test_a_well_set_up_bot_passes_everything(discord):
    checks = run(discord)
    assert [(c.what, c.ok) for c in checks] == [
        ("bot token accepted", True),
        ("bot is in the guild", True),
        ("bot may manage roles", True),
        ("role 'Verified Buyer'", True),
        ("role 'VIP'", True),
        ("review forum #reviews", True),
        ("OAuth2 redirect", True),
        ("OAuth2 client secret", True),
    ]
    assert "not tested" in checks[-1].detail
    assert "rule 'buyers'" in by_what(checks)["role 'Verified Buyer'"].detail
    assert "tier 100" in by_what(checks)["role 'VIP'"].detail


def test_only_what_the_config_uses_is_checked(discord):
    whats = [c.what for c in run(discord, context=CheckContext())]
    assert whats == ["bot token accepted", "bot is in the guild", "bot may manage roles", "role 'Verified Buyer'"]
    assert not any(r["path"].endswith("/applications/@me") for r in discord.requests)


def test_a_refused_token_stops_at_the_token_and_names_the_key(discord):
    checks = run(discord, token="wrong-s3cret")
    assert [(c.what, c.ok) for c in checks] == [("bot token accepted", False)]
    assert "communities.chat.bot_token" in checks[0].fix
    assert [r["path"] for r in discord.requests] == ["/api/v10/users/@me"]  # a 401 is never retried


def test_a_bot_not_in_the_guild_gets_the_invite_fix(discord):
    discord.bot_in_guild = False
    checks = run(discord)
    assert [(c.what, c.ok) for c in checks] == [("bot token accepted", True), ("bot is in the guild", False)]
    assert "403" in checks[-1].detail and "50001" in checks[-1].detail
    assert f"client_id={discord.client_id}" in checks[-1].fix and "communities.chat.guild_id" in checks[-1].fix


def test_a_role_above_the_bots_role_says_which_role_to_drag(discord):
    discord.roles[discord.vip]["position"] = 11  # above the bot's CardBridge role (10)
    checks = by_what(run(discord))
    assert not checks["role 'VIP'"].ok
    assert checks["role 'VIP'"].fix.startswith("drag the bot's role 'CardBridge' above 'VIP'")
    assert checks["role 'Verified Buyer'"].ok


def test_a_role_that_does_not_exist_and_a_bot_without_manage_roles(discord):
    discord.roles[discord.bot_role]["permissions"] = str(VIEW_CHANNEL)
    del discord.roles[discord.verified]
    checks = run(discord, tiers=False)
    found = by_what(checks)
    assert not found["bot may manage roles"].ok and "Manage Roles" in found["bot may manage roles"].fix
    assert not found[f"role {discord.verified}"].ok and "rule 'buyers'" in found[f"role {discord.verified}"].fix


def test_administrator_is_every_permission(discord):
    discord.roles[discord.bot_role]["permissions"] = str(1 << 3)
    discord.overwrite(discord.forum, discord.guild_id, deny=VIEW_CHANNEL)
    assert all(c.ok for c in run(discord))


@pytest.mark.parametrize(
    ("target", "deny", "missing"),
    [
        ("bot_role", MANAGE_THREADS, "Manage Threads"),
        ("everyone", SEND_MESSAGES_IN_THREADS, "Send Messages in Threads"),
        ("member", MANAGE_THREADS | SEND_MESSAGES_IN_THREADS, "Send Messages in Threads and Posts, Manage Threads"),
    ],
)
def test_a_channel_overwrite_that_denies_the_bot_is_named(discord, target, deny, missing):
    ids = {"bot_role": discord.bot_role, "everyone": discord.guild_id, "member": discord.client_id}
    discord.overwrite(discord.forum, ids[target], deny=deny, member=target == "member")
    forum = by_what(run(discord))["review forum #reviews"]
    assert not forum.ok and missing in forum.detail and "Edit Channel" in forum.fix


def test_an_allow_on_the_bots_role_beats_a_deny_on_everyone(discord):
    discord.overwrite(discord.forum, discord.guild_id, deny=MANAGE_THREADS)
    discord.overwrite(discord.forum, discord.bot_role, allow=MANAGE_THREADS)
    assert by_what(run(discord))["review forum #reviews"].ok


def test_a_forum_the_bot_cannot_see_a_missing_one_and_a_text_channel(discord):
    discord.overwrite(discord.forum, discord.bot_role, deny=VIEW_CHANNEL)
    hidden = [c for c in run(discord) if c.what.startswith("review forum")]
    assert not hidden[0].ok and "403" in hidden[0].detail and "50001" in hidden[0].detail
    missing = run(discord, context=CheckContext(review=ReviewTarget(forum_channel="123")))
    assert not missing[-1].ok and "reviews.communities.chat.forum_channel" in missing[-1].fix
    text = run(discord, context=CheckContext(review=ReviewTarget(forum_channel=discord.add_text_channel())))
    assert not text[-1].ok and "type 0" in text[-1].detail


def test_a_missing_redirect_uri_is_named_with_where_to_add_it(discord):
    discord.redirect_uris.discard(REDIRECT)
    redirect = by_what(run(discord))["OAuth2 redirect"]
    assert not redirect.ok and REDIRECT in redirect.detail and "OAuth2 → Redirects" in redirect.fix


def test_the_bot_may_not_grant_roles_without_manage_roles_even_with_its_role_on_top(discord):
    discord.roles[discord.bot_role]["permissions"] = "0"
    discord.roles[discord.guild_id]["permissions"] = str(MANAGE_ROLES)  # @everyone's permissions count too
    assert by_what(run(discord))["bot may manage roles"].ok


def test_the_context_is_read_from_the_config_as_the_cli_would(discord):
    config = parse_config(
        {
            "shop": {"kind": "woocommerce", "base_url": "https://shop.example.com", "consumer_key": "ck", "consumer_secret": "cs"},
            "communities": {
                "chat": {"kind": "discord", "bot_token": TOKEN, "guild_id": discord.guild_id,
                         "api_base": f"{discord.url}/api/v10", "application_id": discord.client_id,
                         "client_secret": SECRET},
            },
            "rules": [{"name": "buyers", "grant": {"chat": {"role": discord.verified}}}],
            "reviews": {"communities": {"chat": {"forum_channel": discord.forum}}},
            "points": {"per_order": 10, "communities": {"chat": {"tiers": {"100": discord.vip}}}},
            "link": {"community": "chat", "public_url": PUBLIC, "secret": "x" * 32},
        }
    )  # fmt: skip
    context = CheckContext.of("chat", config)
    assert context.link_redirect_uri == REDIRECT and context.review is not None and context.points is not None
    adapter = open_community("chat", config)
    try:
        checks = list(adapter.check(context))  # type: ignore[attr-defined]
    finally:
        adapter.close()
    assert [c.ok for c in checks] == [True] * 8
    assert CheckContext.of("other", config) == CheckContext()


def test_an_api_that_does_not_answer_is_one_line_naming_the_url(discord):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    discord.url = f"http://127.0.0.1:{port}"
    checks = run(discord)
    assert [(c.what, c.ok) for c in checks] == [("Discord answers", False)]
    assert f"127.0.0.1:{port}" in checks[0].detail and "communities.chat.api_base" in checks[0].fix
