"""The demo's last act: the shop's catalogue in the community (a product card, an announcement) and the community's
talk back as numbers (rising terms, products talked about, demand posts) — issue 17, on the demo's sandboxes."""

from __future__ import annotations

from datetime import timedelta

import httpx
from rich.console import Console
from rich.text import Text

from connector.cli.insights import print_demand, print_heat
from connector.core.clock import utcnow
from connector.flow import Connector
from connector.flow.insights import demand_report, heat_report
from sandbox.discourse import DiscourseSandbox
from sandbox.shop import WooCommerceSandbox

#: The demo config's ``[products]`` and ``[insights]`` (appended to the demo's config).
MARKET_CONFIG = """
[products]
cards = ["forum"]
[products.announce]
forum = { category = "Shop news", max_per_day = 3, price_drop_percent = 10 }

[insights]
floor = 2
forum = { category = "需求", tag = "request" }
"""

#: The demo's product whose card is shown and whose price drops.
SHOWN = "Elden Ring Steam Key"


def product_card(forum: DiscourseSandbox, name: str) -> dict[str, object] | None:
    """The first post of the product's topic (the card), or None."""
    topics = [
        t
        for t in forum.topics()
        if name in t["title"] and t["deleted_at"] is None and "-product-" in (t.get("external_id") or "")
    ]
    return forum.posts_of_topic(topics[0]["id"])[0] if topics else None


def catalogue_and_talk(
    console: Console,
    connector: Connector,
    shop: WooCommerceSandbox,
    forum: DiscourseSandbox,
    forum_url: str,
    products: dict[str, int],
    members: list[str],
) -> bool:
    """Show the card, drop a price (one announcement, the card waits for its hour), then members talk and ask, and
    the insights summarise it. True when each step showed what it should."""
    console.rule("The catalogue in the community (商家入驻)")
    card = product_card(forum, SHOWN)
    if card is None:
        console.print(f"no product card for {SHOWN}")
        return False
    console.print(f"The first post of {SHOWN}'s topic is its product card (written by the backfill):")
    console.print(Text("\n".join("    " + line for line in str(card["raw"]).splitlines()[:8])))
    edits = forum.count("PUT", r"^/posts/\d+")
    shop.set_price(products[SHOWN], "159.00")
    console.print(f"\nThe merchant drops {SHOWN}'s price from 199.00 to 159.00 (−20 %) …")
    dropped = connector.run_pass()
    announced = [t for t in forum.topics() if t["title"].startswith("Price drop:") and t["deleted_at"] is None]
    console.print(
        Text(
            f"sync: announced in Shop news: {', '.join('“' + t['title'] + '”' for t in announced) or 'nothing'}; "
            f"card edits now: {forum.count('PUT', r'^/posts/[0-9]+') - edits} (a card is edited at most once per "
            "[products] card_edit_every, an hour by default: the last price shows once the hour since its last edit "
            "has passed, however often it changes meanwhile); pings: none."
        )
    )

    console.rule("What the community asks for (需求帖, 热度分析)")
    now = utcnow()
    forum.add_category("需求")
    with httpx.Client(base_url=forum_url, timeout=30) as http:

        def post(who: str, raw: str, when_days_ago: float = 0, **extra: object) -> dict[str, object]:
            body = {"raw": raw, "created_at": (now - timedelta(days=when_days_ago)).isoformat(), **extra}
            answer = http.post("/posts.json", headers=forum.member_headers(who), json=body)
            if answer.is_error:
                raise RuntimeError(f"the forum refused a member's post: {answer.status_code} {answer.text[:200]}")
            return dict(answer.json())

        a, b, c = (members * 3)[:3]
        asked = post(
            a,
            "原神 创世结晶 能不能打个折？648 有点贵了，月底活动能安排一下吗",
            title="原神 创世结晶 6480 能不能出个折扣价",
            category="需求",
            tags=["request"],
        )
        for who in (b, c):
            post(who, "同求，创世结晶 打折的话我就再买一单，648 一次有点下不去手", topic_id=asked["topic_id"])
        post(b, "Please add a Netflix Premium monthly pass, I would buy one every month", title="Request: Netflix Premium monthly", category="需求",
             tags=["request"])  # fmt: skip
        for n, who in enumerate((a, b, c, a)):  # this week, everyone wants restocks
            post(
                who,
                f"王者荣耀 点券 什么时候补货？第{n + 1}次问了，周末想充值一下",
                title=f"王者荣耀 点券 补货 什么时候到（{n + 1}）",
                category="General",
            )
        post(
            c,
            "Elden Ring 的 DLC 好玩吗？打完本体还想继续玩",
            when_days_ago=14,
            title="Elden Ring 的 DLC 值不值得买？",
            category="General",
        )
    talked = connector.run_pass()
    console.print(f"Members post requests and questions; sync counts the words (only counts are kept): {talked.ok}")
    settings = connector.config.insights
    if settings is None:
        return False
    heat = heat_report(connector.store, settings, list(settings.communities), utcnow())
    print_heat(heat, console)
    found = demand_report(connector.store, settings, connector.communities, utcnow())
    print_demand(found, console)
    console.print("`cardbridge insights --html report.html` writes the same with charts; the daemon serves /insights.")
    matched = any(d.post.product is not None for d in found) and any(d.post.product is None for d in found)
    return bool(announced) and dropped.ok and talked.ok and matched and bool(heat.rising)
