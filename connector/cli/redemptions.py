"""``cardbridge redemptions``: members' redemptions of points for shop coupons — list, approve, cancel, retry.

Codes are never shown here (they are the member's; the shop's admin sees its coupons): a redemption is named by its
id, its request key and the shop's coupon id.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from connector.cli.app import app, console, fail, open_store
from connector.cli.output import JSON_OPTION, timestamp, write_json
from connector.flow import describe_customer
from connector.state.redemptions import RedemptionRow

redemptions_app = typer.Typer(
    help="Redemptions of points for shop coupons: list, approve, cancel (points back), retry.",
    invoke_without_command=True,
    rich_markup_mode=None,
)
app.add_typer(redemptions_app, name="redemptions")

COLUMNS = ("id", "community", "customer", "points", "coupon", "status", "answer", "attempts", "last error", "when")


def _data(row: RedemptionRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "community": row.community,
        "customer": describe_customer(row.customer_key, None) if row.customer_key else None,
        "points": row.points,
        "amount": row.amount,
        "coupon_type": row.coupon_type,
        "status": row.status,
        "reason": row.reason,
        "coupon_id": row.coupon_ref,
        "answer": row.reply,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": timestamp(row.created_at),
    }


@redemptions_app.callback()
def redemptions_list(
    ctx: typer.Context,
    as_json: bool = JSON_OPTION,
    limit: int = typer.Option(200, "--limit", min=1, metavar="N", help="Show the newest N redemptions."),
) -> None:
    """List redemptions, newest first, with their counts by status."""
    if ctx.invoked_subcommand is not None:
        return
    store = open_store()
    rows = store.redemptions.listing(limit=limit)
    counts = store.redemptions.counts()
    store.close()
    if as_json:
        write_json("redemptions", {"redemptions": [_data(row) for row in rows], "counts": counts})
        return
    if not rows:
        console.print("No redemptions yet.")
        return
    table = Table(title=f"{len(rows)} redemption(s)")
    for column in COLUMNS:
        table.add_column(column)
    for row in rows:
        data = _data(row)
        status = f"{row.status} ({row.reason})" if row.reason else row.status
        table.add_row(
            str(row.id),
            row.community,
            str(data["customer"] or "-"),
            str(row.points),
            f"{row.amount or '-'} {row.coupon_type or ''}".strip(),
            status,
            row.reply,
            str(row.attempts),
            row.last_error or "",
            row.created_at.isoformat()[:19],
        )
    console.print(table)
    console.print("Waiting ones: cardbridge redemptions approve ID; give points back: cardbridge redemptions cancel ID")


def _change(command: str, redemption_id: int, as_json: bool, done: bool, message: str, refusal: str) -> None:
    if as_json:
        write_json(
            f"redemptions-{command}", {"id": redemption_id, "changed": done, "message": message if done else refusal}
        )
    if not done:
        raise fail(refusal, 1)
    if not as_json:
        console.print(message)


def _current(redemption_id: int) -> RedemptionRow | None:
    store = open_store()
    row = store.redemptions.by_id(redemption_id)
    store.close()
    return row


def _refusal(redemption_id: int, wanted: str) -> str:
    row = _current(redemption_id)
    if row is None or row.command != "redeem":
        return f"No redemption with id {redemption_id}."
    return f"Redemption {redemption_id} is {row.status}; only a {wanted} one can be changed so."


@redemptions_app.command("approve")
def redemptions_approve(
    redemption_id: int = typer.Argument(..., help="Redemption id (see `cardbridge redemptions`)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Let a waiting redemption go ahead: the next pass makes the coupon and sends the member the code."""
    store = open_store()
    done = store.redemptions.approve(redemption_id)
    store.close()
    message = f"Redemption {redemption_id} approved; the coupon is made on the next pass."
    _change("approve", redemption_id, as_json, done, message, "" if done else _refusal(redemption_id, "waiting"))


@redemptions_app.command("cancel")
def redemptions_cancel(
    redemption_id: int = typer.Argument(..., help="Redemption id (see `cardbridge redemptions`)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Give a redemption's points back and tell the member. A coupon that was made is never taken back."""
    store = open_store()
    done = store.redemptions.cancel(redemption_id)
    store.close()
    message = f"Redemption {redemption_id} cancelled; its points are back and the member is told on the next pass."
    refusal = "" if done else _refusal(redemption_id, "waiting, reserved or parked")
    _change("cancel", redemption_id, as_json, done, message, refusal)


@redemptions_app.command("retry")
def redemptions_retry(
    redemption_id: int = typer.Argument(..., help="Redemption id (see `cardbridge redemptions`)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Try a parked redemption's coupon, or its parked answer, again on the next pass (its points stay reserved)."""
    store = open_store()
    done = store.redemptions.retry(redemption_id)
    store.close()
    message = f"Redemption {redemption_id} is tried again on the next pass."
    _change("retry", redemption_id, as_json, done, message, "" if done else _refusal(redemption_id, "parked"))
