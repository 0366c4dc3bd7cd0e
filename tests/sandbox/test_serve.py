"""`cardbridge sandbox` as an operator runs it: one JSON line with working URLs and credentials, then it serves."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx


def test_sandbox_command_serves_shop_forum_and_discord():
    process = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "sandbox", "--orders", "30", "--discord-bucket", "5/1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
        orders = httpx.get(
            info["shop_url"] + "/wp-json/wc/v3/orders",
            auth=(info["consumer_key"], info["consumer_secret"]),
            params={"per_page": 100},
        )
        assert orders.status_code == 200 and len(orders.json()) == 30
        assert len(info["buyer_emails"]) == 3  # one buyer per ten orders, each a guild member
        member = str(info["member_base"] + 2)
        headers = {"Authorization": f"Bot {info['bot_token']}"}
        answer = httpx.get(f"{info['discord_api']}/guilds/{info['guild_id']}/members/{member}", headers=headers)
        assert answer.status_code == 200 and answer.headers["x-ratelimit-limit"] == "5"
        assert httpx.get(f"{info['discord_api']}/guilds/{info['guild_id']}/members/{member}").status_code == 401
        stats = httpx.get(info["discord_url"] + "/__sandbox/stats").json()
        assert (stats["requests"], stats["invalid_requests"]) == (2, 1)
    finally:
        process.terminate()
        process.wait(30)
    assert process.returncode in (0, -15)
