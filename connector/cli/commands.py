"""The ``cardbridge`` command line (typer + rich)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from connector import __version__
from connector.cli.progress import progress_bar
from connector.core.config import Config, ConfigError, load_config
from connector.core.logs import configure, mask_email
from connector.flow.pass_ import Connector, PassReport, describe_customer
from connector.state.db import open_engine
from connector.state.reviews import ReviewStore
from connector.state.store import StateStore

app = typer.Typer(
    help="CardBridge: verified-buyer badges, groups and roles for your shop's community.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
outbox_app = typer.Typer(help="Inspect and retry outbox actions.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")
conflicts_app = typer.Typer(
    help="Posts a moderator changed on the forum: list them and decide.", invoke_without_command=True
)
app.add_typer(conflicts_app, name="conflicts")
reviews_app = typer.Typer(help="Reviews held for approval ([reviews] hold = true).", no_args_is_help=True)
app.add_typer(reviews_app, name="reviews")
points_app = typer.Typer(help="Points earned in the shop.", no_args_is_help=True)
app.add_typer(points_app, name="points")

console = Console()
errors = Console(stderr=True)


class _State:
    config_path: str | None = None


state = _State()


def _version(value: bool) -> None:
    if value:
        console.print(f"cardbridge {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    config: str | None = typer.Option(
        None, "--config", "-c", help="Config file (TOML). Defaults to $CARDBRIDGE_CONFIG.", show_default=False
    ),
    log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning or error."),
    log_json: bool | None = typer.Option(
        None, "--log-json/--log-console", help="Log format; JSON by default when stderr is not a terminal."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    state.config_path = config
    configure(level=log_level, json=log_json)


def _config() -> Config:
    try:
        return load_config(state.config_path)
    except ConfigError as error:
        errors.print(f"[bold red]config error:[/] {error}", highlight=False)
        raise typer.Exit(2) from None


def _store() -> StateStore:
    return StateStore(open_engine(_config().state_url))


@contextmanager
def _connector() -> Iterator[Connector]:
    config = _config()
    try:
        connector = Connector(config)
    except ConfigError as error:
        errors.print(f"[bold red]config error:[/] {error}", highlight=False)
        raise typer.Exit(2) from None
    try:
        yield connector
    finally:
        connector.close()


def _summary(report: PassReport, title: str) -> None:
    table = Table(title=title, show_header=False, box=None)
    table.add_row("orders read", str(report.orders_read))
    table.add_row("orders new or changed", str(report.orders_changed))
    table.add_row("actions planned", str(report.actions_planned))
    table.add_row("actions delivered", str(report.delivered))
    if report.recovered:
        table.add_row("interrupted actions found applied", str(report.recovered))
    table.add_row("customers matched / still unmatched", f"{report.matched} / {report.unmatched}")
    if report.quarantined:
        table.add_row("[yellow]records quarantined[/]", str(report.quarantined))
    if report.failed or report.died:
        table.add_row("[red]actions failed (will retry)[/]", str(report.failed))
        table.add_row("[red]actions parked as dead[/]", str(report.died))
    for name, counts in report.requests.items():
        table.add_row(
            f"requests to {name}",
            f"{counts['requests']} ({counts['writes']} writes, {counts['rate_limited']} rate-limited)",
        )
    console.print(table)
    if report.errors or report.failures:
        console.print("[bold red]Problems:[/]")
        for line in report.errors:
            console.print(f"  • {line}", highlight=False)
        for line in report.failures[:10]:
            console.print(f"  • {line}", highlight=False)
        if len(report.failures) > 10:
            console.print(f"  … and {len(report.failures) - 10} more (see `cardbridge status`)")


@app.command()
def sync() -> None:
    """Run one pass: read what changed in the shop, then grant and revoke on the communities."""
    with _connector() as connector:
        report = connector.run_pass()
    _summary(report, "sync")
    raise typer.Exit(0 if report.ok else 1)


def _parse_date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD or an ISO-8601 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def backfill(
    since: str | None = typer.Option(
        None, "--since", help="Only orders modified on or after this date (YYYY-MM-DD)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan; make no write request to any community."),
) -> None:
    """Re-read the whole shop (ignoring cursors) and bring every community in step."""
    start = _parse_date(since) if since else None
    with _connector() as connector:
        bar, progress = progress_bar(errors, transient=not errors.is_terminal)
        with bar:
            report = connector.run_pass(full=True, since=start, dry_run=dry_run, progress=progress)
    if dry_run:
        _print_plan(report)
    _summary(report, "backfill (dry run)" if dry_run else "backfill")
    raise typer.Exit(0 if report.ok else 1)


def _print_plan(report: PassReport) -> None:
    table = Table(title=f"Plan: {len(report.plan)} actions (nothing was sent)")
    for column in ("community", "customer", "action", "what"):
        table.add_column(column)
    for action in report.plan[:200]:
        table.add_row(
            action.community,
            describe_customer(action.customer_key, action.email),
            action.op,
            f"{action.kind} {action.target}",
        )
    console.print(table)
    if len(report.plan) > 200:
        console.print(f"… and {len(report.plan) - 200} more")


def status_data(store: StateStore) -> dict[str, object]:
    """Everything `status` shows, as plain data (the JSON form is this, verbatim)."""
    counts = store.outbox_counts()
    unmatched = store.unmatched_counts()
    quarantine_total, quarantined = store.quarantined()
    problems = store.problem_actions()
    return {
        "cursors": store.cursors(),
        "outbox": {k: counts[k] for k in ("pending", "sending", "failed", "dead", "done")},
        "unmatched_customers": sum(unmatched.values()),
        "unmatched_by_community": unmatched,
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
        "totals": store.totals(),
        "open_conflicts": len(ReviewStore(store.engine).conflicts()),
        "overrides": store.overrides(),
    }


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show cursors, the outbox, unmatched customers, quarantined records and failed actions."""
    store = _store()  # status needs only the store: no shop or forum client is opened
    data = status_data(store)
    store.engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    _print_status(data)


