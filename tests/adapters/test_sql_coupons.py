"""Coupons in the database shops (dujiaoka, acg-faka) on a real MariaDB: the writing user apart from the reading one,
and what ``cardbridge check`` says of it.

The scratch databases are built from the shops' own DDL (tests/fixtures), with the users an operator makes: a reader,
the coupon writer with exactly the GRANTs the README gives, a writer allowed too much and one allowed too little. The
fixtures here are shared by tests/adapters/test_sql_coupons_*.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from adapters.checks import Check
from adapters.coupons import CouponIssuer, CouponSpec, CouponsUnavailable
from adapters.shops.acgfaka import AcgFakaSettings, AcgFakaShop
from adapters.shops.dujiaoka import DujiaokaSettings, DujiaokaShop
from connector.core.settings import validate_table

MARIADB = os.environ.get("CARDBRIDGE_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306")
FIXTURES = Path(__file__).parent.parent / "fixtures"
PASSWORD = "pw-Coupon-s3cret"
HOST = "127.0.0.1"


def statements(path: Path, prefix: str = "") -> list[str]:
    body = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("--"))
    return [s.strip().replace("__PREFIX__", prefix) for s in body.split(";") if s.strip()]


#: The GRANTs the README recommends for the coupon writer, per shop ({db} and {user} filled in).
RECOMMENDED = {
    "dujiaoka": [
        "GRANT SELECT, INSERT ON `{db}`.`coupons` TO {user}",
        "GRANT INSERT ON `{db}`.`coupons_goods` TO {user}",
    ],
    "acgfaka": ["GRANT SELECT, INSERT ON `{db}`.`acg_coupon` TO {user}"],
}
#: A writer allowed too much (the whole database) and one allowed too little (no INSERT).
BROAD = ["GRANT SELECT, INSERT, UPDATE, DELETE ON `{db}`.* TO {user}"]
NARROW = {
    "dujiaoka": ["GRANT SELECT ON `{db}`.`coupons` TO {user}"],
    "acgfaka": ["GRANT SELECT ON `{db}`.`acg_coupon` TO {user}"],
}


@dataclass
class ShopDb:
    kind: str
    name: str
    engine: Engine  # root, on the scratch database
    urls: dict[str, str] = field(default_factory=dict)  # role → URL of that user
    opened: list[Any] = field(default_factory=list)

    def shop(self, writer: str | None = "writer", **keys: Any) -> Any:
        """The adapter as an operator configures it: the reader in database_url, ``writer`` in coupon_database_url."""
        table: dict[str, Any] = {"kind": self.kind, "database_url": self.urls["reader"], "connect_timeout_seconds": 2}
        if writer is not None:
            table["coupon_database_url"] = self.urls[writer]
        table.update(keys)
        if self.kind == "dujiaoka":
            adapter: Any = DujiaokaShop(validate_table(DujiaokaSettings, table, "shop"))
        else:
            adapter = AcgFakaShop(validate_table(AcgFakaSettings, table, "shop"))
        self.opened.append(adapter)
        return adapter

    def rows(self, query: str, **values: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), values))


def _admin() -> Engine:
    admin = create_engine(MARIADB + "/", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:  # MariaDB is part of the test environment: not there is a failure, not a skip
        pytest.fail(f"MariaDB is required for the SQL shop coupon tests ({MARIADB}): {error}")
    return admin


def scratch(kind: str) -> Iterator[ShopDb]:
    admin = _admin()
    name = f"{kind}_cp_{uuid.uuid4().hex[:10]}"
    tag = uuid.uuid4().hex[:8]
    users = {role: f"cb_{role[:6]}_{tag}" for role in ("reader", "writer", "broad", "narrow")}
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    engine = create_engine(f"{MARIADB}/{name}?charset=utf8mb4", isolation_level="AUTOCOMMIT")
    ddl = FIXTURES / ("dujiaoka/coupons.sql" if kind == "dujiaoka" else "acgfaka/coupon.sql")
    grants = {
        "reader": ["GRANT SELECT ON `{db}`.* TO {user}"],
        "writer": RECOMMENDED[kind],
        "broad": BROAD,
        "narrow": NARROW[kind],
    }
    db = ShopDb(kind, name, engine)
    try:
        with engine.connect() as conn:
            for statement in statements(ddl, "acg_"):
                conn.execute(text(statement))
            for role, user in users.items():
                conn.execute(text(f"CREATE USER '{user}'@'{HOST}' IDENTIFIED BY '{PASSWORD}'"))
                for grant in grants[role]:
                    conn.execute(text(grant.format(db=name, user=f"'{user}'@'{HOST}'")))
        for role, user in users.items():
            db.urls[role] = (
                make_url(f"{MARIADB}/{name}?charset=utf8mb4")
                .set(username=user, password=PASSWORD)
                .render_as_string(hide_password=False)
            )
        yield db
    finally:
        for adapter in db.opened:
            adapter.close()
        engine.dispose()
        with admin.connect() as conn:
            for user in users.values():
                conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{HOST}'"))
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


@pytest.fixture(params=["dujiaoka", "acgfaka"])
def any_shop(request: pytest.FixtureRequest) -> Iterator[ShopDb]:
    db_iter = scratch(request.param)
    db = next(db_iter)
    if db.kind == "dujiaoka":  # a coupon is bound to goods: the shop needs one
        with db.engine.connect() as conn:
            conn.execute(text(GOODS), {"id": 1})
    yield db
    for _ in db_iter:  # pragma: no cover - the generator's cleanup
        pass


#: A dujiaoka goods row (the NOT NULL columns of install.sql:332-356 without a default).
GOODS = (
    "INSERT INTO goods (id, group_id, gd_name, gd_description, gd_keywords, actual_price) "
    "VALUES (:id, 1, '王者荣耀 点券', '', '', 60)"
)
TABLE = {"dujiaoka": "coupons", "acgfaka": "acg_coupon"}


def spec(code: str = "CB-7K3Q9D2MXW4P", amount: str = "5", kind: str = "fixed_cart", **more: Any) -> CouponSpec:
    return CouponSpec(
        code=code,
        amount=Decimal(amount),
        type=kind,  # type: ignore[arg-type]
        email=more.pop("email", "buyer@example.com"),
        expires_at=more.pop("expires_at", None),
        description=more.pop("description", "CardBridge redemption r:forum:123"),
    )


def by_what(checks: list[Check]) -> dict[str, Check]:
    return {c.what: c for c in checks}


def test_without_the_coupon_key_no_coupon_is_made_and_the_key_is_named(any_shop):
    shop = any_shop.shop(writer=None)
    assert isinstance(shop, CouponIssuer)
    why = shop.coupons_ready()
    assert why is not None and "coupon_database_url" in why
    with pytest.raises(CouponsUnavailable, match="coupon_database_url"):
        shop.create_coupon(spec())
    with pytest.raises(CouponsUnavailable):
        shop.find_coupon("CB-7K3Q9D2MXW4P")
    assert not [c for c in shop.check() if "coupon" in c.what]  # redemption is optional: check says nothing
    assert any_shop.rows(f"SELECT * FROM {TABLE[any_shop.kind]}") == []


def test_the_reading_user_cannot_write_a_coupon_even_with_the_writer_configured(any_shop):
    shop = any_shop.shop()
    assert shop.coupons_ready() is None
    with pytest.raises(DBAPIError) as denied, shop.engine.begin() as conn:  # database_url: the reader
        conn.execute(text(f"INSERT INTO {TABLE[any_shop.kind]} (`id`) VALUES (99)"))
    assert denied.value.orig.args[0] in (1142, 1792)  # ER_TABLEACCESS_DENIED_ERROR / read-only transaction
    # and the session is read-only even for a user that could write (belt and braces, sql.py _read_only)
    root = any_shop.shop(writer=None, database_url=f"{MARIADB}/{any_shop.name}?charset=utf8mb4")
    with pytest.raises(DBAPIError) as read_only, root.engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {TABLE[any_shop.kind]} (`id`) VALUES (99)"))
    assert read_only.value.orig.args[0] == 1792  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    assert any_shop.rows(f"SELECT * FROM {TABLE[any_shop.kind]}") == []


def test_the_recommended_grants_pass_every_coupon_check(any_shop):
    checks = list(any_shop.shop().check())
    coupon = [c for c in checks if c.what.startswith("coupon") or "is unique" in c.what]
    assert coupon and all(c.ok for c in coupon), coupon
    found = by_what(checks)
    assert found["coupon writer may make coupons"].detail.startswith(needs(any_shop.kind))
    assert found["coupon writer: connect"].detail.startswith("cb_writer_")
    assert found["coupon writer writes nothing else"].ok
    unique = next(c for c in coupon if "is unique" in c.what)
    assert ("idx_coupon" if any_shop.kind == "dujiaoka" else "UNIQUE index code") in unique.detail
    for line in checks:
        assert PASSWORD not in line.detail + line.fix


def test_a_writer_that_may_write_elsewhere_is_too_broad_and_check_names_the_grant_to_use(any_shop):
    checks = by_what(any_shop.shop(writer="broad").check())
    assert checks["coupon writer may make coupons"].ok  # it can make coupons …
    broad = checks["coupon writer writes nothing else"]
    assert not broad.ok  # … and much else
    assert f"UPDATE on `{any_shop.name}`.*" in broad.detail and "DELETE" in broad.detail
    assert broad.fix.startswith("use a user with only: GRANT SELECT, INSERT ON ")
    for grant in RECOMMENDED[any_shop.kind]:
        assert grant.format(db=any_shop.name, user="")[:-4] in broad.fix


def test_a_writer_without_insert_fails_check_with_the_grant_and_cannot_make_a_coupon(any_shop):
    shop = any_shop.shop(writer="narrow")
    checks = by_what(shop.check())
    may = checks["coupon writer may make coupons"]
    assert not may.ok
    assert f"INSERT on {TABLE[any_shop.kind]}" in may.detail
    assert may.fix.startswith(RECOMMENDED[any_shop.kind][0].format(db=any_shop.name, user="")[:-4])
    with pytest.raises(DBAPIError) as denied:
        shop.create_coupon(spec())
    assert denied.value.orig.args[0] == 1142
    assert "CB-7K3Q9D2MXW4P" not in str(denied.value)  # the code is a secret: not in the error


def test_a_coupon_table_without_its_unique_key_fails_check(any_shop):
    index = "idx_coupon" if any_shop.kind == "dujiaoka" else "code"
    with any_shop.engine.connect() as conn:
        conn.execute(text(f"ALTER TABLE {TABLE[any_shop.kind]} DROP INDEX `{index}`"))
    unique = next(c for c in any_shop.shop().check() if "is unique" in c.what)
    assert not unique.ok and "twins" in unique.detail
    assert unique.fix.startswith("restore it: CREATE UNIQUE INDEX")


def test_a_wrong_writer_password_is_one_line_naming_the_coupon_key(any_shop):
    any_shop.urls["wrong"] = make_url(any_shop.urls["writer"]).set(password="nope").render_as_string(False)
    checks = [c for c in any_shop.shop(writer="wrong").check() if c.what.startswith("coupon")]
    assert [(c.what, c.ok) for c in checks] == [("coupon writer", False)]
    assert "1045" in checks[0].detail and "shop.coupon_database_url" in checks[0].fix


def needs(kind: str) -> str:
    if kind == "dujiaoka":
        return "SELECT on coupons, INSERT on coupons, INSERT on coupons_goods"
    return "SELECT on acg_coupon, INSERT on acg_coupon"
