"""The operator's status page (``GET /``): server-rendered HTML with an inline SVG chart; no front-end build.

The page renders a :class:`StatusView`, plain values the daemon gathers; it knows nothing of the daemon itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any


@dataclass(frozen=True)
class Stream:
    name: str
    cursor: str
    lag_seconds: float


@dataclass(frozen=True)
class Conflict:
    id: int
    community: str
    what: str
    reason: str


@dataclass(frozen=True)
class Problem:
    """A failed or dead action; ``error`` is already masked (no email reaches the page)."""

    id: int
    status: str
    community: str
    action: str
    user: str
    attempts: int
    error: str


@dataclass(frozen=True)
class DeadEvent:
    """A webhook event given up after its last try; ``error`` is already masked."""

    id: int
    source: str
    topic: str
    resource: str
    attempts: int
    error: str


@dataclass(frozen=True)
class StatusView:
    """Everything the page shows, as plain values (built by the daemon from the state store and its own facts)."""

    #: ``healthy``, ``degraded`` or ``unhealthy`` (:func:`connector.server.health.assess`, as ``/healthz`` says).
    health: str
    streams: Sequence[Stream]
    outbox: Mapping[str, int]
    unmatched: Mapping[str, int]
    #: remote (``shop`` or a community) → when it started failing (ISO 8601).
    failing_since: Mapping[str, str]
    conflicts: Sequence[Conflict]
    #: What the last reconcile found removed by hand.
    drift: Sequence[str]
    problems: Sequence[Problem]
    #: Actions settled per hour over the last day, oldest first.
    actions_per_hour: Sequence[int]
    #: Why ``/healthz`` answers 503 (empty unless unhealthy).
    health_problems: Sequence[str] = ()
    #: Customers no look-up has answered for yet (the community failed when asked), per community.
    waiting_for_lookup: Mapping[str, int] = field(default_factory=dict)
    #: Webhook events: ``pending`` (not handled yet), ``retrying`` (of which a try failed), ``dead``.
    webhook_events: Mapping[str, int] = field(default_factory=dict)
    dead_events: Sequence[DeadEvent] = ()
    #: Redemptions of points for coupons by status, and ``points_redeemed``; empty without ``[redeem]``.
    redemptions: Mapping[str, int] = field(default_factory=dict)


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 1rem} h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;background:#fff;min-width:28rem} td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}
.ok{color:#2e7d32;font-weight:600} .bad{color:#c62828;font-weight:600} .muted{color:#777}
.warn{color:#b26a00;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(30rem,1fr));gap:1rem 2rem}
"""


#: The headline's colour per health level.
HEADLINE_CLASS = {"healthy": "ok", "degraded": "warn", "unhealthy": "bad"}


def chart(counts: list[int], width: int = 720, height: int = 160) -> str:
    """Bars of actions per hour, oldest left; the tallest bar fills the height."""
    top = max(counts) if counts and max(counts) > 0 else 1
    bar = width / max(len(counts), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 20}" role="img" '
        f'aria-label="actions per hour over the last day">',
        f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#999"/>',
    ]
    for index, count in enumerate(counts):
        h = round(count / top * (height - 10))
        x = index * bar + 2
        parts.append(
            f'<rect x="{x:.1f}" y="{height - h}" width="{bar - 4:.1f}" height="{h}" fill="#2e7d32">'
            f"<title>{count} actions</title></rect>"
        )
    parts.append(f'<text x="0" y="{height + 15}" font-size="11" fill="#777">24 h ago</text>')
    parts.append(f'<text x="{width - 30}" y="{height + 15}" font-size="11" fill="#777">now</text></svg>')
    return "".join(parts)


def _table(headers: list[str], rows: list[list[Any]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_status_page(view: StatusView) -> str:
    css = HEADLINE_CLASS.get(view.health, "bad")
    state = f'<span class="{css}">{escape(view.health)}</span>'
    per_hour = list(view.actions_per_hour)
    sections = [
        f"<h1>CardBridge — {state}</h1>",
        "".join(
            f'<p class="warn">{escape(name)} failing since {escape(since)}</p>'
            for name, since in view.failing_since.items()
        ),
        "".join(f'<p class="bad">{escape(problem)}</p>' for problem in view.health_problems),
        '<div class="grid"><div>',
        "<h2>Streams</h2>",
        _table(
            ["stream", "cursor", "lag"],
            [[s.name, s.cursor, f"{s.lag_seconds:.0f} s"] for s in view.streams],
            "No pass has run yet.",
        ),
        "<h2>Outbox</h2>",
        _table(["status", "actions"], [[k, v] for k, v in view.outbox.items()], ""),
        "<h2>Unmatched customers</h2>",
        _table(["community", "customers"], [[k, v] for k, v in view.unmatched.items()], "Every buyer is matched."),
        "<h2>Waiting for a look-up</h2>",
        _table(
            ["community", "customers"],
            [[k, v] for k, v in view.waiting_for_lookup.items()],
            "None: every buyer was looked up.",
        ),
        "</div><div>",
        "<h2>Remotes failing</h2>",
        _table(["remote", "since"], [[k, v] for k, v in view.failing_since.items()], "None."),
        "<h2>Open conflicts</h2>",
        _table(
            ["id", "community", "what", "reason"],
            [[c.id, c.community, c.what, c.reason] for c in view.conflicts],
            "None.",
        ),
        "<h2>Manual removals found by the last reconcile</h2>",
        _table(["drift"], [[d] for d in view.drift], "None."),
        "<h2>Redemptions</h2>",
        _table(["status", "redemptions"], [[k, v] for k, v in view.redemptions.items()], "None yet."),
        "</div></div>",
        "<h2>Recent failures and dead actions</h2>",
        _table(
            ["id", "status", "community", "action", "user", "attempts", "error"],
            [[p.id, p.status, p.community, p.action, p.user, p.attempts, p.error[:160]] for p in view.problems],
            "None.",
        ),
        "<h2>Webhook events</h2>",
        _table(["state", "events"], [[k, v] for k, v in view.webhook_events.items()], ""),
        _table(
            ["id", "source", "topic", "names", "tries", "last error"],
            [[e.id, e.source, e.topic, e.resource, e.attempts, e.error[:160]] for e in view.dead_events],
            "No event given up.",
        ),
        f"<h2>Actions per hour, last 24 hours ({sum(per_hour)} in all)</h2>",
        chart(per_hour),
    ]
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>CardBridge status</title>'
        f'<meta http-equiv="refresh" content="30"><style>{STYLE}</style></head><body>{"".join(sections)}</body></html>'
    )