def _print_status(data: dict) -> None:  # type: ignore[type-arg]
    table = Table(title="CardBridge status", show_header=False)
    table.add_column("what")
    table.add_column("value")
    for stream, cursor in data["cursors"].items():
        table.add_row(f"cursor {stream}", f"{cursor['value']}  (saved {cursor['updated_at'][:19]})")
    if not data["cursors"]:
        table.add_row("cursors", "none yet: run `cardbridge sync` or `cardbridge backfill`")
    outbox = data["outbox"]
    table.add_row("outbox", ", ".join(f"{k} {v}" for k, v in outbox.items()))
    table.add_row("unmatched customers", str(data["unmatched_customers"]))
    table.add_row("quarantined records", str(data["quarantined"]["count"]))
    totals = data["totals"]
    table.add_row("orders (paid)", f"{totals['orders']} ({totals['paid_orders']})")
    table.add_row("grants in effect", str(totals["granted"]))
    table.add_row("open conflicts", str(data["open_conflicts"]))
    console.print(table)
    if data["quarantined"]["records"]:
        q = Table(title="Quarantined shop records")
        for column in ("stream", "record", "reason"):
            q.add_column(column)
        for record in data["quarantined"]["records"]:
            q.add_row(record["stream"], record["record_id"], record["reason"])
        console.print(q)
    if data["problems"]:
        p = Table(title="Failed and dead actions")
        for column in ("id", "status", "community", "action", "user", "attempts", "error"):
            p.add_column(column)
        for row in data["problems"]:
            p.add_row(
                str(row["id"]),
                row["status"],
                row["community"],
                row["action"],
                str(row["user"]),
                str(row["attempts"]),
                row["error"][:120],
            )
        console.print(p)


@outbox_app.command("retry")
def outbox_retry(
    ids: list[int] | None = typer.Argument(None, help="Action ids (default: every dead action)."),
) -> None:
    """Put dead actions back in the queue; the next pass sends them."""
    store = _store()
    count = store.retry_dead(ids or None)
    store.engine.dispose()
    console.print(f"{count} dead action(s) queued again.")


@conflicts_app.callback()
def conflicts_list(ctx: typer.Context) -> None:
    """List open conflicts (what changed on the forum, and why the connector stopped)."""
    if ctx.invoked_subcommand is not None:
        return
    store = _store()
    rows = ReviewStore(store.engine).conflicts()
    store.engine.dispose()
    if not rows:
        console.print("No open conflicts.")
        return
    table = Table(title="Open conflicts")
    for column in ("id", "community", "what", "reason", "since"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row.id), row.community, f"{row.kind} #{row.target}", row.reason, row.created_at.isoformat()[:19]
        )
    console.print(table)
    console.print("Resolve with: cardbridge conflicts resolve ID --keep shop|forum")


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: int = typer.Argument(..., help="Conflict id (see `cardbridge conflicts`)."),
    keep: str = typer.Option(
        ..., "--keep", help="shop: put the shop's review back; forum: keep the moderator's version."
    ),
) -> None:
    """Decide a conflict. The next pass applies the decision."""
    if keep not in ("shop", "forum"):
        raise typer.BadParameter("--keep takes shop or forum")
    with _connector() as connector:
        try:
            message = connector.content.resolve(conflict_id, keep)
        except KeyError:
            errors.print(f"No open conflict with id {conflict_id}.")
            raise typer.Exit(1) from None
    console.print(message)


