"""One pass at a time: a second ``sync``/``backfill``/``reconcile`` on the same state store (SQLite or PostgreSQL)
says who runs and exits 75, or waits with ``--wait``; never a traceback, never a buyer's email."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import PG_ADMIN_URL, _postgres_database

LOCKED = 75
EMAILS = [f"lock{i}@example.com" for i in range(6)]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request, world) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield "sqlite"
        return
    admin, name = _postgres_database()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    world.config_path.write_text(
        world.config_path.read_text().replace('url = "sqlite:///state.db"', f'url = "{url}"'), encoding="utf-8"
    )
    try:
        yield "postgresql"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def _stock(world) -> None:  # type: ignore[no-untyped-def]
    card = world.shop.add_product("Steam 充值卡 100", "100.00")
    for i, email in enumerate(EMAILS):
        world.forum.add_user(f"lock{i}", email)
        world.shop.add_order(email=email, items=[(card, 1)], status="completed")


def _wait_for(predicate, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _said(stderr: str) -> list[str]:
    """What the CLI printed on stderr besides its JSON log lines."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def _no_leak(output: str) -> None:
    assert "Traceback" not in output
    assert "[parameters:" not in output
    for email in EMAILS:
        assert email not in output


def test_two_backfills_at_once_one_runs_the_other_says_who(world, store_kind):
    _stock(world)
    # Both processes are held at the shop's first orders page, so without a lock they write the same rows together.
    world.shop.knobs.add_fault(r"/orders", kind="delay", seconds=6, times=2)
    first, second = world.spawn("backfill"), world.spawn("backfill")
    outs = [p.communicate(timeout=180) for p in (first, second)]
    codes = sorted([first.returncode, second.returncode])
    both = "".join(o + e for o, e in outs)
    assert codes == [0, LOCKED], both
    _no_leak(both)
    loser = outs[[first.returncode, second.returncode].index(LOCKED)]
    assert "another pass is running (backfill, pid " in loser[1]
    assert len(_said(loser[1])) == 1, loser[1]
    assert sorted(world.forum.badges_of(f"lock{i}") for i in range(6)) == [["Verified Buyer"]] * 6
    grants = [
        r["body"]["username"]
        for r in world.forum.requests
        if r["method"] == "POST" and r["path"] == "/user_badges.json"
    ]
    assert sorted(grants) == [f"lock{i}" for i in range(6)]  # each badge granted once, by one process
    # The lock was released: the next pass runs.
    assert world.cli("sync").code == 0


def test_a_second_pass_waits_with_wait_then_runs(world, store_kind):
    _stock(world)
    first = world.hold_pass("backfill", seconds=5)
    locked = world.cli("sync")
    assert locked.code == LOCKED, locked.output
    assert "another pass is running (backfill, pid " in locked.stderr
    waited = world.cli("sync", "--wait", "120")
    assert waited.code == 0, waited.output
    assert first.wait(timeout=120) == 0
    _no_leak(locked.output + waited.output)


def test_reconcile_meets_the_lock_too(world):
    _stock(world)
    first = world.hold_pass("sync", seconds=5)
    run = world.cli("reconcile")
    assert run.code == LOCKED, run.output
    assert "another pass is running (sync, pid " in run.stderr
    assert first.wait(timeout=120) == 0


def test_a_killed_holder_does_not_block_the_next_pass(world):
    _stock(world)
    world.shop.knobs.add_fault(r"/orders", kind="hang_before", seconds=60, times=1)
    first = world.spawn("backfill")
    assert world.shop.knobs.hung.wait(60)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    world.shop.knobs.clear_faults()
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert world.forum.badges_of("lock0") == ["Verified Buyer"]


def test_a_database_error_during_a_pass_is_one_line_without_parameters(world):
    _stock(world)
    assert world.cli("sync").code == 0
    world.shop.add_order(email="late@example.com", items=[(world.shop.add_product("X", "1.00"), 1)], status="completed")
    with sqlite3.connect(world.db_path) as conn:  # an operator's mistake: the table the planner reads is gone
        conn.execute("DROP TABLE ledger")
    run = world.cli("sync")
    assert run.code == 1, run.output
    assert "Traceback" not in run.output and "late@example.com" not in run.output
    assert _said(run.stderr) == [
        "state store error during plan: OperationalError (run with --log-level debug for details)"
    ], run.stderr
    debug = world.cli("--log-level", "debug", "sync")
    assert debug.code == 1 and "Traceback" in debug.stderr
    assert "late@example.com" not in debug.output and "[parameters:" not in debug.output


def test_the_daemon_skips_its_rounds_while_a_cli_pass_runs(world):
    _stock(world)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    world.write_config(
        extra=f"""
[schedule]
sync_every = 1
reconcile_every = 3600
retry_every = 3600
[server]
listen = "127.0.0.1:{port}"
woocommerce_webhook_secret = "s"
"""
    )
    backfill = world.hold_pass("backfill", seconds=8)
    daemon = world.spawn("run")
    try:
        assert backfill.wait(timeout=120) == 0
        # Once the CLI's pass is over, the daemon's next round runs.
        _wait_for(lambda: _last_pass(port) is not None, seconds=60)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)
    skipped = [json.loads(line) for line in stderr.splitlines() if "pass skipped" in line]
    assert skipped, stderr
    assert skipped[0]["level"] == "info"
    assert skipped[0]["job"] == "sync" and skipped[0]["by"] == "backfill" and skipped[0]["pid"] == backfill.pid
    assert "Traceback" not in stderr


def _last_pass(port: int) -> object:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json().get("last_pass")
    except httpx.HTTPError:
        return None


def test_a_state_store_that_cannot_be_reached_is_one_line_naming_it(world):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://cardbridge:hunter2@127.0.0.1:{port}/cardbridge"
    world.config_path.write_text(
        world.config_path.read_text().replace('url = "sqlite:///state.db"', f'url = "{url}"'), encoding="utf-8"
    )
    for command in ("sync", "backfill", "reconcile"):
        run = world.cli(command)
        assert run.code == 1, run.output
        assert _said(run.stderr) == [
            f"state store error during open ([state] url postgresql://cardbridge:***@127.0.0.1:{port}/cardbridge): "
            "OperationalError (run with --log-level debug for details)"
        ], run.stderr
        assert "hunter2" not in run.output and "Traceback" not in run.output
