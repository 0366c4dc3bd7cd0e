"""What ``cardbridge status`` shows, read from the state store alone, and how it is printed (also by the demo)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from connector.core.clock import utcnow
from connector.core.logs import mask_email
from connector.flow import describe_customer
from connector.server.health import PASSES, SHOP, assess_snapshot
from connector.server.leadership import LEADER
from connector.state import State


def status_data(store: State) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (the JSON form is this, after its ``schema`` key)."""
    counts = store.status.outbox_counts()
    # A buyer with no email is no "unmatched" one: no look-up can find them (counted apart, below).
    unmatched = store.status.unmatched_with_email()
    waiting = store.status.waiting_for_lookup()
    quarantine_total, quarantined = store.status.quarantined()
    problems = store.status.problem_actions()
    not_due, next_at = store.status.not_due(utcnow())
    return {
        "cursors": store.records.cursors(),
        "outbox": {k: counts[k] for k in ("pending", "sending", "failed", "dead", "done")},
        # Of the pending and failed: how many wait for a later time (a backoff, a rate limit's deferral), and until when.
        "outbox_not_due": {"count": not_due, "next_at": next_at.isoformat() if next_at else None},
        "unmatched_customers": sum(unmatched.values()),
        "unmatched_by_community": unmatched,
        # Buyers no look-up has answered for yet (the community was down when asked): not "unmatched".
        "waiting_for_lookup": sum(waiting.values()),
        "waiting_for_lookup_by_community": waiting,
        "buyers_without_email": store.status.buyers_without_email(),
        "quarantined": {
            "count": quarantine_total,
            "records": [{"stream": q.stream, "record_id": q.record_id, "reason": q.reason} for q in quarantined],
        },
        "problems": [
            {
                "id": row.id,
                "status": row.status,
                "community": row.community,
                "action": f"{row.op} {row.kind} {row.target}",
                "user": row.remote_username,
                "attempts": row.attempts,
                "error": mask_email(row.last_error or ""),
            }
            for row in problems
        ],
        **health_data(store),
        "totals": store.status.totals(),
        "open_conflicts": len(store.reviews.conflicts()),
        # The ledger names a guest by their email (``e:…``): shown as the other commands show a customer.
        "overrides": [
            {**row, "customer": describe_customer(row["customer"], None)} for row in store.ledger.overrides()
        ],
        "replicas": replicas_data(store),
    }


def replicas_data(store: State) -> list[dict[str, Any]]:
    """The daemons on this store that show a heartbeat within their lease, and which one leads."""
    holder = store.locks.holder(LEADER)
    now = utcnow()
    leader = holder.process if holder and holder.expires_at and holder.expires_at >= now else None
    return [
        {
            "id": replica.id,
            "host": replica.host,
            "pid": replica.pid,
            "listen": replica.listen,
            "version": replica.version,
            "role": "leader" if replica.id == leader else "follower",
            "started_at": replica.started_at.isoformat(),
            "heartbeat_at": replica.heartbeat_at.isoformat(),
        }
        for replica in store.replicas.live(now)
    ]


def health_data(store: State) -> dict[str, Any]:
    """The health as ``/healthz`` gives it now (the same verdict, from the facts the last passes stored), and the
    communities failing; ``health`` is None when no pass was recorded yet."""
    recorded = store.status.health.load(PASSES)
    try:
        verdict = assess_snapshot(recorded.facts, utcnow()) if recorded is not None else None
    except (KeyError, TypeError, ValueError):  # kept by another version: unknown, as if none were kept
        verdict = None
    if recorded is None or verdict is None:
        return {"health": None, "communities_failing": {}}
    failing = {name: since.isoformat() for name, since in verdict.failing.items()}
    return {
        "health": {
            "level": verdict.level.value,
            "failing": failing,
            "problems": verdict.problems,
            "recorded_at": recorded.recorded_at.isoformat(),
        },
        "communities_failing": {name: since for name, since in failing.items() if name != SHOP},
    }


def _health_rows(table: Table, data: dict[str, Any]) -> None:
    health = data["health"]
    if health is None:
        table.add_row("health", "unknown: no pass recorded yet")
        table.add_row("communities failing", "unknown")
        return
    table.add_row("health", f"{health['level']} (as of the last pass, {health['recorded_at'][:19]} UTC)")
    failing = data["communities_failing"]
    table.add_row(
        "communities failing",
        Text(", ".join(f"{name} since {since[:19]} UTC" for name, since in failing.items()) or "none"),
    )
    if SHOP in health["failing"]:
        table.add_row("shop failing", f"since {health['failing'][SHOP][:19]} UTC")
    for problem in health["problems"]:
        table.add_row("unhealthy", Text(problem))


def print_status(console: Console, data: dict[str, Any]) -> None:
    table = Table(title="CardBridge status", show_header=False)
    table.add_column("what")
    table.add_column("value")
    _health_rows(table, data)
    for stream, cursor in data["cursors"].items():
        table.add_row(f"cursor {stream}", f"{cursor['value']}  (saved {cursor['updated_at'][:19]})")
    if not data["cursors"]:
        table.add_row("cursors", "none yet: run `cardbridge sync` or `cardbridge backfill`")
    outbox = data["outbox"]
    table.add_row("outbox", ", ".join(f"{k} {v}" for k, v in outbox.items()))
    if data["outbox_not_due"]["count"]:
        waiting = data["outbox_not_due"]
        table.add_row("waiting to be retried", f"{waiting['count']} (the first at {waiting['next_at'][:19]} UTC)")
    table.add_row("unmatched customers", str(data["unmatched_customers"]))
    if data["waiting_for_lookup"]:
        table.add_row("waiting for a look-up", f"{data['waiting_for_lookup']} (the next pass asks the community)")
    if data["buyers_without_email"]:
        table.add_row(
            "buyers with no email", f"{data['buyers_without_email']} (link them: link page or `cardbridge link`)"
        )
    table.add_row("quarantined records", str(data["quarantined"]["count"]))
    totals = data["totals"]
    table.add_row("orders (paid)", f"{totals['orders']} ({totals['paid_orders']})")
    table.add_row("grants in effect", str(totals["granted"]))
    table.add_row("open conflicts", str(data["open_conflicts"]))
    table.add_row(
        "daemons running",
        Text(
            ", ".join(f"{r['id']} ({r['role']}, {r['listen']})" for r in data["replicas"])
            or "none (no `cardbridge run` on this store)"
        ),
    )
    console.print(table)
    if data["quarantined"]["records"]:
        q = Table(title="Quarantined shop records")
        for column in ("stream", "record", "reason"):
            q.add_column(column)
        for record in data["quarantined"]["records"]:
            q.add_row(*(Text(str(record[k])) for k in ("stream", "record_id", "reason")))
        console.print(q)
    if data["problems"]:
        p = Table(title="Failed and dead actions")
        for column in ("id", "status", "community", "action", "user", "attempts", "error"):
            p.add_column(column)
        for row in data["problems"]:
            p.add_row(
                *(
                    Text(value)
                    for value in (
                        str(row["id"]),
                        row["status"],
                        row["community"],
                        row["action"],
                        str(row["user"]),
                        str(row["attempts"]),
                        row["error"][:120],
                    )
                )
            )
        console.print(p)
