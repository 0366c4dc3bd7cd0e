"""``cardbridge demo``: zero config. A sandbox shop, forum and Discord server on loopback, a backfill, two buyers
linking their Discord accounts through the link page, a refund, and the result.

It runs the very code a real deployment runs (the same adapters, state store, pass and link page) against the
sandboxes, so what it shows is what an operator gets, before any credential is wired.
"""

from __future__ import annotations

import html
import re
import secrets
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.fernet import Fernet
from rich.console import Console
from rich.table import Table
from starlette.applications import Starlette

from connector.cli.demo_market import MARKET_CONFIG, catalogue_and_talk
from connector.cli.progress import progress_bar
from connector.cli.status import print_status, status_data
from connector.core.config import load_config
from connector.flow import Connector, PassReport
from connector.server.link_page import LinkPages
from connector.server.linking import LinkService
from sandbox.discord import API as DISCORD_API
from sandbox.discord import DiscordSandbox
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox
from sandbox.world import CATALOGUE, seed_shop

#: The demo forum's admin-API limit, and CardBridge's budget for it in the demo config.
DEMO_FORUM_LIMIT = 600

DEMO_CONFIG = """\
# Written by `cardbridge demo`: the same shape as config.example.toml, pointed at the loopback sandboxes.
[state]
url = "sqlite:///cardbridge-demo.db"

[shop]
kind = "woocommerce"
base_url = "{shop_url}"
consumer_key = "{consumer_key}"
consumer_secret = "{consumer_secret}"
# A second key with Read/Write permission, for the coupons members redeem their points for.
coupon_consumer_key = "{coupon_key}"
coupon_consumer_secret = "{coupon_secret}"

[communities.forum]
kind = "discourse"
base_url = "{forum_url}"
api_key = "{api_key}"
api_username = "system"
# The demo forum enforces Discourse's admin-API limit raised to {forum_limit} a minute
# (DISCOURSE_MAX_ADMIN_API_REQS_PER_MINUTE, as an operator raises it for an import; the default is 60, and
# requests_per_minute must not exceed the forum's value): the demo makes ~70 forum requests in a few seconds.
requests_per_minute = {forum_limit}

[communities.discord]
kind = "discord"
bot_token = "{bot_token}"
guild_id = "{guild_id}"
api_base = "{discord_api}"
oauth_base = "{discord_url}"
application_id = "{application_id}"
client_secret = "{client_secret}"

[[rules]]
name = "verified-buyer"
products = "*"
grant.forum = {{ badge = "Verified Buyer", group = "verified-buyers", group_title = "Verified Buyer" }}
grant.discord = {{ role = "{buyer_role}" }}

[reviews]
forum = {{ category = "Reviews" }}
discord = {{ forum_channel = "{review_forum}", tags = ["Shop reviews"] }}

[points]
per_order = 10
per_currency_unit = 0.1
per_review = 5
forum = {{ mode = "gamification" }}
discord = {{ tiers = {{ "40" = "{regular_role}", "140" = "{patron_role}" }} }}

[earn]
forum = {{ categories = ["经验分享"], per_like_received = 20, min_likes = 3, daily_cap = 200, per_post_cap = 200 }}

[redeem]
secret = "{redeem_secret}"
options = [{{ points = 100, coupon = {{ amount = "5.00", type = "fixed_cart" }} }}]
communities = ["forum"]

[link]
community = "discord"
public_url = "{link_url}"
secret = "{link_secret}"
linked_roles = true
token_key = "{token_key}"
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
            table.add_row(
                topic["title"],  # shop text, shown as it is (the console reads no markup)
                f"{lines[0]}\n{quote[:70]}",
                "yes" if "Verified purchase" in post["raw"] else "no",
            )
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
            table.add_row(
                member["username"], " ".join(f"{e['points']:+d}" for e in events), str(sum(e["points"] for e in events))
            )
    return table


def _points_back(
    console: Console,
    connector: Connector,
    shop: WooCommerceSandbox,
    forum: DiscourseSandbox,
    forum_url: str,
    shop_url: str,
    member: str,
    email: str,
    likers: list[str],
) -> bool:
    """A member's guide is liked, the likes become points, a personal message redeems them for a coupon, and the
    shop takes the code once, for that member's email only."""
    console.rule("Points back to the shop (积分兑换)")
    with httpx.Client(base_url=forum_url, timeout=30) as http:

        def act(username: str, **body: object) -> dict[str, object]:
            path = "/post_actions.json" if "post_action_type_id" in body else "/posts.json"
            answer = http.post(path, headers=forum.member_headers(username), json=body)
            if answer.is_error:
                raise RuntimeError(f"the forum refused a member's post: {answer.status_code} {answer.text[:200]}")
            return dict(answer.json())

        post = act(
            member,
            title="Steam 钱包卡充值教程：三步完成，秒到账",
            category="经验分享",
            raw="打开 Steam 客户端，点击「游戏 > 兑换 Steam 钱包码」，粘贴订单邮件里的卡密即可，立即到账。",
        )
        for liker in likers:
            act(liker, id=post["id"], post_action_type_id=2)
        console.print(f"{member} posts a guide in 经验分享; {', '.join(likers)} like it.")
        earned = connector.run_pass()
        key = connector.store.identities.find_customers(email)[0]
        console.print(f"sync: {member} now has {connector.store.redemptions.balance(key)} points to spend.")
        asked = act(
            member,
            title="兑换 100",
            raw="你好，麻烦帮我用积分兑换一张优惠券，谢谢！",
            archetype="private_message",
            target_recipients="system",
        )
        console.print(f"{member} sends the forum's API user a personal message titled “兑换 100”.")
        answered = connector.run_pass()
    reply = next(p["raw"] for p in forum.posts_of_topic(int(str(asked["topic_id"]))) if p["username"] == "system")
    console.print(f"CardBridge answers in the same conversation: “{reply.splitlines()[0]}”")
    code = re.search(r"CB-[A-Z2-7]{12}", reply)
    if code is None:
        console.print("no code in the answer")
        return False
    with httpx.Client(base_url=shop_url, auth=(shop.consumer_key, shop.consumer_secret), timeout=30) as http:

        def checkout(who: str) -> int:
            order = {"status": "processing", "billing": {"email": who}, "coupon_lines": [{"code": code.group(0)}]}
            return http.post("/wp-json/wc/v3/orders", json=order).status_code

        uses = [("someone else", checkout("someone@example.net")), (member, checkout(email)), (member, checkout(email))]
    console.print(
        "At checkout the shop takes the code: "
        + "; ".join(f"{who}: {'accepted' if status == 201 else f'refused (HTTP {status})'}" for who, status in uses)
    )
    return earned.ok and answered.ok and [s for _, s in uses] == [400, 201, 400]


