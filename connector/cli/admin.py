"""Admin commands on the state store: ``status``, ``outbox list`` and ``retry``, ``conflicts``, ``reviews``,
``points``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import typer
from rich.table import Table

from connector.cli.app import app, console, fail, load_local, open_connector, open_store
from connector.cli.output import JSON_OPTION, customer_name, timestamp, write_json
from connector.cli.status import print_status, status_data
from connector.core.logs import mask_email
from connector.flow import describe_customer
from connector.state import State
from connector.state.tables import OutboxRow

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

#: What ``outbox list --status`` takes: an action's states, from planned to settled.
OUTBOX_STATUSES = ("pending", "sending", "failed", "dead", "done", "superseded")
OUTBOX_COLUMNS = ("id", "community", "kind", "op", "target", "customer", "status", "attempts", "next try", "last error")


@app.command()
def status(as_json: bool = JSON_OPTION) -> None:
    """Show cursors, the outbox, unmatched customers, quarantined records and failed actions."""
    store = open_store()  # status needs only the store: no shop or forum client is opened
    data = status_data(store)
    store.close()
    if as_json:
        write_json("status", data)
        return
    print_status(console, data)


@outbox_app.command("retry")
def outbox_retry(
    ids: list[int] | None = typer.Argument(None, help="Action ids (default: every dead action)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Put dead actions back in the queue; the next pass sends them."""
    store = open_store()
    status = {row.id: row.status for row in store.outbox.outbox_rows(ids)} if ids else {}
    dead = [i for i in ids or () if status.get(i) == "dead"]
    # retry_dead(None) retries every dead action: only when no id was given.
    count = store.outbox.retry_dead(dead) if dead else 0 if ids else store.outbox.retry_dead(None)
    store.close()
    unknown = [i for i in ids or () if i not in status]
    not_dead = [i for i in ids or () if i in status and status[i] != "dead"]
    if as_json:
        # What was done is the result, also when some ids were refused (the line on stderr and exit 1 say so).
        not_dead_rows = [{"id": i, "status": status[i]} for i in not_dead]
        write_json("outbox-retry", {"queued": count, "unknown": unknown, "not_dead": not_dead_rows})
    else:
        console.print(f"{count} dead action(s) queued again.")
    if unknown or not_dead:
        raise fail(
            "; ".join(
                ([f"no such action: {', '.join(map(str, unknown))}"] if unknown else [])
                + (
                    [f"not dead, left as they are: {', '.join(f'{i} ({status[i]})' for i in not_dead)}"]
                    if not_dead
                    else []
                )
            )
            + " (see `cardbridge status`)",
            1,
        )


