"""Product cards: how many forum edits twenty price changes in an hour cost (issue 17).

    .venv/bin/python bench/product_cards.py            # 20 changes
    .venv/bin/python bench/product_cards.py --changes 50

A sandbox shop and forum (no rate limit); ``[products] cards = ["forum"]``, ``card_edit_every = 3600``. The first
``cardbridge sync`` opens the product's topic with its card. The card's last write is then moved an hour back in the
state store (an hour passes), and the price changes ``--changes`` times, a ``cardbridge sync`` after each (all within
the hour that follows). The forum's own request log counts the card edits (``PUT /posts/{id}``) and every request of
those passes; then the hour passes again and one more sync shows the edit that carries the last price.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox

CONFIG = """
[state]
url = "sqlite:///state.db"
[shop]
kind = "woocommerce"
base_url = "{shop}"
consumer_key = "{ck}"
consumer_secret = "{cs}"
[communities.forum]
kind = "discourse"
base_url = "{forum}"
api_key = "{key}"
api_username = "system"
requests_per_minute = 100000
[reviews]
forum = {{ category = "Reviews" }}
[products]
cards = ["forum"]
card_edit_every = 3600
"""


def hour_passes(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        for product, written in conn.execute("SELECT product_id, written_at FROM product_cards").fetchall():
            earlier = datetime.fromisoformat(written) - timedelta(hours=1, seconds=1)
            conn.execute(
                "UPDATE product_cards SET written_at = ? WHERE product_id = ?", (earlier.isoformat(sep=" "), product)
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    shop, forum = WooCommerceSandbox(), DiscourseSandbox(rate_limit_per_minute=None)
    product = shop.add_product("王者荣耀 点券 60元", "60.00")
    with SandboxServer(shop.app) as shop_url, SandboxServer(forum.app) as forum_url, tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        key = next(iter(shop.keys.values()))
        (folder / "cardbridge.toml").write_text(
            CONFIG.format(shop=shop_url.url, ck=key.consumer_key, cs=key.consumer_secret, forum=forum_url.url,
                          key=forum.api_key),
            encoding="utf-8",
        )  # fmt: skip

        def sync() -> None:
            done = subprocess.run(
                [sys.executable, "-m", "connector.cli", "--config", "cardbridge.toml", "sync"],
                cwd=folder, capture_output=True, text=True, timeout=600,
            )  # fmt: skip
            if done.returncode != 0:
                raise SystemExit(done.stdout + done.stderr)

        def edits() -> int:
            return sum(
                1 for e in forum.requests.snapshot() if e["method"] == "PUT" and re.match(r"^/posts/\d+", e["path"])
            )

        sync()
        hour_passes(folder / "state.db")
        forum.reset_log()
        started = time.monotonic()
        for step in range(1, args.changes + 1):
            shop.set_price(product, f"{60 + step}.00")
            sync()
        within = edits()
        requests = len(forum.requests.snapshot())
        elapsed = time.monotonic() - started
        hour_passes(folder / "state.db")
        forum.reset_log()
        sync()
        after = edits()
        [topic] = [t for t in forum.topics() if t["deleted_at"] is None]
        card = forum.posts_of_topic(topic["id"])[0]["raw"]
        last = f"{60 + args.changes}\\.00"
        print(
            f"{args.changes} price changes within the hour, a sync after each ({elapsed:.1f} s): {within} card edit(s)"
        )
        print(f"forum requests in those passes: {requests} ({requests - within} reads)")
        print(f"after the hour: {after} more edit(s); the card shows the last price: {last in card}")


if __name__ == "__main__":
    main()