def _report_line(report: PassReport) -> str:
    forum, discord = report.requests.get("forum", {}), report.requests.get("discord", {})
    return (
        f"{report.orders_read} orders read, {report.actions_planned} actions planned, {report.delivered} delivered, "
        f"{forum.get('requests', 0)} forum requests ({forum.get('writes', 0)} writes), "
        f"{discord.get('requests', 0)} Discord requests ({discord.get('writes', 0)} writes)"
    )


def _discord_table(discord: DiscordSandbox, title: str) -> Table:
    table = Table(title=title)
    for column in ("Discord member", "roles", "Linked Roles metadata"):
        table.add_column(column)
    names = {role_id: role["name"] for role_id, role in discord.roles.items()}
    for user_id, user in sorted(discord.users.items(), key=lambda kv: kv[1]["username"]):
        if user_id not in discord.members:
            continue
        connection = discord.role_connection(user_id) or {}
        metadata = ", ".join(f"{k}={v}" for k, v in (connection.get("metadata") or {}).items())
        table.add_row(
            user["username"], ", ".join(sorted(names[r] for r in discord.roles_of(user_id))) or "—", metadata or "—"
        )
    return table


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _link_in_browser(link_url: str, order_id: int, email: str) -> str:
    """What a buyer does on the link page, as plain HTTP: the form, Discord's consent page, the confirmation."""
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        form = browser.get(f"{link_url}/link")  # sets the CSRF cookie; the form carries its token
        csrf = re.search(r'name=csrf value="([0-9a-f]+)"', form.text)
        to_discord = browser.post(
            f"{link_url}/link",
            data={"order": str(order_id), "email": email, "csrf": csrf.group(1) if csrf else ""},
            headers={"Origin": link_url},
        )
        consent_url = to_discord.headers["location"]
        browser.get(consent_url)  # the consent page
        query = {k: v[0] for k, v in parse_qs(urlsplit(consent_url).query).items()}
        consent = urlsplit(consent_url)
        back = browser.post(
            f"{consent.scheme}://{consent.netloc}{consent.path}", data={**query, "decision": "authorize"}
        )
        done = browser.get(back.headers["location"])
    title = re.search(r"<h1[^>]*>(.*?)</h1>", done.text)
    return html.unescape(title.group(1)) if title else f"HTTP {done.status_code}"