@outbox_app.command("list")
def outbox_list(
    status: str | None = typer.Option(
        None, "--status", help=f"Only actions in this state: {', '.join(OUTBOX_STATUSES)}.", show_default=False
    ),
    community: str | None = typer.Option(None, "--community", metavar="NAME", help="Only this community's actions."),
    limit: int = typer.Option(50, "--limit", min=1, metavar="N", help="Show the newest N actions."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List outbox actions, newest first: what, for whom, its state, attempts, next try and last error."""
    if status is not None and status not in OUTBOX_STATUSES:
        raise typer.BadParameter(f"{status!r}: use one of {', '.join(OUTBOX_STATUSES)}", param_hint="'--status'")
    local = load_local()
    store = State.open(local.state_url)
    try:
        total, rows = store.status.actions(status, community, limit)
        known = store.status.communities() if community is not None and total == 0 else []
    finally:
        store.close()
    if community is not None and total == 0 and community not in (*local.community_names, *known):
        named = ", ".join(sorted({*local.community_names, *known})) or "none"
        raise typer.BadParameter(
            f"{community!r} is neither a configured community nor one with actions (known: {named})",
            param_hint="'--community'",
        )
    if as_json:
        chosen = {"status": status, "community": community, "limit": limit}
        write_json("outbox-list", {"filter": chosen, "total": total, "actions": [_action_data(row) for row in rows]})
        return
    table = Table(title=f"{len(rows)} of {total} action(s)" if total > len(rows) else f"{total} action(s)")
    for column in OUTBOX_COLUMNS:
        table.add_column(column)
    for row in rows:
        when = _next_try(row)
        next_try = f"{when:%Y-%m-%d %H:%M:%S} UTC" if when else ""
        table.add_row(
            str(row.id),
            row.community,
            row.kind,
            row.op,
            row.target,
            customer_name(row.customer_key) or "",
            row.status,
            str(row.attempts),
            next_try,
            mask_email(row.last_error or "")[:120],
        )
    console.print(table)


def _next_try(row: OutboxRow) -> datetime | None:
    """When a pass may send it next: only a pending or failed action waits for a time (a dead one keeps the time of
    its last backoff, which nothing waits for)."""
    return row.next_attempt_at if row.status in ("pending", "failed") else None


def _action_data(row: OutboxRow) -> dict[str, Any]:
    """One action of ``outbox list --json``; the customer and the error as the table shows them (no email)."""
    when = _next_try(row)
    return {
        "id": row.id,
        "community": row.community,
        "kind": row.kind,
        "op": row.op,
        "target": row.target,
        "customer": customer_name(row.customer_key),
        "user": row.remote_username,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": timestamp(when) if when else None,
        # A remote's error may quote an email (a look-up, a validation message): masked as `status` does.
        "last_error": mask_email(row.last_error) if row.last_error else None,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
    }


@conflicts_app.callback()
def conflicts_list(ctx: typer.Context, as_json: bool = JSON_OPTION) -> None:
    """List open conflicts (what changed on the forum, and why the connector stopped)."""
    if ctx.invoked_subcommand is not None:
        return
    store = open_store()
    rows = store.reviews.conflicts()
    store.close()
    if as_json:
        conflicts = [
            {
                "id": row.id,
                "community": row.community,
                "kind": row.kind,
                "target": row.target,
                "reason": row.reason,
                "created_at": timestamp(row.created_at),
            }
            for row in rows
        ]
        write_json("conflicts", {"conflicts": conflicts})
        return
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
    as_json: bool = JSON_OPTION,
) -> None:
    """Decide a conflict. The next pass applies the decision."""
    if keep not in ("shop", "forum"):
        raise typer.BadParameter("--keep takes shop or forum")
    with open_connector() as connector:
        try:
            message = connector.resolve_conflict(conflict_id, keep)
        except KeyError:
            raise fail(f"No open conflict with id {conflict_id}.", 1) from None
        # Resolved just now, so it is there (no longer open).
        [row] = [row for row in connector.store.reviews.conflicts(open_only=False) if row.id == conflict_id]
    if as_json:
        what = {"id": conflict_id, "community": row.community, "kind": row.kind, "target": row.target, "keep": keep}
        write_json("conflicts-resolve", {**what, "message": message})
        return
    console.print(message)


@reviews_app.command("held")
def reviews_held(as_json: bool = JSON_OPTION) -> None:
    """Reviews waiting for approval before they are posted."""
    reviews = load_local().reviews
    hold = reviews is not None and reviews.hold
    store = open_store()
    # Without hold, nothing waits: an unapproved review is posted (or was) by the pass, so it is not listed.
    rows = store.reviews.held() if hold else []
    store.close()
    if as_json:
        held = [
            # Member text whole and verbatim: JSON escapes what it must, a consumer decides how to show it.
            {
                "id": row.id,
                "product_id": row.product_id,
                "rating": row.rating,
                "text": row.text,
                "created_at": timestamp(row.created_at),
            }
            for row in rows
        ]
        write_json("reviews-held", {"hold": hold, "reviews": held})
        return
    if not hold:
        console.print("[reviews] hold is off: reviews are posted without approval.")
    table = Table(title=f"{len(rows)} review(s) held")
    for column in ("id", "product", "rating", "text"):
        table.add_column(column)
    for row in rows:
        # Member text, shown verbatim (the console reads no markup).
        table.add_row(row.id, str(row.product_id), str(row.rating), row.text[:80])
    console.print(table)


@reviews_app.command("approve")
def reviews_approve(
    review_ids: list[str] = typer.Argument(..., help="Shop review ids."), as_json: bool = JSON_OPTION
) -> None:
    """Release held reviews; the next pass posts them."""
    store = open_store()
    reviews = store.reviews
    missing = [i for i in review_ids if not reviews.approve(i)]
    store.close()
    if as_json:
        # The known ids were approved also when some were not (the line on stderr and exit 1 say which).
        approved = [i for i in review_ids if i not in missing]
        write_json("reviews-approve", {"approved": approved, "unknown": missing})
    if missing:
        raise fail(f"Unknown review id(s): {', '.join(missing)} (run `cardbridge sync` first?)", 1)
    if not as_json:
        console.print(f"{len(review_ids)} review(s) approved; they are posted on the next pass.")


@points_app.command("show")
def points_show(
    customer: str = typer.Argument(..., help="Shop customer id (26 or c:26) or email."), as_json: bool = JSON_OPTION
) -> None:
    """A member's points ledger: every award and reversal, and the total."""
    store = open_store()
    keys = store.identities.find_customers(customer)
    rows = store.reviews.point_rows(keys) if keys else []
    store.close()
    if not keys:
        raise fail(f"No customer matches {mask_email(customer)!r}.", 1)  # a typed email is not echoed whole
    if as_json:
        events = [
            {"key": row.key, "points": row.points, "reason": row.reason, "created_at": timestamp(row.created_at)}
            for row in rows
        ]
        customers = [describe_customer(k, None) for k in keys]
        write_json("points-show", {"customers": customers, "events": events, "total": sum(r.points for r in rows)})
        return
    table = Table(title=f"Points of {', '.join(describe_customer(k, None) for k in keys)}")
    for column in ("event", "points", "why", "when"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.key, f"{row.points:+d}", row.reason, row.created_at.isoformat()[:19])
    console.print(table)
    console.print(f"Total: {sum(r.points for r in rows)}")
