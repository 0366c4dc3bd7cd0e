"""``cardbridge check``: test the config, the state store and every remote before the first pass, writing nothing.

Each remote's adapter tests itself (the :class:`~adapters.checks.SelfCheck` capability: read-only requests, one
:class:`~adapters.checks.Check` per thing tested); this module adds the config and the state store, prints one line per
check (✓, ✗ with the fix, or – for what could not be tested) and exits 0 only when nothing failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.text import Text
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import CommunityAdapter, ShopAdapter
from adapters.checks import Check, CheckContext, SelfCheck, failed, passed
from adapters.contributions import ContributionSource, InteractionEndpoint, PrivateInbox
from adapters.coupons import CouponIssuer
from adapters.registry import open_community, open_shop
from connector.cli.app import app, console, load, options
from connector.cli.output import JSON_OPTION, write_json
from connector.core.config import Config, ConfigError
from connector.core.http import describe_error
from connector.state.probe import probe, sqlite_file

#: ``result`` of a line: passed, failed, or not tested (an adapter that cannot test itself).
OK, FAILED, UNTESTED = "ok", "failed", "untested"
_MARKS = {OK: ("✓", "green"), FAILED: ("✗", "red"), UNTESTED: ("–", "yellow")}


@dataclass(frozen=True)
class Line:
    """One line of the report: which part (``config``, ``state``, ``shop``, a community's name) and its check."""

    part: str
    check: Check
    result: str

    def data(self) -> dict[str, Any]:
        check = self.check
        return {"part": self.part, "what": check.what, "result": self.result, "detail": check.detail, "fix": check.fix}


def _lines(part: str, checks: Iterable[Check]) -> Iterator[Line]:
    for check in checks:
        yield Line(part, check, OK if check.ok else FAILED)


def state_checks(config: Config) -> Iterator[Check]:
    """The store can be reached and its schema is one this CardBridge can use; nothing is created or migrated."""
    url = config.state_url
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        found = probe(url)
    except SQLAlchemyError as error:
        yield failed(
            "reachable",
            f"{shown}: {_db_reason(error)}",
            "check [state] url (host, port, database, user) and that the database server runs",
        )
        return
    file = sqlite_file(url)
    if not found.exists:
        folder = file.parent if file is not None else None
        if folder is not None and not _creatable(folder):
            yield failed("can be created", f"{file}: the folder cannot be written", "choose another [state] url")
            return
        yield passed("reachable", f"{shown}: new; the first pass creates it")
        return
    if found.revision is None or found.revision > found.newest:
        # Revisions are numbered (0001, 0002, …): a larger one was written by a newer CardBridge.
        yield failed(
            "schema",
            f"{shown}: schema {found.revision} is newer than this CardBridge knows ({found.newest})",
            "upgrade CardBridge, or point [state] url at this version's store",
        )
        return
    yield passed(
        "reachable",
        f"{shown}: schema {found.revision}"
        + (f"; the next pass migrates it to {found.newest}" if found.behind else ""),
    )


def _db_reason(error: SQLAlchemyError) -> str:
    """The driver's own first line (``connection refused``, ``password authentication failed``), never the statement
    or its parameters."""
    cause = getattr(error, "orig", None) or error.__cause__
    first = str(cause).strip().splitlines()[0] if cause is not None and str(cause).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _creatable(folder: Path) -> bool:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


def _remote(
    part: str, open_adapter: Callable[[], ShopAdapter | CommunityAdapter], context: CheckContext | None = None
) -> Iterator[Line]:
    """The adapter's own checks; an adapter that cannot be opened, or whose check raises, is one failed line."""
    try:
        adapter = open_adapter()
    except ConfigError as error:
        yield Line(part, failed("configured", str(error), "fix the config key named"), FAILED)
        return
    try:
        if not isinstance(adapter, SelfCheck):
            kind = getattr(adapter, "kind", type(adapter).__name__)
            detail = f"the {kind} adapter cannot test itself; `cardbridge backfill --dry-run` reads it without writing"
            yield Line(part, Check("credentials", True, detail), UNTESTED)
            return
        try:
            yield from _lines(part, adapter.check(context))
        except Exception as error:  # a check must not stop the others: its failure is one line
            yield Line(
                part, failed("check", describe_error(error), "see the message; run with --log-level debug"), FAILED
            )
    finally:
        adapter.close()


def points_back_checks(config: Config) -> Iterator[Check]:
    """``[earn]`` and ``[redeem]``: the shop can make coupons, and each community named can do its part."""
    if config.redeem is not None:
        shop = open_shop(config)
        try:
            why = shop.coupons_ready() if isinstance(shop, CouponIssuer) else f"the {shop.kind} shop has no coupons"
        finally:
            shop.close()
        if why is None:
            yield passed("shop makes coupons", "the shop's lines above test the coupon credentials")
        else:
            yield failed("shop makes coupons", why, "set the key named (README: Points back to the shop)")
    for name in config.earn.communities if config.earn else {}:
        community = open_community(name, config)
        try:
            if not isinstance(community, ContributionSource):
                yield failed(f"{name} earns", "this community cannot list posts and their likes", f"remove earn.{name}")
        finally:
            community.close()
    redeem = config.redeem
    for name in (redeem.communities or list(config.communities)) if redeem else []:
        community = open_community(name, config)
        try:
            if isinstance(community, (PrivateInbox, InteractionEndpoint)):
                yield passed(
                    f"{name} takes redemptions",
                    "personal messages" if isinstance(community, PrivateInbox) else "slash commands",
                )
            elif redeem is not None and redeem.communities:
                yield failed(
                    f"{name} takes redemptions",
                    "this community has no private channel",
                    "remove it from redeem.communities",
                )
        finally:
            community.close()


def run_checks(config: Config) -> Iterator[Line]:
    """Every line of ``cardbridge check``, in the order they are printed."""
    yield Line("config", passed("valid", options.config_path or "$CARDBRIDGE_CONFIG"), OK)
    yield from _lines("state", state_checks(config))
    yield from _remote("shop", lambda: open_shop(config))
    for name in config.communities:
        yield from _remote(
            name,
            lambda name=name: open_community(name, config),  # type: ignore[misc]
            CheckContext.of(name, config),
        )
    if config.earn or config.redeem:
        try:
            yield from _lines("points", points_back_checks(config))
        except ConfigError as error:
            yield Line("points", failed("configured", str(error), "fix the config key named"), FAILED)


def _print(line: Line) -> None:
    mark, colour = _MARKS[line.result]
    check = line.check
    text = Text.assemble((mark, f"bold {colour}"), f" {line.part}: {check.what}")
    if check.detail:
        text.append(f" — {check.detail}")
    if line.result == FAILED and check.fix:
        text.append("; fix: ", style="bold")
        text.append(check.fix)
    console.print(text, highlight=False)


@app.command()
def check(as_json: bool = JSON_OPTION) -> None:
    """Test the config, the state store, the shop and every community (credentials, permissions, what CardBridge
    will use), writing nothing anywhere. Exit 0 when nothing failed, 1 otherwise, 2 for an invalid config."""
    config = load()
    lines: list[Line] = []
    for line in run_checks(config):
        lines.append(line)
        if not as_json:
            _print(line)
    ok = all(line.result != FAILED for line in lines)
    if as_json:
        write_json("check", {"ok": ok, "checks": [line.data() for line in lines]})
    else:
        bad = sum(line.result == FAILED for line in lines)
        console.print(f"{len(lines) - bad} of {len(lines)} checks passed." if bad else "All checks passed.")
    raise typer.Exit(0 if ok else 1)
