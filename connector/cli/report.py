"""How a pass is shown: the one-screen summary after ``sync``, ``backfill``, ``reconcile`` and ``link``, and the plan
of a dry run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector.flow import PassReport, describe_customer


def print_summary(console: Console, report: PassReport, title: str) -> None:
    table = Table(title=title, show_header=False, box=None)
    table.add_row("orders read", str(report.orders_read))
    table.add_row("orders new or changed", str(report.orders_changed))
    table.add_row("actions planned", str(report.actions_planned))
    table.add_row("actions delivered", str(report.delivered))
    if report.recovered:
        table.add_row("interrupted actions found applied", str(report.recovered))
    if report.deferred:
        until = ", ".join(f"{name} until {when:%Y-%m-%d %H:%M:%S} UTC" for name, when in report.deferred_until.items())
        table.add_row(Text("actions deferred by a rate limit", style="yellow"), f"{report.deferred} ({until})")
    table.add_row("customers matched / still unmatched", f"{report.matched} / {report.unmatched}")
    if report.quarantined:
        table.add_row(Text("records quarantined", style="yellow"), str(report.quarantined))
    if report.failed or report.died:
        table.add_row(Text("actions failed (will retry)", style="red"), str(report.failed))
        table.add_row(Text("actions parked as dead", style="red"), str(report.died))
    for name, counts in report.requests.items():
        table.add_row(
            f"requests to {name}",
            f"{counts['requests']} ({counts['writes']} writes, {counts['rate_limited']} rate-limited)",
        )
    console.print(table)
    if report.errors or report.failures:
        console.print("Problems:", style="bold red")
        for line in report.errors:
            console.print(f"  • {line}", highlight=False)
        for line in report.failures[:10]:
            console.print(f"  • {line}", highlight=False)
        if len(report.failures) > 10:
            console.print(f"  … and {len(report.failures) - 10} more (see `cardbridge status`)")


#: Characters of an action's detail (a review post's text) shown; ``--json`` has all of it.
DETAIL_WIDTH = 160


def print_plan(console: Console, report: PassReport) -> None:
    """One line per action (community, what, whom), and under it what it writes: a post's text on one line, points."""
    console.print(f"Plan: {len(report.plan)} actions (nothing was sent)", style="bold")
    for action in report.plan[:200]:
        whom = "" if action.kind == "review" else f"  {describe_customer(action.customer_key, action.email)}"
        console.print(f"  {action.community}  {action.op} {action.kind} {action.target}{whom}", highlight=False)
        if action.detail:
            detail = " ".join(action.detail.split())  # a post's lines on one line
            short = detail if len(detail) <= DETAIL_WIDTH else detail[: DETAIL_WIDTH - 1] + "…"
            console.print(f"      {short}", highlight=False, style="dim")
    if len(report.plan) > 200:
        console.print(f"… and {len(report.plan) - 200} more")
