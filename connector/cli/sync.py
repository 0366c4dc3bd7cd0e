"""Commands that run passes: ``sync``, ``backfill``, ``reconcile``, and ``run`` (the daemon)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import typer
from sqlalchemy.exc import SQLAlchemyError

from connector.cli.app import app, config_error, console, errors, fail, load, open_connector
from connector.cli.output import JSON_OPTION, report_data, write_json
from connector.cli.progress import progress_bar
from connector.cli.report import print_plan, print_summary
from connector.core.clock import utcnow
from connector.core.config import ConfigError, Scope
from connector.core.logs import mask_email
from connector.flow import Connector, PassReport
from connector.flow import dry_run as dry_run_pass
from connector.server.health import Thresholds, record_pass
from connector.state.errors import StoreError
from connector.state.locks import PassLocked

#: Exit code when another pass holds the state store's pass lock (sysexits' EX_TEMPFAIL: try again later).
EXIT_LOCKED = 75
_WAIT_HELP = "If another pass is running, wait up to SECONDS for it to finish (default: exit 75 at once)."


@contextmanager
def _one_pass(job: str, wait: float) -> Iterator[Connector]:
    """The connector, holding the pass lock for the block. A held lock or a database error (opening the store or
    during the pass) is one line on stderr, never a traceback (the traceback is logged at debug level)."""
    try:
        with open_connector() as connector, connector.exclusive(job, wait):
            yield connector
    except PassLocked as error:
        errors.print(str(error), markup=False, highlight=False)
        raise typer.Exit(EXIT_LOCKED) from None
    except (StoreError, SQLAlchemyError) as error:
        raise _store_failure(error) from None


def _store_failure(error: StoreError | SQLAlchemyError) -> typer.Exit:
    what = str(error) if isinstance(error, StoreError) else f"state store error: {type(error).__name__}"
    return fail(f"{what} (run with --log-level debug for details)", 1)


def _dry_run(since: datetime | None) -> PassReport:
    """The backfill on a throw-away copy of the store: no pass lock is taken (the copy is a consistent snapshot) and
    nothing is written to the store, nor to any community."""
    config = load(Scope.PASS)
    bar, progress = progress_bar(errors, transient=not errors.is_terminal)
    try:
        with bar:
            return dry_run_pass(config, since=since, progress=progress)
    except ConfigError as error:
        raise config_error(error) from None
    except (StoreError, SQLAlchemyError) as error:
        raise _store_failure(error) from None


def _record(connector: Connector, job: str, report: PassReport) -> None:
    """Add this pass to the health facts the state store keeps, so `status` (and a daemon started later) know which
    remotes failed in it and since when, also when passes run from cron rather than the daemon."""
    config = connector.config
    limits = Thresholds(
        timedelta(seconds=config.server.unhealthy_after_seconds),
        config.server.unhealthy_after_failed_passes,
        timedelta(seconds=config.schedule.sync_every),
    )
    record_pass(connector.store.status.health, connector.communities, limits, job, report, utcnow)


@app.command()
def sync(
    wait: float = typer.Option(0, "--wait", metavar="SECONDS", help=_WAIT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run one pass: read what changed in the shop, then grant and revoke on the communities."""
    with _one_pass("sync", wait) as connector:
        report = connector.run_pass()
        _record(connector, "sync", report)
    if as_json:
        write_json("sync", report_data(report))
    else:
        print_summary(console, report, "sync")
    raise typer.Exit(0 if report.ok else 1)


def _parse_date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        # Parsed in the command, so name the option here (click adds it only for values it parses itself).
        raise typer.BadParameter(
            f"{value!r}: use YYYY-MM-DD or an ISO-8601 timestamp (2024-05-01T12:00:00+00:00)", param_hint="'--since'"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def backfill(
    since: str | None = typer.Option(None, "--since", help="Only orders modified on or after this date (YYYY-MM-DD)."),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Print the complete plan (grants, revokes, review posts, points); write nothing to any community or to the "
        "state store.",
    ),
    wait: float = typer.Option(0, "--wait", metavar="SECONDS", help=_WAIT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Re-read the whole shop (ignoring cursors) and bring every community in step."""
    start = _parse_date(since) if since else None
    if dry_run:
        report = _dry_run(start)
        if as_json:
            write_json("backfill", report_data(report, dry_run=True))
        else:
            print_plan(console, report)
            print_summary(console, report, "backfill (dry run)")
        raise typer.Exit(0 if report.ok else 1)
    with _one_pass("backfill", wait) as connector:
        bar, progress = progress_bar(errors, transient=not errors.is_terminal)
        with bar:
            report = connector.run_pass(full=True, since=start, progress=progress)
        _record(connector, "backfill", report)
    if as_json:
        write_json("backfill", report_data(report))
    else:
        print_summary(console, report, "backfill")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def reconcile(
    wait: float = typer.Option(0, "--wait", metavar="SECONDS", help=_WAIT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Read who really holds each badge, group and Discord role, record hand removals per [policy], then run a pass."""
    with _one_pass("reconcile", wait) as connector:
        report = PassReport()
        drift = connector.reconcile(report)
        after = connector.run_pass()
        after.errors[:0] = report.errors
        after.members_left = report.members_left  # found by the reconcile, not by the pass after it
        _record(connector, "reconcile", after)
    left, shop_lines = report.members_left, 1 if connector.orders_vanished else 0
    removals = len(drift) - left - shop_lines
    if as_json:
        drift_lines = [mask_email(line) for line in drift]  # as the pass's problems: no email in clear
        write_json("reconcile", {**report_data(after), "drift": drift_lines, "manual_removals": removals})
        raise typer.Exit(0 if after.ok else 1)
    for line in drift:
        console.print(f"  • {line}", highlight=False)
    console.print(f"{removals} manual removal(s) found." + (f" {left} member(s) left." if left else ""))
    print_summary(console, after, "reconcile")
    raise typer.Exit(0 if after.ok else 1)


@app.command()
def run() -> None:
    """Run as a daemon: scheduled passes, webhooks, /healthz, /metrics and a status page ([schedule], [server])."""
    from connector.server.daemon import CannotListen, serve  # the web stack loads only for the daemon

    with open_connector(Scope.ALL) as connector:
        try:
            serve(connector)
        except CannotListen as error:  # a busy port or a wrong address: one line naming the key, nothing started
            raise fail(str(error), 1) from None
