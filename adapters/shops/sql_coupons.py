"""The coupon side (:class:`~adapters.coupons.CouponIssuer`) of the shops read from their database, and its check.

A coupon is written by a **second database user** (``[shop] coupon_database_url``) that may SELECT and INSERT on the
coupon table(s) only; the reading engine (``database_url``) stays read-only. A shop's coupon side subclasses
:class:`SqlCoupons` with its table, its code column and how a :class:`~adapters.coupons.CouponSpec` becomes a row
(:meth:`SqlCoupons.insert`) and a row a :class:`~adapters.coupons.Coupon` (:meth:`SqlCoupons.coupon`).

Exactly once: both shops keep the code in a column with a UNIQUE key (dujiaoka ``coupons.idx_coupon``, acg-faka
``coupon.code``), so a second insert of the same code, by a retry whose answer was lost or by another replica, fails
with MySQL error 1062 (ER_DUP_ENTRY, include/mysqld_error.h) and the row that is there is read back instead. The
check (:func:`coupon_checks`) proves the key exists; without it twins are possible, and the check fails.

Secrets: the code is a parameter of every statement, never part of one; the writing engine hides parameters from its
errors (``hide_parameters``) and no message here names a code.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from adapters.checks import Check, failed, passed
from adapters.coupons import Coupon, CouponRefused, CouponSpec, CouponsUnavailable
from adapters.shops.sql import SqlShop, database_engine
from adapters.shops.sql_check import WRITES, _covers, _split, _unquote
from connector.core.http import Unreachable

#: ER_DUP_ENTRY (include/mysqld_error.h): the row's UNIQUE key holds the value already.
DUPLICATE_KEY = 1062
#: Both shops keep money as ``decimal(10,2)``: at most this, in cents.
MAX_MONEY = Decimal("99999999.99")
CENT = Decimal("0.01")
KEY = "coupon_database_url"
#: A grant line: its privileges, its ``db.table`` scope (``TABLE`` may precede it).
_GRANT = re.compile(r"^GRANT\s+(?P<privileges>.+?)\s+ON\s+(?:TABLE\s+)?(?P<scope>\S+)\s+TO\s")
_DENIED = {1044, 1045}
_ALL = frozenset({"ALL", "ALL PRIVILEGES"})
MAY = "coupon writer may make coupons"


@dataclass(frozen=True)
class GrantNeed:
    """What the coupon writer does to one table (without the prefix): the privilege and the columns it names."""

    table: str
    privilege: str
    columns: tuple[str, ...]


class SqlCoupons(ABC):
    """Base of a database shop's coupon side. ``shop``: the adapter (its settings, zone, prefix and read engine).

    Subclasses set :attr:`name` (the coupon table without the prefix), :attr:`code_column`, :attr:`code_length` (the
    column's size: a longer code cannot be kept and is refused), :attr:`read_columns` and :attr:`needs` (the grants the
    writer must have, for ``check``), and implement :meth:`insert` and :meth:`coupon`.
    """

    name: str
    code_column: str
    code_length: int
    read_columns: tuple[str, ...]
    needs: tuple[GrantNeed, ...]

    def __init__(self, shop: SqlShop) -> None:
        self.shop = shop
        address = shop.config.coupon_database_url
        self.engine: Engine | None = database_engine(shop.config, address, KEY, read_only=False) if address else None

    # --- CouponIssuer -------------------------------------------------------------------------------------------

    def coupons_ready(self) -> str | None:
        if self.engine is None:
            return (
                f"set [shop] {KEY}: a database user that may SELECT and INSERT on {self.shop.prefix}{self.name} "
                "only (cardbridge check prints the GRANT); database_url stays read-only"
            )
        return None

    def find_coupon(self, code: str) -> Coupon | None:
        """The row whose code column equals ``code`` by the column's collation (both shops compare with a
        case-insensitive ``_ci`` collation, as their own ``where(code, …)`` does)."""
        engine = self._writer()
        if len(code) > self.code_length:  # cannot be in the column
            return None
        columns = ", ".join(f"`{c}`" for c in self.read_columns)
        with engine.connect() as conn:
            row = conn.execute(
                text(f"SELECT {columns} FROM {self.table} WHERE `{self.code_column}` = :code ORDER BY `id` LIMIT 1"),
                {"code": code},
            ).first()
        return None if row is None else self.coupon(row)

    def create_coupon(self, spec: CouponSpec) -> Coupon:
        engine = self._writer()
        if not spec.code or len(spec.code) > self.code_length:
            raise CouponRefused(f"the code does not fit {self.shop.prefix}{self.name}.{self.code_column}")
        self.refuse(spec)
        twin = False
        try:
            with engine.begin() as conn:  # one transaction: the coupon and whatever binds it, or nothing
                self.insert(conn, spec)
        except IntegrityError as error:
            if _code(error) != DUPLICATE_KEY:
                raise
            twin = True  # the code is there already (a lost answer, another replica): that coupon is the answer
        found = self.find_coupon(spec.code)
        if found is None:  # a duplicate on another unique key; or the row was deleted as soon as it was made
            raise CouponRefused(
                f"MySQL error {DUPLICATE_KEY} and no coupon with the code" if twin else "the coupon made is gone"
            )
        return found

    # --- what a shop says -------------------------------------------------------------------------------------

    @abstractmethod
    def refuse(self, spec: CouponSpec) -> None:
        """Raise :class:`~adapters.coupons.CouponRefused` when the shop cannot express ``spec`` (before any write)."""

    @abstractmethod
    def insert(self, conn: Connection, spec: CouponSpec) -> None:
        """Insert the coupon (and what binds it) in ``conn``'s transaction, as the shop's own admin would."""

    @abstractmethod
    def coupon(self, row: Any) -> Coupon:
        """A row of :attr:`read_columns` as a :class:`~adapters.coupons.Coupon`."""

    def extra_checks(self, conn: Connection) -> Iterator[Check]:
        """More lines for ``check`` (e.g. the goods a coupon is bound to), on the writer's connection."""
        return iter(())

    # --- helpers ----------------------------------------------------------------------------------------------

    @property
    def table(self) -> str:
        return self.shop.table(self.name)

    def _writer(self) -> Engine:
        if self.engine is None:
            raise CouponsUnavailable(self.coupons_ready())
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()


