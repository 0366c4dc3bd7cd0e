"""The insights report as HTML: charts drawn on the server (matplotlib, SVG) and tables, for ``cardbridge insights
--html FILE`` and the daemon's ``/insights`` page (operator listener).

Member text is untrusted: terms, product names and demand titles are escaped (``html.escape`` in tables; matplotlib's
SVG writer escapes chart text, and math text is off so a ``$`` is a dollar). Charts keep their labels as SVG text
(``svg.fonttype = none``): the reader's browser draws them with its own fonts, so Chinese terms show wherever the
reader has a CJK font, though the server has none (matplotlib then only measures them with its default font).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from html import escape
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit: the server only writes files

from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from connector.flow.insights import CommunityDemand, HeatReport, ProductHeat, Trend, week_label

#: Lines per trend chart (more are unreadable).
LINES = 6
BARS = 10
STYLE: dict[Any, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "cardbridge",  # the same report draws the same SVG (ids do not change between runs)
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["Noto Sans CJK SC", "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", "DejaVu Sans"],
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    with warnings.catch_warnings():
        # Without a CJK font on the server matplotlib warns for each glyph it measures; the browser draws them.
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        warnings.filterwarnings("ignore", message="findfont")
        figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = out.getvalue()
    return text[text.index("<svg") :]  # inline: no XML prolog or DOCTYPE inside HTML


def trend_chart(title: str, trends: Sequence[Trend], weeks: Sequence[str]) -> str:
    with matplotlib.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(7, 3.2))
        for trend in trends[:LINES]:
            axes.plot(list(weeks), list(trend.weekly), marker="o", linewidth=1.8, label=trend.label)
        axes.set_title(title)
        axes.set_ylabel("posts")
        axes.set_ylim(bottom=0)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))  # posts are whole
        if trends:
            axes.legend(loc="upper left", fontsize=8, frameon=False)
        else:
            axes.text(0.5, 0.5, "no posts counted yet", ha="center", va="center", transform=axes.transAxes)
        return _svg(figure)


def demand_chart(found: Sequence[CommunityDemand]) -> str:
    shown = list(found[:BARS])[::-1]  # best on top
    with matplotlib.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(7, 0.45 * max(len(shown), 2) + 0.8))
        labels = [
            f"#{len(shown) - i} " + (d.post.product.name if d.post.product else "no product")
            for i, d in enumerate(shown)
        ]
        colors = ["#2e7d32" if d.post.product else "#c62828" for d in shown]
        axes.barh(range(len(shown)), [d.post.score for d in shown], color=colors)
        axes.set_yticks(range(len(shown)), labels)
        axes.set_xlabel("score (likes, replies, views; halved every 14 days)")
        axes.set_title("Demand posts")
        if not shown:
            axes.text(0.5, 0.5, "no demand posts", ha="center", va="center", transform=axes.transAxes)
        return _svg(figure)


def _products(title: str, rows: Sequence[ProductHeat], css: str) -> str:
    if not rows:
        return f'<section class="{css}"><h2>{escape(title)}</h2><p class="none">None.</p></section>'
    body = "".join(
        f"<tr><td>{escape(h.product_id)}</td><td>{escape(h.name)}</td><td>{h.mentions}</td><td>{h.paid_orders}</td></tr>"
        for h in rows
    )
    return (
        f'<section class="{css}"><h2>{escape(title)}</h2><table><thead><tr><th>product</th><th>name</th>'
        f"<th>posts</th><th>paid orders</th></tr></thead><tbody>{body}</tbody></table></section>"
    )


def render_body(report: HeatReport, found: Sequence[CommunityDemand]) -> str:
    """The report's content (charts and tables), without the page around it."""
    weeks = [week_label(w) for w in report.weeks]
    rising = "".join(
        f"<tr><td>{escape(r.term)}</td><td>{r.this_week}</td><td>{r.trailing:g}</td><td>{r.ratio:g}×</td></tr>"
        for r in report.rising
    )
    demand_rows = "".join(
        "<tr>"
        f"<td>{i}</td><td>{escape(d.community)}</td><td>{escape(d.topic.title)}</td><td>{d.topic.like_count}</td>"
        f"<td>{d.topic.reply_count}</td><td>{d.topic.views}</td><td>{d.post.score:g}</td>"
        f"<td>{escape(d.post.product.name) if d.post.product else '<em>no product</em>'}</td>"
        f"<td>{d.post.verified_buyers}</td></tr>"
        for i, d in enumerate(found, 1)
    )
    return (
        f'<p class="meta">Week of {report.this_week.isoformat()} · {len(report.weeks)} weeks · '
        f"{escape(', '.join(report.communities))}</p>"
        '<section class="charts">'
        f'<figure id="term-trends">{trend_chart("Terms per week", report.terms, weeks)}</figure>'
        f'<figure id="product-trends">{trend_chart("Products named per week", report.products, weeks)}</figure>'
        f'<figure id="demand-ranking">{demand_chart(found)}</figure>'
        "</section>"
        '<section class="rising"><h2>Rising terms</h2>'
        + (
            "<table><thead><tr><th>term</th><th>this week</th><th>trailing average</th><th>ratio</th></tr></thead>"
            f"<tbody>{rising}</tbody></table>"
            if rising
            else '<p class="none">None this week.</p>'
        )
        + "</section>"
        + _products("Products most talked about", report.most_talked, "most-talked")
        + _products("Talked about but not selling", report.talked_not_selling, "talked-not-selling")
        + _products("Selling but not talked about", report.selling_not_talked, "selling-not-talked")
        + '<section class="demand"><h2>Demand posts</h2>'
        + (
            "<table><thead><tr><th>#</th><th>community</th><th>title</th><th>likes</th><th>replies</th><th>views</th>"
            f"<th>score</th><th>product</th><th>verified buyers</th></tr></thead><tbody>{demand_rows}</tbody></table>"
            if demand_rows
            else '<p class="none">None.</p>'
        )
        + "</section>"
    )


CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:2rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:1.5rem}.meta{color:#666}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.charts figure{margin:0;max-width:100%}.charts svg{max-width:100%;height:auto}
table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.25rem .6rem;text-align:left}
.none{color:#666}
"""


def render_report(report: HeatReport, found: Sequence[CommunityDemand], note: str | None = None) -> str:
    """A whole HTML document (``--html FILE``, ``/insights``): no script, no remote font or stylesheet."""
    said = f'<p class="note">{escape(note)}</p>' if note else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>CardBridge insights</title>'
        f"<style>{CSS}</style></head><body><h1>CardBridge insights</h1>{said}{render_body(report, found)}"
        "</body></html>\n"
    )