@reviews_app.command("held")
def reviews_held() -> None:
    """Reviews waiting for approval before they are posted."""
    store = _store()
    rows = ReviewStore(store.engine).held()
    store.engine.dispose()
    table = Table(title=f"{len(rows)} review(s) held")
    for column in ("id", "product", "rating", "text"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.id, str(row.product_id), str(row.rating), row.text[:80])
    console.print(table)


@reviews_app.command("approve")
def reviews_approve(review_ids: list[str] = typer.Argument(..., help="Shop review ids.")) -> None:
    """Release held reviews; the next pass posts them."""
    store = _store()
    reviews = ReviewStore(store.engine)
    missing = [i for i in review_ids if not reviews.approve(i)]
    store.engine.dispose()
    if missing:
        errors.print(f"Unknown review id(s): {', '.join(missing)} (run `cardbridge sync` first?)")
        raise typer.Exit(1)
    console.print(f"{len(review_ids)} review(s) approved; they are posted on the next pass.")


@points_app.command("show")
def points_show(customer: str = typer.Argument(..., help="Shop customer id (26 or c:26) or email.")) -> None:
    """A member's points ledger: every award and reversal, and the total."""
    store = _store()
    keys = store.find_customers(customer)
    rows = ReviewStore(store.engine).point_rows(keys) if keys else []
    store.engine.dispose()
    if not keys:
        errors.print(f"No customer matches {customer!r}.")
        raise typer.Exit(1)
    table = Table(title=f"Points of {', '.join(describe_customer(k, None) for k in keys)}")
    for column in ("event", "points", "why", "when"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.key, f"{row.points:+d}", row.reason, row.created_at.isoformat()[:19])
    console.print(table)
    console.print(f"Total: {sum(r.points for r in rows)}")


def _community_of(connector: Connector, kind: str, name: str | None) -> str:
    names = [n for n, c in connector.config.communities.items() if c.kind == kind]
    if name:
        if name not in names:
            errors.print(f"No {kind} community named {name!r} (known: {', '.join(names) or 'none'}).")
            raise typer.Exit(2)
        return name
    if len(names) != 1:
        errors.print(f"Say which {kind} community with --community ({', '.join(names) or 'none configured'}).")
        raise typer.Exit(2)
    return names[0]


@app.command()
def link(
    customer: str = typer.Option(..., "--customer", help="Shop customer id (26 or c:26) or email."),
    discord_user: str | None = typer.Option(None, "--discord-user", help="Discord user id (a number)."),
    forum_user: str | None = typer.Option(None, "--forum-user", help="Discourse username."),
    community: str | None = typer.Option(None, "--community", help="Which community, when there are several."),
) -> None:
    """Link a shop customer to a Discord or Discourse account; a previous account loses the managed grants."""
    if bool(discord_user) == bool(forum_user):
        errors.print("Give exactly one of --discord-user or --forum-user.")
        raise typer.Exit(2)
    with _connector() as connector:
        keys = connector.store.find_customers(customer)
        if not keys:
            errors.print(f"No customer matches {customer!r} (run `cardbridge sync` first?).")
            raise typer.Exit(1)
        if discord_user:
            if not discord_user.isdigit():
                errors.print("--discord-user is the user's id (a number; Developer Mode > Copy User ID).")
                raise typer.Exit(2)
            name, user_id, username = _community_of(connector, "discord", community), discord_user, discord_user
        else:
            name = _community_of(connector, "discourse", community)
            found = connector.communities[name].client.http.request("GET", f"/u/{forum_user}.json").json()["user"]
            user_id, username = str(found["id"]), str(found["username"])
        previous = connector.store.link(name, keys[0], user_id, username)
        report = connector.run_pass()
    console.print(
        f"{describe_customer(keys[0], None)} linked to {username} on {name}"
        + (f" (was {previous}; its grants are revoked)" if previous else "")
        + "."
    )
    _summary(report, "sync")
    raise typer.Exit(0 if report.ok else 1)


