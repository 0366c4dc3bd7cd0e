"""``cardbridge demo``: zero config. A sandbox shop and forum on loopback, a backfill, a refund, and the result.

It runs the very code a real deployment runs (the same adapters, state store and pass) against the sandboxes, so
what it shows is what an operator gets, before any credential is wired.
"""

from __future__ import annotations

import html
import re
import tempfile
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from connector.config import load_config
from connector.progress import progress_bar
from connector.sandbox.discourse import DiscourseSandbox
from connector.sandbox.world import seed_shop
from connector.sandbox.server import SandboxServer
from connector.sandbox.shop import WooCommerceSandbox
from connector.sync import Connector, PassReport

DEMO_CONFIG = """\
# Written by `cardbridge demo`: the same shape as config.example.toml, pointed at the loopback sandboxes.
[state]
url = "sqlite:///cardbridge-demo.db"

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
requests_per_minute = 600

[[rules]]
name = "verified-buyer"
products = "*"
grant.forum = {{ badge = "Verified Buyer", group = "verified-buyers", group_title = "Verified Buyer" }}

[reviews]
forum = {{ category = "Reviews" }}

[points]
per_order = 10
per_currency_unit = 0.1
per_review = 5
forum = {{ mode = "gamification" }}
"""


def _member_table(forum: DiscourseSandbox, title: str) -> Table:
    table = Table(title=title)
    for column in ("member", "badges", "groups", "title on posts", "flair"):
        table.add_column(column)
    for member in forum.member_view():
        if member["username"] == "system":
            continue
        table.add_row(
            member["username"],
            ", ".join(member["badges"]) or "—",
            ", ".join(member["groups"]) or "—",
            member.get("title") or "—",
            member.get("flair_group") or "—",
        )
    return table


def _reviews_table(forum: DiscourseSandbox) -> Table:
    table = Table(title="Review topics on the forum (posted by the API user, member text escaped)")
    for column in ("topic", "review", "verified purchase"):
        table.add_column(column)
    for topic in forum.topics():
        posts = [p for p in forum.posts_of_topic(topic["id"]) if p["post_number"] > 1 and not p.get("deleted_at")]
        for post in posts:
            lines = [_as_read(line) for line in post["raw"].splitlines()]
            quote = next((line[2:] for line in lines if line.startswith("> ")), "")
            table.add_row(escape(topic["title"]), escape(f"{lines[0]}\n{quote[:70]}"),
                          "yes" if "Verified purchase" in post["raw"] else "no")
    return table


def _as_read(line: str) -> str:
    """A line of post markdown roughly as a reader sees it (escapes and entities undone; code spans shown plain)."""
    return html.unescape(re.sub(r"\\(.)", r"\1", line)).replace("**", "")


def _points_table(forum: DiscourseSandbox) -> Table:
    table = Table(title="Points (gamification score events)")
    table.add_column("member")
    table.add_column("events")
    table.add_column("total")
    for member in forum.member_view():
        if member["username"] == "system":
            continue
        events = forum.score_events(forum.user(member["username"])["id"])
        if events:
            table.add_row(member["username"], " ".join(f"{e['points']:+d}" for e in events),
                          str(sum(e["points"] for e in events)))
    return table


def _report_line(report: PassReport) -> str:
    forum = report.requests.get("forum", {})
    return (
        f"{report.orders_read} orders read, {report.actions_planned} actions planned, {report.delivered} delivered, "
        f"{forum.get('requests', 0)} forum requests "
        f"({forum.get('writes', 0)} writes)"
    )


def run_demo(console: Console, workdir: Path | None = None) -> int:
    """Run the demo; returns the exit code."""
    shop = WooCommerceSandbox()
    forum = DiscourseSandbox()
    with SandboxServer(shop.app) as shop_server, SandboxServer(forum.app) as forum_server:
        info = seed_shop(shop)
        # Most buyers have a forum account under the email they bought with; a few do not (yet).
        paid = [b for b in info.buyers if b.paid]
        for index, buyer in enumerate(info.buyers):
            if buyer.paid and index % 5 == 4:
                continue
            forum.add_user(buyer.username, buyer.email)
        forum.add_user("lurker", "lurker@example.net")

        folder = Path(workdir or tempfile.mkdtemp(prefix="cardbridge-demo-"))
        config_path = folder / "cardbridge.toml"
        config_path.write_text(
            DEMO_CONFIG.format(
                shop_url=shop_server.url,
                forum_url=forum_server.url,
                consumer_key=shop.consumer_key,
                consumer_secret=shop.consumer_secret,
                api_key=forum.api_key,
            ),
            encoding="utf-8",
        )
        console.rule("CardBridge demo")
        console.print(
            f"Sandbox WooCommerce shop at {shop_server.url} ({len(info.orders)} orders, {len(paid)} paying buyers);\n"
            f"sandbox Discourse forum at {forum_server.url}.\nConfig written to {config_path}\n"
        )
        connector = Connector(load_config(config_path))
        try:
            bar, progress = progress_bar(console)
            with bar:
                report = connector.run_pass(full=True, progress=progress)
            console.print("backfill: " + _report_line(report))
            console.print(_member_table(forum, "What forum members see after the backfill"))
            console.print(_reviews_table(forum))
            console.print(_points_table(forum))

            refunded = info.refundable_order
            shop.set_status(refunded.order_id, "refunded")
            console.print(f"\nThe shop refunds order #{refunded.order_id} ({refunded.username}'s only paid order) …")
            second = connector.run_pass()
            console.print("sync: " + _report_line(second))
            console.print(_member_table(forum, "After the refund"))
            console.print(_points_table(forum))

            forum.reset_log()
            third = connector.run_pass()
            console.print(f"\nA third pass with nothing new: {len(forum.writes())} write requests to the forum.\n")

            from connector.cli import _print_status, status_data

            _print_status(status_data(connector.store))
        finally:
            connector.close()
        ok = report.ok and second.ok and third.ok
        console.print(
            "\nNext: copy config.example.toml, point it at your shop and forum, and run "
            "`cardbridge --config cardbridge.toml backfill`."
        )
        return 0 if ok else 1
