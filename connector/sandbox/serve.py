"""``cardbridge sandbox``: run the sandbox shop and forum as standalone servers (for trying configs and benchmarks).

Prints one JSON line with the URLs and credentials once both listen, then serves until interrupted. A stats route,
``GET /__sandbox/stats`` on the forum, answers request counts (reads, writes, 429s, timestamps) so a benchmark in
another process can measure the connector from the server's side.
"""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from connector.sandbox.discourse import DiscourseSandbox
from connector.sandbox.world import bulk_orders, seed_shop
from connector.sandbox.server import SandboxServer
from connector.sandbox.shop import WooCommerceSandbox


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


class _WithStats:
    """ASGI wrapper answering ``/__sandbox/*`` itself and passing everything else to the forum."""

    def __init__(self, forum: DiscourseSandbox) -> None:
        self.forum = forum

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/__sandbox/"):
            request = Request(scope, receive)
            if scope["path"] == "/__sandbox/reset" and request.method == "POST":
                self.forum.reset_log()
                response = JSONResponse({"ok": True})
            else:
                response = JSONResponse(forum_stats(self.forum))
            await response(scope, receive, send)
            return
        await self.forum.app(scope, receive, send)


def serve(
    *,
    orders: int = 0,
    shop_port: int = 0,
    forum_port: int = 0,
    rate_limit: int | None = None,
    forum_users: bool = True,
    latency: float = 0.0,
) -> None:
    shop = WooCommerceSandbox()
    forum = DiscourseSandbox(rate_limit_per_minute=rate_limit)
    shop.knobs.latency = forum.knobs.latency = latency
    if orders:
        buyers = bulk_orders(shop, orders)
    else:
        buyers = [(b.username, b.email) for b in seed_shop(shop).buyers]
    if forum_users:
        for username, email in buyers:
            forum.add_user(username, email)
    with SandboxServer(shop.app, port=shop_port) as shop_server, SandboxServer(_WithStats(forum), port=forum_port) as forum_server:
        print(
            json.dumps(
                {
                    "shop_url": shop_server.url,
                    "consumer_key": shop.consumer_key,
                    "consumer_secret": shop.consumer_secret,
                    "forum_url": forum_server.url,
                    "api_key": forum.api_key,
                    "api_username": "system",
                    "orders": orders,
                    "forum_users": len(buyers) if forum_users else 0,
                }
            ),
            flush=True,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