def run_demo(console: Console, workdir: Path | None = None, keep: bool = False) -> int:
    """Run the demo in ``workdir``, or in a new temporary folder that is removed on the way out (also on Ctrl-C)
    unless ``keep``; returns the exit code."""
    folder = workdir or Path(tempfile.mkdtemp(prefix="cardbridge-demo-"))
    try:
        return _run_demo(console, folder)
    finally:
        if workdir is None and not keep:
            shutil.rmtree(folder, ignore_errors=True)
        elif workdir is None:
            console.print(f"The demo's config and state store are kept in {folder}")


def _run_demo(console: Console, folder: Path) -> int:
    shop = WooCommerceSandbox()
    # A limit on, as on a real forum, at the value the demo's config is told (DEMO_FORUM_LIMIT).
    forum = DiscourseSandbox(rate_limit_per_minute=DEMO_FORUM_LIMIT)
    discord = DiscordSandbox()
    roles = {
        "buyer_role": discord.add_role("Verified Buyer", 2),
        "regular_role": discord.add_role("Regular (40 points)", 3),
        "patron_role": discord.add_role("Patron (140 points)", 4),
    }
    review_forum = discord.add_forum("shop-reviews", tags=("Shop reviews",))
    link_port = _free_port()
    link_url = f"http://127.0.0.1:{link_port}"
    discord.redirect_uris.add(f"{link_url}/link/callback")
    with (
        SandboxServer(shop.app) as shop_server,
        SandboxServer(forum.app) as forum_server,
        SandboxServer(discord.app) as discord_server,
    ):
        info = seed_shop(shop)
        # Most buyers have a forum account under the email they bought with; a few do not (yet).
        paid = [b for b in info.buyers if b.paid]
        for index, buyer in enumerate(info.buyers):
            if buyer.paid and index % 5 == 4:
                continue
            # Trust level 1 ("basic"): what a forum asks of members before they may send personal messages.
            forum.add_user(buyer.username, buyer.email, trust_level=1, created_at="2025-01-01T00:00:00.000Z")
        forum.add_user("lurker", "lurker@example.net", trust_level=1, created_at="2025-01-01T00:00:00.000Z")
        forum.add_category("经验分享")
        # The demo's members post and like faster than a forum's per-member limits allow; an admin may lift them.
        forum.rate_limit_create_topic = forum.rate_limit_create_post = 0
        forum.rate_limit_new_user_create_topic = forum.rate_limit_new_user_create_post = 0
        coupon_key = ("ck_demo_coupons" + secrets.token_hex(13), "cs_demo_coupons" + secrets.token_hex(13))
        shop.add_key(*coupon_key, "read_write")

        config_path = folder / "cardbridge.toml"
        config_path.write_text(
            DEMO_CONFIG.format(
                shop_url=shop_server.url,
                forum_url=forum_server.url,
                consumer_key=shop.consumer_key,
                consumer_secret=shop.consumer_secret,
                coupon_key=coupon_key[0],
                coupon_secret=coupon_key[1],
                redeem_secret=secrets.token_hex(32),
                api_key=forum.api_key,
                forum_limit=DEMO_FORUM_LIMIT,
                bot_token=discord.bot_token,
                guild_id=discord.guild_id,
                discord_api=discord_server.url + DISCORD_API,
                discord_url=discord_server.url,
                application_id=discord.client_id,
                client_secret=discord.client_secret,
                review_forum=review_forum,
                link_url=link_url,
                link_secret=secrets.token_hex(32),
                token_key=Fernet.generate_key().decode(),
                **roles,
            )
            + MARKET_CONFIG,
            encoding="utf-8",
        )
        console.rule("CardBridge demo")
        console.print(
            f"Sandbox WooCommerce shop at {shop_server.url} ({len(info.orders)} orders, {len(paid)} paying buyers);\n"
            f"sandbox Discourse forum at {forum_server.url}; sandbox Discord server at {discord_server.url}.\n"
            f"Config written to {config_path} (removed when the demo ends unless --keep)\n"
        )
        config = load_config(config_path)
        connector = Connector(config)
        link_app = Starlette(
            routes=LinkPages(LinkService(config, connector.store, connector.communities["discord"])).routes()
        )
        link_server = SandboxServer(link_app, port=link_port).start()
        try:
            bar, progress = progress_bar(console)
            with bar:
                report = connector.run_pass(full=True, progress=progress)
            console.print("backfill: " + _report_line(report))
            console.print(_member_table(forum, "What forum members see after the backfill"))
            console.print(_reviews_table(forum))
            console.print(_points_table(forum))

            # Two buyers link their Discord accounts on the link page (order number + email, then Discord's consent).
            refunded = info.refundable_order
            assert refunded is not None, "the seeded shop always has one order to refund"
            by_name = {b.username: b for b in info.buyers}
            # The buyer whose order is refunded below, and the buyer with the most points (a tier role shows).
            points = {
                b.username: connector.points_total(f"c:{b.customer_id}" if b.customer_id else f"e:{b.email}")
                for b in paid
            }
            linkers = [refunded.username, max((u for u in points if u != refunded.username), key=points.__getitem__)]
            for username in linkers:
                buyer = by_name[username]
                discord.browser_user = discord.add_user(f"{username}_gg")
                order_id = next(
                    o
                    for o in info.orders
                    if shop.order(o)["billing"]["email"] == buyer.email
                    and shop.order(o)["status"] in ("processing", "completed")
                )
                page = _link_in_browser(link_url, order_id, buyer.email)
                console.print(f"{username} links a Discord account on {link_url}/link with order #{order_id}: “{page}”")
            linked = connector.run_pass()
            console.print("sync: " + _report_line(linked))
            console.print(_discord_table(discord, "What Discord members see (roles, Linked Roles)"))
            threads = discord.threads_of(review_forum)
            messages = sum(1 for m in discord.messages.values() if any(m["channel_id"] == t["id"] for t in threads))
            console.print(
                f"Review threads in #shop-reviews: {len(threads)} ({messages} messages), {len(discord.pings)} pings."
            )

            shop.set_status(refunded.order_id, "refunded")
            console.print(f"\nThe shop refunds order #{refunded.order_id} ({refunded.username}'s only paid order) …")
            second = connector.run_pass()
            console.print("sync: " + _report_line(second))
            console.print(_member_table(forum, "After the refund"))
            console.print(_points_table(forum))
            console.print(_discord_table(discord, "Discord after the refund"))

            forum.reset_log()
            discord.reset_log()
            third = connector.run_pass()
            console.print(
                f"\nA third pass with nothing new: {len(forum.writes())} write requests to the forum, "
                f"{len(discord.writes())} to Discord.\n"
            )

            member = linkers[1]
            on_forum = [m["username"] for m in forum.member_view()]
            others = [u for u in on_forum if u not in ("system", member, refunded.username)][:3]
            looped = _points_back(
                console,
                connector,
                shop,
                forum,
                forum_server.url,
                shop_server.url,
                member,
                by_name[member].email,
                others,
            )
            catalogue = dict(zip((name for name, _, _ in CATALOGUE), info.products, strict=True))
            market = catalogue_and_talk(
                console, connector, shop, forum, forum_server.url, catalogue, [m for m in others if m != member]
            )
            console.print()
            print_status(console, status_data(connector.store))
        finally:
            link_server.stop()
            connector.close()
        ok = report.ok and linked.ok and second.ok and third.ok and looped and market
        console.print(
            "\nNext: try the daemon on the sandboxes (`cardbridge sandbox --write-config trial.toml`, then "
            "`cardbridge --config trial.toml check` and `run`), or copy config.example.toml, point it at your shop "
            "and forum, and run `cardbridge --config cardbridge.toml check`, then `backfill --dry-run`."
        )
        return 0 if ok else 1