def money(amount: Decimal, what: str) -> Decimal:
    """``amount`` as the shops' ``decimal(10,2)`` keeps it, or :class:`CouponRefused`: above nothing, at most
    :data:`MAX_MONEY`, in whole cents (a fraction of a cent would be rounded by MySQL: a coupon worth another sum)."""
    try:
        exact = amount.is_finite() and Decimal(0) < amount <= MAX_MONEY and amount == amount.quantize(CENT)
    except InvalidOperation:
        exact = False
    if not exact:
        raise CouponRefused(f"{what} must be above 0, at most {MAX_MONEY} and in whole cents")
    return amount.quantize(CENT)


def coupon_checks(side: SqlCoupons) -> Iterator[Check]:
    """``check`` lines of the coupon writer: it connects; it may do what :attr:`SqlCoupons.needs` lists (``SHOW
    GRANTS``: the check never writes, and a rolled-back INSERT would still spend an AUTO_INCREMENT id, which InnoDB
    does not give back, and fire the table's triggers); it may write nothing else; the code column is UNIQUE.
    Without ``coupon_database_url`` there are no lines: redemption is optional, and whoever needs coupons asks
    :meth:`SqlCoupons.coupons_ready`, which names the key."""
    what = "coupon writer"
    if side.engine is None:
        return
    url = make_url(side.shop.config.coupon_database_url or "")
    user = url.username or "(no user)"
    where = f"{url.host or 'localhost'}:{url.port or 3306}"
    database = url.database or ""
    try:
        with side.engine.connect() as conn:
            database = str(conn.execute(text("SELECT DATABASE()")).scalar() or database)
            yield passed(f"{what}: connect", f"{user}@{where}/{database}")
            grants = _grant_statements(side, database)
            lines = [str(row[0]) for row in conn.execute(text("SHOW GRANTS FOR CURRENT_USER()"))]
            yield from _grant_lines(side, database, lines, grants)
            yield _unique(conn, side)
            yield from side.extra_checks(conn)
    except Unreachable as error:
        yield failed(f"{what}: connect", str(error), f"check the host and port in shop.{KEY}")
    except DBAPIError as error:
        code = _code(error)
        if code in _DENIED:
            detail, fix = f"{where} refused user {user!r} (MySQL error {code})", f"shop.{KEY}: the user and password"
        else:
            detail = f"{where}: {type(error.orig).__name__}" + (f" (MySQL error {code})" if code else "")
            fix = f"check shop.{KEY}"
        yield failed(what, detail, fix)


