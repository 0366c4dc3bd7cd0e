"""Issue 14: `backfill --dry-run` shows the complete plan (grants, review posts with their text, points) and writes
nothing: not to the forum, not to the state store (SQLite or PostgreSQL), which it does not even create."""

from __future__ import annotations

import sqlite3

from sqlalchemy import create_engine, inspect, text

from tests.e2e.test_reviews_points import reviews_world  # noqa: F401  (the fixture)


def dump(path) -> list[str]:
    """Every row of the SQLite store, as SQL text (what an operator would call its content)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        return list(conn.iterdump())


def plan_lines(stdout: str) -> int:
    head = next(line for line in stdout.splitlines() if line.strip().startswith("Plan:"))
    return int(head.split("Plan:")[1].split()[0])


def test_dry_run_lists_every_action_the_real_backfill_sends_and_creates_no_store(reviews_world):  # noqa: F811
    world = reviews_world
    dry = world.cli("backfill", "--dry-run")
    assert dry.code == 0, dry.output
    assert not world.db_path.exists()  # the store was not even created
    assert world.forum.writes() == []
    planned = plan_lines(dry.stdout)
    # Review posts carry their rendered text, points their amount: the plan is what the forum would get.
    assert "review" in dry.stdout and "Verified purchase" in dry.stdout, dry.stdout
    assert "points" in dry.stdout and "+" in dry.stdout

    real = world.cli("backfill")
    assert real.code == 0, real.output
    summary = {line.split("  ")[0].strip(): line.split()[-1] for line in real.stdout.splitlines() if "  " in line}
    delivered = int(summary["actions delivered"])
    assert planned == delivered, (dry.stdout, real.stdout)
    # The dry run stored no orders, so the real run found them all new.
    assert int(summary["orders new or changed"]) == 2, real.stdout


def test_dry_run_leaves_an_existing_sqlite_store_as_it_was(reviews_world):  # noqa: F811
    world = reviews_world
    assert world.cli("sync").code == 0
    world.shop.set_status(world.bob_order, "refunded")  # something to plan: a revoke and a points reversal
    before = dump(world.db_path)
    world.forum.reset_log()
    dry = world.cli("backfill", "--dry-run")
    assert dry.code == 0, dry.output
    assert "revoke" in dry.stdout, dry.stdout
    assert dump(world.db_path) == before
    assert world.forum.writes() == []
    again = world.cli("backfill", "--dry-run")  # the same plan again: nothing was kept between the two
    assert plan_lines(again.stdout) == plan_lines(dry.stdout)


def test_dry_run_reads_a_postgresql_store_and_writes_nothing_to_it(pg_world):
    world = pg_world
    card = world.shop.add_product("王者荣耀 点券 60元", "60.00")
    world.shop.add_order(email="pg@example.com", items=[(card, 1)], status="completed")
    world.forum.add_user("pg", "pg@example.com")
    assert world.cli("sync").code == 0
    world.shop.add_order(email="new@example.com", items=[(card, 1)], status="completed")
    world.forum.add_user("newbie", "new@example.com")
    engine = create_engine(world.pg_url)

    def content() -> dict[str, list[tuple[object, ...]]]:
        with engine.connect() as conn:
            return {
                table: sorted(map(tuple, conn.execute(text(f'SELECT * FROM "{table}"'))), key=repr)
                for table in inspect(engine).get_table_names()
            }

    try:
        before = content()
        dry = world.cli("backfill", "--dry-run")
        assert dry.code == 0, dry.output
        assert "newbie" in dry.stdout or "new@" in dry.stdout or "grant" in dry.stdout, dry.stdout
        assert plan_lines(dry.stdout) >= 2  # the new buyer's badge and group
        assert content() == before
        assert not world.db_path.exists()
    finally:
        engine.dispose()
