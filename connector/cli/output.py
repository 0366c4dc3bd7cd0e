"""``--json``: how a command writes its result as one JSON document, and the document of a pass.

Every document is an object whose ``schema`` key names it and its version (``cardbridge.sync/1``); its JSON Schema is
``connector/cli/schemas/<command>.json`` (:func:`schema`). A key added to a document is a change of its schema (the
schemas allow no key they do not name), so a consumer can rely on what a version holds.

With ``--json`` stdout holds the document and nothing else: tables, progress bars and notes go to stderr or are left
out, and an error (config, pass lock, unknown id) is one line on stderr with nothing on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import Any

import typer

from connector.core.logs import mask_email
from connector.flow import PassReport, PlannedAction, describe_customer

#: The version of every document this CardBridge writes (the ``/1`` of ``cardbridge.sync/1``).
VERSION = 1

#: The ``--json`` option of every command that prints a result.
JSON_OPTION = typer.Option(
    False, "--json", help="Print the result as one JSON document (see the README); the exit code is the same."
)


def schema_id(command: str) -> str:
    """``sync`` → ``cardbridge.sync/1``; a subcommand is joined with a dash (``outbox-list``)."""
    return f"cardbridge.{command}/{VERSION}"


def timestamp(value: datetime) -> str:
    """ISO-8601 in UTC (``2026-11-30T17:49:32.120000+00:00``); a naive value is taken as UTC."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def _default(value: object) -> Any:
    """What ``json`` cannot write by itself: datetimes (ISO-8601 UTC), dates, sets (sorted)."""
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def dumps(command: str, data: Mapping[str, Any]) -> str:
    """The document for ``command``: ``schema`` first, then ``data``; indented by 2, UTF-8 text as it is."""
    document = {"schema": schema_id(command), **data}
    return json.dumps(document, indent=2, ensure_ascii=False, default=_default) + "\n"


def write_json(command: str, data: Mapping[str, Any]) -> None:
    """Write the document on stdout, built whole before the first byte (a failure cannot leave half of one)."""
    text = dumps(command, data)
    sys.stdout.write(text)
    sys.stdout.flush()


@cache
def schema(command: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``command``'s document, shipped with the package."""
    source = resources.files("connector.cli").joinpath("schemas", f"{command}.json")
    loaded: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    return loaded


def customer_name(key: str, email: str | None = None) -> str | None:
    """The customer an action is for, as the text output names them: ``customer #12``, or a masked email for a guest
    (never one in clear); None for an action no customer owns (a review post is the shop's, keyed ``shop``)."""
    return describe_customer(key, email) if key.startswith(("c:", "e:")) else None


# ---- a pass ----------------------------------------------------------------------------------------------------------

#: PassReport fields that are not counts (each has its own key in the document).
_NOT_COUNTS = frozenset({"errors", "failures", "plan", "requests", "deferred_until"})


def report_data(report: PassReport, dry_run: bool = False) -> dict[str, Any]:
    """A pass as plain data: ``ok``, every count of :class:`~connector.flow.PassReport`, the problems (emails
    masked), requests per community, how long a rate limit defers each community, and for a dry run the plan (None
    for a real pass: nothing was planned without being sent)."""
    counts = {f.name: getattr(report, f.name) for f in fields(report) if f.name not in _NOT_COUNTS}
    return {
        "ok": report.ok,
        "dry_run": dry_run,
        "counts": counts,
        "errors": [mask_email(line) for line in report.errors],
        "failures": [mask_email(line) for line in report.failures],
        "requests": {name: dict(numbers) for name, numbers in report.requests.items()},
        "deferred_until": {name: timestamp(when) for name, when in report.deferred_until.items()},
        "plan": plan_data(report.plan) if dry_run else None,
    }


def plan_data(plan: Sequence[PlannedAction]) -> list[dict[str, Any]]:
    """Each planned action; the customer as the text output names it (a shop id, or a masked email for a guest),
    never an email in clear. ``detail`` is whole (the text output shortens it)."""
    return [
        {
            "community": action.community,
            "customer": customer_name(action.customer_key, action.email),
            "kind": action.kind,
            "target": action.target,
            "op": action.op,
            "detail": mask_email(action.detail) if action.detail is not None else None,
        }
        for action in plan
    ]