def _grant_statements(side: SqlCoupons, database: str) -> str:
    """The GRANTs a coupon writer needs and no more, one per table."""
    by_table: dict[str, list[str]] = {}
    for need in side.needs:
        by_table.setdefault(need.table, []).append(need.privilege)
    return " ".join(
        f"GRANT {', '.join(privileges)} ON `{database}`.`{side.shop.prefix}{table}` TO 'cardbridge_coupons'@'<this "
        "host>';"
        for table, privileges in by_table.items()
    )


def _grant_lines(side: SqlCoupons, database: str, lines: Sequence[str], grants: str) -> Iterator[Check]:
    held: list[tuple[str | None, str, frozenset[str] | None]] = []  # (table or None for all, privilege, columns)
    roles = 0
    for line in lines:
        match = _GRANT.match(line)
        if match is None:
            roles += line.startswith("GRANT ")  # a role granted to the user: its privileges are not listed here
            continue
        scope = match.group("scope")
        if not _covers(scope, database):
            continue
        table = _table_of(scope)
        for part in _split(match.group("privileges")):
            name, _, rest = part.partition("(")
            privilege = name.strip().upper()
            columns = frozenset(_unquote(c.strip()) for c in rest.rstrip(")").split(",")) if rest else None
            for each in (WRITES | {"SELECT"}) if privilege in _ALL else {privilege}:
                held.append((table, each, columns))
    prefix = side.shop.prefix
    missing = [
        f"{need.privilege} on {prefix}{need.table}"
        for need in side.needs
        if not any(
            privilege == need.privilege
            and (table is None or table == f"{prefix}{need.table}")
            and (columns is None or set(need.columns) <= columns)
            for table, privilege, columns in held
        )
    ]
    note = f"; {roles} role grant(s) not expanded" if roles else ""
    if missing:
        yield failed(MAY, f"missing: {', '.join(missing)} (SHOW GRANTS){note}", grants)
    else:
        yield passed(MAY, f"{_needs(side)} (SHOW GRANTS){note}")
    allowed = {(f"{prefix}{need.table}", need.privilege) for need in side.needs}
    broad = sorted(
        {
            f"{privilege} on `{database}`.{'*' if table is None else f'`{table}`'}"
            for table, privilege, _ in held
            if privilege in WRITES and (table is None or (table, privilege) not in allowed)
        }
    )
    if broad:
        yield failed(
            "coupon writer writes nothing else",
            f"too broad: the user may also write: {', '.join(broad)}",
            f"use a user with only: {grants} (and REVOKE the rest)",
        )
    else:
        yield passed("coupon writer writes nothing else", f"no other write on `{database}`")


def _needs(side: SqlCoupons) -> str:
    return ", ".join(f"{need.privilege} on {side.shop.prefix}{need.table}" for need in side.needs)


def _unique(conn: Connection, side: SqlCoupons) -> Check:
    """Whether a UNIQUE index of the coupon table is the code column alone (what makes a twin impossible)."""
    what = f"{side.shop.prefix}{side.name}.{side.code_column} is unique"
    rows = conn.execute(
        text(
            "SELECT INDEX_NAME, COUNT(*) AS n, MAX(COLUMN_NAME = :c) AS ours FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t AND NON_UNIQUE = 0 GROUP BY INDEX_NAME"
        ),
        {"t": f"{side.shop.prefix}{side.name}", "c": side.code_column},
    ).all()
    names = sorted(str(row[0]) for row in rows if int(row[1]) == 1 and row[2])
    if names:
        return passed(what, f"UNIQUE index {', '.join(names)}: a code is never made twice")
    return failed(
        what,
        "no UNIQUE index on the code alone (the shop's own schema has one): two tries at once could make twins",
        f"restore it: CREATE UNIQUE INDEX `{side.code_column}` ON {side.table} (`{side.code_column}`);",
    )


def _table_of(scope: str) -> str | None:
    """The table of a ``db.table`` grant scope, unquoted; None for ``db.*`` and ``*.*``."""
    if scope in ("*", "*.*"):
        return None
    match = re.fullmatch(r"(?:`(?:[^`]|``)*`|[^.`]*)\.(?P<table>.+)", scope)
    table = match.group("table") if match else "*"
    return None if table == "*" else _unquote(table)


def _code(error: DBAPIError) -> int | None:
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None
