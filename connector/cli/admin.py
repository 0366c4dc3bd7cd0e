"""Admin commands on the state store: ``status``, ``outbox retry``, ``conflicts``, ``reviews``, ``points``."""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from connector.cli.app import app, console, fail, load, open_connector, open_store
from connector.cli.status import print_status, status_data
from connector.flow import describe_customer

outbox_app = typer.Typer(help="Inspect and retry outbox actions.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(outbox_app, name="outbox")
conflicts_app = typer.Typer(
    help="Posts a moderator changed on the forum: list them and decide.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
app.add_typer(conflicts_app, name="conflicts")
reviews_app = typer.Typer(
    help="Reviews held for approval ([reviews] hold = true).", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(reviews_app, name="reviews")
points_app = typer.Typer(help="Points earned in the shop.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(points_app, name="points")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show cursors, the outbox, unmatched customers, quarantined records and failed actions."""
    store = open_store()  # status needs only the store: no shop or forum client is opened
    data = status_data(store)
    store.close()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    print_status(console, data)


@outbox_app.command("retry")
def outbox_retry(
    ids: list[int] | None = typer.Argument(None, help="Action ids (default: every dead action)."),
) -> None:
    """Put dead actions back in the queue; the next pass sends them."""
    store = open_store()
    status = {row.id: row.status for row in store.outbox.outbox_rows(ids)} if ids else {}
    dead = [i for i in ids or () if status.get(i) == "dead"]
    # retry_dead(None) retries every dead action: only when no id was given.
    count = store.outbox.retry_dead(dead) if dead else 0 if ids else store.outbox.retry_dead(None)
    store.close()
    console.print(f"{count} dead action(s) queued again.")
    unknown = [str(i) for i in ids or () if i not in status]
    not_dead = [f"{i} ({status[i]})" for i in ids or () if i in status and status[i] != "dead"]
    if unknown or not_dead:
        raise fail(
            "; ".join(
                ([f"no such action: {', '.join(unknown)}"] if unknown else [])
                + ([f"not dead, left as they are: {', '.join(not_dead)}"] if not_dead else [])
            )
            + " (see `cardbridge status`)",
            1,
        )


@conflicts_app.callback()
def conflicts_list(ctx: typer.Context) -> None:
    """List open conflicts (what changed on the forum, and why the connector stopped)."""
    if ctx.invoked_subcommand is not None:
        return
    store = open_store()
    rows = store.reviews.conflicts()
    store.close()
    if not rows:
        console.print("No open conflicts.")
        return
    table = Table(title="Open conflicts")
    for column in ("id", "community", "what", "reason", "since"):
        table.add_column(column)
    for row in rows:
        # Targets and reasons carry shop ids and the forum's own words: shown as text (the console reads no markup).
        table.add_row(
            str(row.id), row.community, f"{row.kind} #{row.target}", row.reason, row.created_at.isoformat()[:19]
        )
    console.print(table)
    console.print("Resolve with: cardbridge conflicts resolve ID --keep shop|forum")


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: int = typer.Argument(..., help="Conflict id (see `cardbridge conflicts`)."),
    keep: str = typer.Option(
        ...,
        "--keep",
        help="shop: put the shop's review back (a deleted topic: open a new one); forum: keep the moderator's version.",
    ),
) -> None:
    """Decide a conflict. The next pass applies the decision."""
    if keep not in ("shop", "forum"):
        raise typer.BadParameter("--keep takes shop or forum")
    with open_connector() as connector:
        try:
            message = connector.resolve_conflict(conflict_id, keep)
        except KeyError:
            raise fail(f"No open conflict with id {conflict_id}.", 1) from None
    console.print(message)


@reviews_app.command("held")
def reviews_held() -> None:
    """Reviews waiting for approval before they are posted."""
    reviews = load().reviews
    store = open_store()
    # Without hold, nothing waits: an unapproved review is posted (or was) by the pass, so it is not listed.
    rows = store.reviews.held() if reviews is not None and reviews.hold else []
    store.close()
    if reviews is None or not reviews.hold:
        console.print("[reviews] hold is off: reviews are posted without approval.")
    table = Table(title=f"{len(rows)} review(s) held")
    for column in ("id", "product", "rating", "text"):
        table.add_column(column)
    for row in rows:
        # Member text, shown verbatim (the console reads no markup).
        table.add_row(row.id, str(row.product_id), str(row.rating), row.text[:80])
    console.print(table)


@reviews_app.command("approve")
def reviews_approve(review_ids: list[str] = typer.Argument(..., help="Shop review ids.")) -> None:
    """Release held reviews; the next pass posts them."""
    store = open_store()
    reviews = store.reviews
    missing = [i for i in review_ids if not reviews.approve(i)]
    store.close()
    if missing:
        raise fail(f"Unknown review id(s): {', '.join(missing)} (run `cardbridge sync` first?)", 1)
    console.print(f"{len(review_ids)} review(s) approved; they are posted on the next pass.")


@points_app.command("show")
def points_show(customer: str = typer.Argument(..., help="Shop customer id (26 or c:26) or email.")) -> None:
    """A member's points ledger: every award and reversal, and the total."""
    store = open_store()
    keys = store.identities.find_customers(customer)
    rows = store.reviews.point_rows(keys) if keys else []
    store.close()
    if not keys:
        raise fail(f"No customer matches {customer!r}.", 1)
    table = Table(title=f"Points of {', '.join(describe_customer(k, None) for k in keys)}")
    for column in ("event", "points", "why", "when"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.key, f"{row.points:+d}", row.reason, row.created_at.isoformat()[:19])
    console.print(table)
    console.print(f"Total: {sum(r.points for r in rows)}")
