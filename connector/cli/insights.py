"""``cardbridge insights``: what the community talks about and asks for, as numbers a merchant acts on.

``cardbridge insights`` reads the state store only (weekly counts the passes made from the community's posts, and
paid orders); ``cardbridge insights demand`` reads the demand topics from the communities now. ``--html FILE`` writes
the report with its charts (the daemon's ``/insights`` page shows the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector.cli.app import app, console, fail, load, open_connector
from connector.cli.output import JSON_OPTION, timestamp, write_json
from connector.core.clock import utcnow
from connector.core.config import Config
from connector.core.config_scope import Scope
from connector.core.insights_config import InsightsConfig
from connector.flow.insights import CommunityDemand, HeatReport, ProductHeat, demand_report, heat_report
from connector.state import State

insights_app = typer.Typer(
    help="What the community talks about and asks for: rising terms, products talked about, demand posts.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
app.add_typer(insights_app, name="insights")

#: Exit code when ``[insights]`` is not configured (as other commands exit 2 on a config they cannot use).
NOT_CONFIGURED = 2


def _insights(config: Config) -> InsightsConfig:
    if config.insights is None or not config.insights.communities:
        raise fail(
            "[insights] is not configured: name the communities to read (see config.example.toml)", NOT_CONFIGURED
        )
    return config.insights


def _product(heat: ProductHeat) -> dict[str, Any]:
    return {
        "product_id": heat.product_id,
        "name": heat.name,
        "mentions": heat.mentions,
        "paid_orders": heat.paid_orders,
    }


def heat_data(report: HeatReport) -> dict[str, Any]:
    """The ``--json`` document of ``cardbridge insights`` (``cardbridge.insights/1``)."""
    return {
        "communities": report.communities,
        "week": report.this_week,
        "weeks": report.weeks,
        "rising": [
            {"term": r.term, "this_week": r.this_week, "trailing_average": r.trailing, "ratio": r.ratio}
            for r in report.rising
        ],
        "terms": [{"term": t.key, "weekly": list(t.weekly), "total": t.total} for t in report.terms],
        "products": [
            {"product_id": t.key, "name": t.label, "weekly": list(t.weekly), "total": t.total} for t in report.products
        ],
        "most_talked_about": [_product(h) for h in report.most_talked],
        "talked_about_not_selling": [_product(h) for h in report.talked_not_selling],
        "selling_not_talked_about": [_product(h) for h in report.selling_not_talked],
    }


def demand_data(found: list[CommunityDemand]) -> dict[str, Any]:
    """The ``--json`` document of ``cardbridge insights demand`` (``cardbridge.insights-demand/1``)."""
    return {
        "demand": [
            {
                "community": d.community,
                "topic_id": d.topic.topic_id,
                "title": d.topic.title,
                "tags": list(d.topic.tags),
                "likes": d.topic.like_count,
                "replies": d.topic.reply_count,
                "views": d.topic.views,
                "created_at": timestamp(d.topic.created_at),
                "score": d.post.score,
                "product": (
                    {
                        "product_id": d.post.product.product_id,
                        "name": d.post.product.name,
                        "similarity": d.post.product.score,
                    }
                    if d.post.product
                    else None
                ),
                "verified_buyers": d.post.verified_buyers,
            }
            for d in found
        ]
    }


def _heat(config: Config) -> HeatReport:
    settings = _insights(config)
    store = State.open(config.state_url)
    try:
        return heat_report(store, settings, list(settings.communities), utcnow())
    finally:
        store.close()


@insights_app.callback()
def insights(
    ctx: typer.Context,
    as_json: bool = JSON_OPTION,
    html: Path | None = typer.Option(
        None, "--html", metavar="FILE", help="Also write the report with its charts (demand included) to FILE."
    ),
) -> None:
    """Rising terms, products most talked about, and what is talked about but not selling (and the reverse)."""
    if ctx.invoked_subcommand is not None:
        return
    config = load(Scope.PASS)
    report = _heat(config)
    if html is not None:
        from connector.server.insights_page import render_report

        with open_connector() as connector:
            found = demand_report(connector.store, _insights(config), connector.communities, utcnow())
        html.write_text(render_report(report, found), encoding="utf-8")
    if as_json:
        write_json("insights", heat_data(report))
        return
    print_heat(report)
    if html is not None:
        console.print(f"Report written to {html}")


def print_heat(report: HeatReport, out: Console = console) -> None:
    """The heat report as tables (terms and names are member and shop text: printed as text, never as markup)."""
    out.print(f"Week of {report.this_week.isoformat()} ({', '.join(report.communities)}), {len(report.weeks)} weeks")
    rising = Table(title="Rising terms (posts this week vs. the weeks before)")
    for column in ("term", "this week", "trailing average", "×"):
        rising.add_column(column)
    for r in report.rising:
        rising.add_row(Text(r.term), str(r.this_week), f"{r.trailing:g}", f"{r.ratio:g}")
    out.print(rising if report.rising else "No rising terms this week.")
    for title, rows in (
        ("Products most talked about", report.most_talked),
        ("Talked about but not selling", report.talked_not_selling),
        ("Selling but not talked about", report.selling_not_talked),
    ):
        table = Table(title=title)
        for column in ("product", "name", "posts", "paid orders"):
            table.add_column(column)
        for h in rows:
            table.add_row(Text(h.product_id), Text(h.name), str(h.mentions), str(h.paid_orders))
        out.print(table if rows else f"{title}: none.")


def print_demand(found: list[CommunityDemand], out: Console = console) -> None:
    """Demand posts as a table, best first (titles are member text: printed as text, never as markup)."""
    if not found:
        out.print("No demand posts found.")
        return
    table = Table(title=f"{len(found)} demand post(s), best first")
    for column in ("community", "topic", "title", "likes", "replies", "views", "score", "product", "verified buyers"):
        table.add_column(column)
    for d in found:
        product = f"{d.post.product.name} ({d.post.product.score:g})" if d.post.product else "no product"
        table.add_row(
            d.community,
            d.topic.topic_id,
            Text(d.topic.title),
            str(d.topic.like_count),
            str(d.topic.reply_count),
            str(d.topic.views),
            f"{d.post.score:g}",
            Text(product),
            str(d.post.verified_buyers),
        )
    out.print(table)


@insights_app.command("demand")
def demand(as_json: bool = JSON_OPTION) -> None:
    """Demand posts ranked by likes, replies, views and age, with the product each most likely means."""
    config = load(Scope.PASS)
    settings = _insights(config)
    with open_connector() as connector:
        found = demand_report(connector.store, settings, connector.communities, utcnow())
    if as_json:
        write_json("insights-demand", demand_data(found))
        return
    print_demand(found)
