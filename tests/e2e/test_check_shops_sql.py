"""``cardbridge check`` for the database shops (dujiaoka, acg-faka) on the local MariaDB: a read-only user on the
upstream schema passes everything but the index the incremental query needs (the upstream schemas have none), whose
fix is the CREATE INDEX to run; a read-write user fails "SELECT-only"; a wrong password, a wrong prefix and a missing
column fail where they are, naming the key; no password ever shows."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from adapters.checks import Check, SelfCheck
from adapters.shops.acgfaka import AcgFakaSettings, AcgFakaShop
from adapters.shops.dujiaoka import DujiaokaSettings, DujiaokaShop
from connector.core.settings import validate_table
from tests.e2e.test_acgfaka import DDL as ACG_DDL
from tests.e2e.test_dujiaoka import shop_db  # noqa: F401  (the throw-away MariaDB database fixture)

PASSWORD = "pw-Check-s3cret"


@pytest.fixture
def users(shop_db: Any) -> Iterator[Callable[[str], str]]:  # noqa: F811
    """A read-only and a read-write user on the test database; ``url("ro")`` is a database_url for one of them."""
    engine, url = shop_db
    database = make_url(url).database
    tag = uuid.uuid4().hex[:8]
    names = {"ro": f"cb_ro_{tag}", "rw": f"cb_rw_{tag}"}
    grants = {"ro": "SELECT", "rw": "SELECT, INSERT, UPDATE, DELETE"}
    try:
        with engine.connect() as conn:
            for role, name in names.items():
                conn.execute(text(f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'"))
                conn.execute(text(f"GRANT {grants[role]} ON `{database}`.* TO '{name}'@'127.0.0.1'"))
    except Exception as error:  # not every server lets the tests create users
        pytest.skip(f"the local MariaDB does not let the tests create users: {type(error).__name__}")

    def for_user(role: str) -> str:
        return make_url(url).set(username=names[role], password=PASSWORD).render_as_string(hide_password=False)

    yield for_user
    with engine.connect() as conn:
        for name in names.values():
            conn.execute(text(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'"))


def checks_of(adapter: Any) -> list[Check]:
    assert isinstance(adapter, SelfCheck)
    try:
        found = list(adapter.check())
    finally:
        adapter.close()
    for line in found:
        assert PASSWORD not in line.detail + line.fix and "s3cret" not in line.detail + line.fix
        assert "IDENTIFIED BY PASSWORD" not in line.detail  # SHOW GRANTS lines carry the password hash
    return found


def dujiaoka(database_url: str, **keys: Any) -> list[Check]:
    table = {"kind": "dujiaoka", "database_url": database_url, "connect_timeout_seconds": 2, **keys}
    return checks_of(DujiaokaShop(validate_table(DujiaokaSettings, table, "shop")))


def acgfaka(database_url: str, **keys: Any) -> list[Check]:
    table = {"kind": "acgfaka", "database_url": database_url, "connect_timeout_seconds": 2, **keys}
    return checks_of(AcgFakaShop(validate_table(AcgFakaSettings, table, "shop")))


def lines(checks: list[Check]) -> list[tuple[str, bool]]:
    return [(c.what, c.ok) for c in checks]


def test_dujiaoka_read_only_user_on_the_upstream_schema_lacks_only_the_updated_at_index(shop_db, users):  # noqa: F811
    engine, _ = shop_db
    checks = dujiaoka(users("ro"))
    assert lines(checks) == [
        ("connect to the database", True),
        ("table orders", True),
        ("table goods", True),
        ("user is SELECT-only", True),
        ("index on orders.updated_at", False),
    ]
    assert "127.0.0.1:3306" in checks[0].detail
    index = checks[-1]
    assert "install.sql" in index.detail and "EXPLAIN of the sync query: a full table scan" in index.detail
    assert "meanwhile each pass reads by primary key the orders created in the last 31 days" in index.detail
    assert index.fix.endswith("CREATE INDEX `idx_updated_at` ON `orders` (`updated_at`, `id`);")
    assert "never creates" in index.fix
    with engine.connect() as conn:  # nothing was created by the check
        assert not conn.execute(text("SHOW INDEX FROM orders WHERE Column_name = 'updated_at'")).all()
        conn.execute(text(index.fix.split(": ", 1)[1]))  # the DBA runs the fix
    again = dujiaoka(users("ro"))
    assert all(c.ok for c in again), again
    assert "index idx_updated_at" in again[-1].detail


def test_dujiaoka_read_write_user_is_not_select_only(users):
    checks = dujiaoka(users("rw"))
    grants = next(c for c in checks if c.what == "user is SELECT-only")
    assert not grants.ok
    assert "DELETE" in grants.detail and "INSERT" in grants.detail and "UPDATE" in grants.detail
    assert grants.fix.startswith("create a read-only user: GRANT SELECT ON `dujiaoka_")
    assert "shop.database_url" in grants.fix


def test_a_wrong_password_fails_the_connection_and_names_the_key(users):
    url = make_url(users("ro")).set(password="not-the-pw").render_as_string(hide_password=False)
    checks = dujiaoka(url)
    assert lines(checks) == [("connect to the database", False)]
    assert "1045" in checks[0].detail and "127.0.0.1:3306" in checks[0].detail and "not-the-pw" not in checks[0].detail
    assert "shop.database_url" in checks[0].fix


def test_a_database_that_is_not_there_is_one_line_naming_host_and_port():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    checks = dujiaoka(f"mysql+pymysql://reader:{PASSWORD}@127.0.0.1:{port}/dujiaoka")
    assert lines(checks) == [("connect to the database", False)]
    assert f"127.0.0.1:{port}" in checks[0].detail and "shop.database_url" in checks[0].fix


def test_a_missing_column_and_a_wrong_prefix_are_named(shop_db, users):  # noqa: F811
    engine, _ = shop_db
    with engine.connect() as conn:
        conn.execute(text("ALTER TABLE goods DROP COLUMN gd_name"))
    checks = dujiaoka(users("ro"))
    goods = next(c for c in checks if c.what == "table goods")
    assert not goods.ok and "gd_name" in goods.detail
    prefixed = dujiaoka(users("ro"), table_prefix="dj_")
    orders = next(c for c in prefixed if c.what == "table dj_orders")
    assert not orders.ok and "shop.table_prefix" in orders.fix
    assert not any(c.what.startswith("index on") for c in prefixed)  # no index to look for on a missing table


def test_acgfaka_read_only_user_lacks_only_the_pay_time_index(shop_db, users):  # noqa: F811
    engine, _ = shop_db
    with engine.connect() as conn:
        for statement in ACG_DDL:
            conn.execute(text(statement))
    checks = acgfaka(users("ro"))
    assert lines(checks) == [
        ("connect to the database", True),
        ("table acg_order", True),
        ("table acg_user", True),
        ("table acg_commodity", True),
        ("user is SELECT-only", True),
        ("index on acg_order.pay_time", False),
    ]
    index = checks[-1]
    assert "Install.sql" in index.detail and "EXPLAIN of the sync query: scans by PRIMARY" in index.detail
    assert index.fix.endswith("CREATE INDEX `idx_pay_time` ON `acg_order` (`pay_time`);")
    with engine.connect() as conn:
        conn.execute(text(index.fix.split(": ", 1)[1]))
    assert all(c.ok for c in acgfaka(users("ro")))
    rw = next(c for c in acgfaka(users("rw")) if c.what == "user is SELECT-only")
    assert not rw.ok and "GRANT SELECT ON" in rw.fix
