"""``cardbridge check`` of a dujiaoka shop whose coupon writer is set up (``[shop] coupon_database_url``), as an
operator runs it: the writer with exactly the README's GRANTs passes every coupon line; a writer that may write the
whole database fails "writes nothing else" with the GRANT to use; the passwords never show."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.adapters.test_sql_coupons import FIXTURES, statements
from tests.e2e.test_dujiaoka import shop_db  # noqa: F401  (the throw-away MariaDB database fixture)

PASSWORD = "pw-E2e-Coupon-s3cret"


@pytest.fixture
def coupon_shop(world: Any, shop_db: Any) -> Iterator[Any]:  # noqa: F811
    """The dujiaoka test database with the shop's own coupon tables, a reader, the coupon writer (README grants) and
    a writer allowed the whole database; the config reads their URLs from the environment."""
    engine, url = shop_db
    database = make_url(url).database
    tag = uuid.uuid4().hex[:8]
    users = {"reader": f"cb_rd_{tag}", "writer": f"cb_wr_{tag}", "broad": f"cb_br_{tag}"}
    grants = {
        "reader": ["GRANT SELECT ON `{db}`.* TO {u}"],
        "writer": ["GRANT SELECT, INSERT ON `{db}`.`coupons` TO {u}", "GRANT INSERT ON `{db}`.`coupons_goods` TO {u}"],
        "broad": ["GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO {u}"],
    }
    with engine.connect() as conn:
        for statement in statements(FIXTURES / "dujiaoka/coupons.sql"):
            if "CREATE TABLE `goods`" not in statement:  # the e2e database has its goods table
                conn.execute(text(statement))
        conn.execute(text("INSERT INTO goods (id, gd_name, actual_price, type) VALUES (1, '王者荣耀 点券', 60, 1)"))
        for role, user in users.items():
            conn.execute(text(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'"))
            for grant in grants[role]:
                conn.execute(text(grant.format(db=database, u=f"'{user}'@'127.0.0.1'")))
    world.urls = {
        role: make_url(url).set(username=user, password=PASSWORD).render_as_string(hide_password=False)
        for role, user in users.items()
    }
    world.set_shop(
        'kind = "dujiaoka"\ndatabase_url = "${DJ_READER_URL}"\ncoupon_database_url = "${DJ_COUPON_URL}"\n'
        "connect_timeout_seconds = 2"
    )
    yield world
    with engine.connect() as conn:
        for user in users.values():
            conn.execute(text(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'"))


def shop_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if " shop: " in line or line.startswith(("✓ shop", "✗ shop"))]


def test_check_passes_the_coupon_writer_with_the_readme_grants(coupon_shop):
    world = coupon_shop
    run = world.cli("check", DJ_READER_URL=world.urls["reader"], DJ_COUPON_URL=world.urls["writer"])
    coupon = [line for line in shop_lines(run.stdout) if "coupon" in line]
    assert coupon and all(line.startswith("✓") for line in coupon), run.stdout
    assert any("coupon writer may make coupons" in line for line in coupon), run.stdout
    assert any("idx_coupon" in line for line in coupon), run.stdout
    assert PASSWORD not in run.output


def test_check_fails_a_coupon_writer_that_may_write_the_whole_database(coupon_shop):
    world = coupon_shop
    run = world.cli("check", DJ_READER_URL=world.urls["reader"], DJ_COUPON_URL=world.urls["broad"])
    assert run.code == 1, run.output
    broad = [line for line in run.stdout.splitlines() if "writes nothing else" in line]
    assert broad and broad[0].startswith("✗"), run.stdout
    assert "too broad" in run.stdout and "GRANT SELECT, INSERT ON `" in run.stdout
    assert PASSWORD not in run.output
