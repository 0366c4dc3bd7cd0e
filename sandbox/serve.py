"""``cardbridge sandbox``: run the sandbox shop and forum (and, on request, Discord) as standalone servers, for trying
configs and for benchmarks.

Prints one JSON line with the URLs and credentials once all listen (and, with ``write_config``, writes a config file
for them first, so ``cardbridge check`` and ``cardbridge run`` can be tried at once), then serves until interrupted.
A stats route,
``GET /__sandbox/stats`` on the forum and on Discord, answers request counts (reads, writes, 429s, timestamps) so a
benchmark in another process can measure the connector from the server's side.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from sandbox.discord import API as DISCORD_API
from sandbox.discord import DiscordSandbox
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox
from sandbox.world import bulk_orders, seed_shop


def forum_stats(forum: DiscourseSandbox) -> dict[str, Any]:
    log = list(forum.requests)
    return {
        "requests": len(log),
        "writes": sum(1 for r in log if r["method"] != "GET"),
        "rate_limited": forum.rate_limited_count,
        "times": [r["time"] for r in log if r["status"] != 429],
        "by_route": _by_route(log),
    }


def _by_route(log: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in log:
        path = record["path"]
        route = "/".join(part if not part.isdigit() else ":id" for part in path.split("/"))
        if route.startswith("/u/") or route.startswith("/user-badges/"):
            route = route.split("/")[1] + "/:username"
        key = f"{record['method']} {route}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def discord_stats(discord: DiscordSandbox) -> dict[str, Any]:
    log = list(discord.requests)
    return {
        "requests": len(log),
        "writes": sum(1 for r in log if r["method"] != "GET"),
        "rate_limited": sum(1 for r in log if r["status"] == 429),
        "invalid_requests": discord.invalid_requests,
        "pings": len(discord.pings),
        "times": [r["time"] for r in log if r["status"] != 429],
        "by_route": _by_route(log),
    }


class _WithStats:
    """ASGI wrapper answering ``/__sandbox/*`` itself and passing everything else to the sandbox."""

    def __init__(self, sandbox: DiscourseSandbox | DiscordSandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/__sandbox/"):
            request = Request(scope, receive)
            if scope["path"] == "/__sandbox/reset" and request.method == "POST":
                self.sandbox.reset_log()
                response = JSONResponse({"ok": True})
            elif isinstance(self.sandbox, DiscordSandbox):
                response = JSONResponse(discord_stats(self.sandbox))
            else:
                response = JSONResponse(forum_stats(self.sandbox))
            await response(scope, receive, send)
            return
        await self.sandbox.app(scope, receive, send)


#: What ``cardbridge sandbox --write-config FILE`` writes: the shape of config.example.toml, pointed at the sandboxes.
TRIAL_CONFIG = """\
# Written by `cardbridge sandbox --write-config`: a config for the loopback sandboxes it serves (they live as long as
# that command runs). Try: cardbridge --config {file} check, then backfill --dry-run, then run.
[state]
url = "sqlite:///cardbridge-trial.db"

[shop]
kind = "woocommerce"
base_url = "{shop_url}"
consumer_key = "{consumer_key}"
consumer_secret = "{consumer_secret}"

[communities.forum]
kind = "discourse"
base_url = "{forum_url}"
api_key = "{api_key}"
api_username = "system"
# The sandbox forum enforces this admin-API limit, raised from Discourse's default of 60 a minute as an operator does
# for an import (DISCOURSE_MAX_ADMIN_API_REQS_PER_MINUTE); requests_per_minute must not exceed the forum's value.
requests_per_minute = {rate_limit}
{discord}
[[rules]]
name = "verified-buyer"
products = "*"
grant.forum = {{ badge = "Verified Buyer", group = "verified-buyers", group_title = "Verified Buyer" }}
{discord_grant}
[reviews]
forum = {{ category = "Reviews" }}

[points]
per_order = 10
per_review = 5
forum = {{ mode = "gamification" }}

[server]
listen = "127.0.0.1:{listen_port}"
"""

#: The forum's admin-API limit (requests a minute) with ``--write-config``, unless ``--rate-limit`` says otherwise.
TRIAL_RATE_LIMIT = 600

TRIAL_DISCORD = """
[communities.discord]
kind = "discord"
bot_token = "{bot_token}"
guild_id = "{guild_id}"
api_base = "{discord_api}"
"""


def write_trial_config(path: Path, listen_port: int, rate_limit: int, facts: dict[str, Any]) -> None:
    """The config for the sandboxes ``facts`` (the JSON line ``serve`` prints) describe."""
    discord = TRIAL_DISCORD.format(**facts) if "bot_token" in facts else ""
    grant = f'grant.discord = {{ role = "{facts["buyer_role"]}" }}\n' if discord else ""
    path.write_text(
        TRIAL_CONFIG.format(
            file=path, discord=discord, discord_grant=grant, listen_port=listen_port, rate_limit=rate_limit, **facts
        ),
        encoding="utf-8",
    )


def serve(
    *,
    orders: int = 0,
    shop_port: int = 0,
    forum_port: int = 0,
    rate_limit: int | None = None,
    forum_users: bool = True,
    latency: float = 0.0,
    discord_bucket: tuple[int, float] | None = None,
    base_path: str = "",
    write_config: Path | None = None,
    listen_port: int = 8080,
) -> None:
    """``base_path``: serve the forum as a subfolder install (``/forum``); ``forum_url`` then carries it.
    ``write_config``: write a config for these sandboxes there (the daemon on ``listen_port``)."""
    if write_config is not None and rate_limit is None:
        rate_limit = TRIAL_RATE_LIMIT  # the written config claims a limit: the forum enforces it
    shop = WooCommerceSandbox()
    forum = DiscourseSandbox(rate_limit_per_minute=rate_limit, base_path=base_path)
    shop.knobs.latency = forum.knobs.latency = latency
    if orders:
        buyers = bulk_orders(shop, orders)
    else:
        buyers = [(b.username, b.email) for b in seed_shop(shop).buyers]
    if forum_users:
        for username, email in buyers:
            forum.add_user(username, email)
    discord = None
    extra: dict[str, Any] = {}
    if discord_bucket is not None:
        discord = DiscordSandbox(route_limit=discord_bucket[0], route_window=discord_bucket[1])
        member_base = 910000000000000000
        for index in range(len(buyers)):
            discord.add_member(str(member_base + index))
        extra = {
            "bot_token": discord.bot_token,
            "guild_id": discord.guild_id,
            "member_base": member_base,
            "buyer_role": discord.add_role("Verified Buyer", 2),
            "buyer_emails": [email for _, email in buyers],
        }
    discord_server = SandboxServer(_WithStats(discord)).start() if discord is not None else None
    if discord_server is not None:
        extra["discord_url"] = discord_server.url
        extra["discord_api"] = discord_server.url + DISCORD_API
    with (
        SandboxServer(shop.app, port=shop_port) as shop_server,
        SandboxServer(_WithStats(forum), port=forum_port) as forum_server,
    ):
        facts = {
            **extra,
            "shop_url": shop_server.url,
            "consumer_key": shop.consumer_key,
            "consumer_secret": shop.consumer_secret,
            "forum_url": forum_server.url + forum.base_path,
            "api_key": forum.api_key,
            "api_username": "system",
            "orders": orders,
            "forum_users": len(buyers) if forum_users else 0,
        }
        if write_config is not None:
            write_trial_config(write_config, listen_port, rate_limit or TRIAL_RATE_LIMIT, facts)
            facts["config"] = str(write_config)
        print(json.dumps(facts), flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if discord_server is not None:
                discord_server.stop()