@app.command("link-url")
def link_url(
    customer: str = typer.Option(..., "--customer", help="Shop customer id (26 or c:26) or email."),
) -> None:
    """Print a signed link to the member link page for this customer (for the shop's order email; see [link])."""
    with _connector() as connector:
        if connector.config.link is None:
            errors.print("No [link] section in the config: the link page is off (see config.example.toml).")
            raise typer.Exit(2)
        keys = connector.store.find_customers(customer)
        if not keys:
            errors.print(f"No customer matches {customer!r} (run `cardbridge sync` first?).")
            raise typer.Exit(1)
        from connector.server.linking import LinkService

        service = LinkService(
            connector.config, connector.store, connector.communities[connector.config.link.community]
        )
        url = service.link_url(keys[0])
    # Printed bare, so a shop's mail template can take it from stdout.
    print(url)
    errors.print(
        f"Valid for {connector.config.link.link_ttl_hours} hours, for {describe_customer(keys[0], None)}."
    )


@app.command()
def unlink(
    customer: str = typer.Option(..., "--customer", help="Shop customer id or email."),
    community: str = typer.Option(..., "--community", help="The community to unlink from."),
) -> None:
    """Unlink a customer from a community account; the account loses the grants CardBridge gave it."""
    with _connector() as connector:
        keys = connector.store.find_customers(customer)
        if not keys or community not in connector.communities:
            errors.print("Unknown customer or community.")
            raise typer.Exit(1)
        previous = connector.store.link(community, keys[0], None, None)
        report = connector.run_pass()
    console.print(f"Unlinked {describe_customer(keys[0], None)} from {previous or 'nothing'} on {community}.")
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def reconcile() -> None:
    """Read who really holds each badge, group and Discord role, record hand removals per [policy], then run a pass."""
    with _connector() as connector:
        report = PassReport()
        drift = connector.reconcile(report)
        after = connector.run_pass()
    for line in drift:
        console.print(f"  • {line}", highlight=False)
    left = report.members_left
    console.print(f"{len(drift) - left} manual removal(s) found." + (f" {left} member(s) left." if left else ""))
    after.errors[:0] = report.errors
    _summary(after, "reconcile")
    raise typer.Exit(0 if after.ok else 1)


@app.command()
def run() -> None:
    """Run as a daemon: scheduled passes, webhooks, /healthz, /metrics and a status page ([schedule], [server])."""
    from connector.server.daemon import serve

    with _connector() as connector:
        serve(connector)


@app.command()
def demo() -> None:
    """Zero config: run CardBridge against a sandbox shop and forum on loopback and show the result."""
    from connector.cli.demo import run_demo

    raise typer.Exit(run_demo(console))


@app.command()
def sandbox(
    orders: int = typer.Option(0, help="Generate this many orders (0: the small demo catalogue)."),
    shop_port: int = typer.Option(0, help="Port of the sandbox shop (0: any free port)."),
    forum_port: int = typer.Option(0, help="Port of the sandbox forum (0: any free port)."),
    rate_limit: int | None = typer.Option(None, help="Forum admin-API limit, requests per minute (default: none)."),
    latency: float = typer.Option(0.0, help="Seconds added to every sandbox response."),
    forum_users: bool = typer.Option(True, help="Give every buyer a forum account with the same email."),
    discord_bucket: str | None = typer.Option(
        None,
        help="Also serve a sandbox Discord whose per-route buckets allow N requests per S seconds ('N/S'); "
        "every buyer is a member, with the id member_base + their index.",
    ),
) -> None:
    """Serve the sandbox WooCommerce shop and Discourse forum (and Discord) on 127.0.0.1 until interrupted (prints
    one JSON line)."""
    from sandbox.serve import serve

    bucket = None
    if discord_bucket is not None:
        try:
            count, _, seconds = discord_bucket.partition("/")
            bucket = (int(count), float(seconds or "1"))
        except ValueError:
            errors.print("--discord-bucket: use N/SECONDS, e.g. 25/1")
            raise typer.Exit(2) from None
    serve(
        orders=orders,
        shop_port=shop_port,
        forum_port=forum_port,
        rate_limit=rate_limit,
        forum_users=forum_users,
        latency=latency,
        discord_bucket=bucket,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
