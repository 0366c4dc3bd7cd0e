"""Points back to the shop: what earning costs in forum requests, and how redemptions hold up under contention.

    .venv/bin/python bench/points_back.py               # 60 topics × 3 posts; 400 redemptions on SQLite and PostgreSQL
    .venv/bin/python bench/points_back.py --topics 20   # a quick look

1. **Forum requests per earning pass.** A sandbox forum (no rate limit) with ``--topics`` topics in the earning
   category, each a first post and two replies, every post liked by the same ten old members; the buyers who wrote
   them are matched by email. ``cardbridge sync`` runs twice in a subprocess; the forum's own request log counts what
   each pass asked, by route. The second pass has nothing new to earn.
2. **Redemptions under contention.** 400 redemptions of 500 points by 16 threads at once, over 50 customers holding
   1,200 points each (two redemptions each fit, the rest must be refused), on a SQLite file and on the local
   PostgreSQL. Counted: reservations made, refusals, any balance below zero (must be 0), and reservations per second.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, insert, text

from connector.core.clock import utcnow
from connector.state import State
from connector.state.db import open_engine
from connector.state.redemptions import Request
from connector.state.sql import customers_t
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("CARDBRIDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
OLD = "2024-01-05T10:00:00.000Z"

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
contributions_max_topics = 1000
contributions_max_posts = 100000
contributions_max_age_lookups = 1000
[[rules]]
name = "verified-buyer"
products = "*"
grant.forum = {{ group = "verified-buyers" }}
[earn]
forum = {{ categories = ["Guides"], per_like_received = 1, min_likes = 3, daily_cap = 100000, per_post_cap = 100 }}
"""

ROUTES = {
    "category lists": r"^/(categories|c/)",
    "topics": r"^/t/\d+(\.json|/posts)",
    "who liked": r"^/post_action_users",
    "account ages": r"^/admin/users/\d+",
    "inbox": r"^/topics/private-messages",
}


def earn_requests(topics: int) -> dict[str, Counter[str]]:
    shop, forum = WooCommerceSandbox(), DiscourseSandbox(rate_limit_per_minute=None)
    forum.rate_limit_create_topic = forum.rate_limit_create_post = 0
    forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
    forum.max_likes_per_day = forum.max_topics_per_day = 0
    forum.add_category("Guides")
    card = shop.add_product("Steam 钱包充值卡 $20", "145.00")
    likers = [f"fan{n}" for n in range(10)]
    for name in likers:
        forum.add_user(name, f"{name}@example.net", trust_level=1, created_at=OLD)
    authors = [f"writer{n}" for n in range(max(topics // 3, 1))]
    for name in authors:
        forum.add_user(name, f"{name}@example.com", trust_level=1, created_at=OLD)
        shop.add_order(shop.add_customer(f"{name}@example.com", username=name), items=[(card, 1)])
    result: dict[str, Counter[str]] = {}
    with SandboxServer(shop.app) as shop_url, SandboxServer(forum.app) as forum_url:
        import httpx

        def act(user: str, **body: object) -> dict[str, object]:
            path = "/post_actions.json" if "post_action_type_id" in body else "/posts.json"
            answer = httpx.post(forum_url.url + path, headers=forum.member_headers(user), json=body, timeout=30)
            answer.raise_for_status()
            return dict(answer.json())

        for n in range(topics):
            author = authors[n % len(authors)]
            first = act(author, title=f"Guide number {n}: redeeming a wallet card", category="Guides",
                        raw=f"Step by step, guide {n}: open the client, redeem the code, check the balance.")  # fmt: skip
            posts = [first["id"]]
            for r in range(2):
                posts.append(act(authors[(n + r + 1) % len(authors)], topic_id=first["topic_id"],
                                 raw=f"Reply {r} to guide {n}: this worked for me, thanks a lot!")["id"])  # fmt: skip
            for post in posts:
                for liker in likers:
                    act(liker, id=post, post_action_type_id=2)
        with tempfile.TemporaryDirectory() as folder:
            key = next(iter(shop.keys.values()))
            (Path(folder) / "cardbridge.toml").write_text(
                CONFIG.format(
                    shop=shop_url.url,
                    ck=key.consumer_key,
                    cs=key.consumer_secret,
                    forum=forum_url.url,
                    key=forum.api_key,
                ),
                encoding="utf-8",
            )
            for name in ("first pass", "second pass"):
                forum.reset_log()
                done = subprocess.run(
                    [sys.executable, "-m", "connector.cli", "--config", "cardbridge.toml", "sync"],
                    cwd=folder, capture_output=True, text=True, timeout=1800,
                )  # fmt: skip
                if done.returncode != 0:
                    raise SystemExit(done.stdout + done.stderr)
                counts: Counter[str] = Counter()
                for entry in forum.requests.snapshot():
                    route = next((r for r, rx in ROUTES.items() if re.search(rx, entry["path"])), "other")
                    counts[route] += 1
                result[name] = counts
    return result


def contention(url: str, label: str) -> dict[str, float]:
    state = State(open_engine(url))
    keys = [f"c:{n}" for n in range(50)]
    with state.engine.begin() as conn:
        for key in keys:
            conn.execute(insert(customers_t).values(key=key, email=None, dirty=False, updated_at=utcnow()))
    for key in keys:
        state.reviews.add_point_events(key, [(f"order:{key}", 1200, "order")])
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def member(worker: int) -> None:
        barrier.wait()
        for n in range(25):
            key = keys[(worker * 25 + n) % len(keys)]
            request = Request(
                key=f"bench:{worker}:{n}", community="forum", member_id="1", customer_key=key, command="redeem",
                language="en", points=500, amount="5.00", coupon_type="fixed_cart",
            )  # fmt: skip
            row, _ = state.redemptions.record(request)
            with lock:
                outcomes[row.status] += 1

    threads = [threading.Thread(target=member, args=(w,)) for w in range(16)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    below = sum(1 for key in keys if state.redemptions.balance(key) < 0)
    state.close()
    figures = {
        "reserved": outcomes["reserved"],
        "refused": outcomes["refused"],
        "below zero": below,
        "seconds": round(seconds, 2),
        "per second": round(400 / seconds),
    }
    print(f"{label}: {figures}")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--topics", type=int, default=60)
    args = parser.parse_args()
    passes = earn_requests(args.topics)
    for name, counts in passes.items():
        print(f"{name}, {args.topics} topics × 3 posts: {sum(counts.values())} forum requests {dict(counts)}")
    with tempfile.TemporaryDirectory() as folder:
        contention(f"sqlite:///{folder}/state.db", "SQLite")
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"cardbridge_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        contention(PG_ADMIN.rsplit("/", 1)[0] + "/" + name, "PostgreSQL")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
