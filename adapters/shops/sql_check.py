"""``cardbridge check`` for the shops read from their MySQL/MariaDB database (dujiaoka, acg-faka).

In the order an operator fixes them: the database answers (host named, never the password); each table the adapter
reads has the columns it selects and this user may SELECT them (``LIMIT 0``: no row is read); the user is SELECT-only
(``SHOW GRANTS FOR CURRENT_USER()``: a write privilege on the shop's schema fails, with the statement that makes a
read-only user); and the index the incremental query needs exists (``information_schema.STATISTICS``), with what
``EXPLAIN`` says of the adapter's own query. A missing index fails with the ``CREATE INDEX`` to run: adding an index
to a shop's table is the DBA's decision, and the check never writes.

Decided on MySQL error codes (include/mysqld_error.h: 1044 ER_DBACCESS_DENIED_ERROR, 1045 ER_ACCESS_DENIED_ERROR, 1049
ER_BAD_DB_ERROR, 1142 ER_TABLEACCESS_DENIED_ERROR, 1143 ER_COLUMNACCESS_DENIED_ERROR, 1146 ER_NO_SUCH_TABLE), never on
the driver's wording; no statement, parameter or GRANT line is shown (MariaDB's ``SHOW GRANTS`` can carry a password
hash).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from adapters.checks import Check, failed, passed
from adapters.shops.sql import SqlShop, leading_index
from connector.core.http import Unreachable

#: Privileges that let the user change the shop's data or schema.
WRITES = frozenset({"ALL PRIVILEGES", "ALL", "INSERT", "UPDATE", "DELETE", "DROP", "ALTER", "CREATE", "INDEX"})
_GRANT = re.compile(r"^GRANT\s+(?P<privileges>.+?)\s+ON\s+(?:(?:TABLE|FUNCTION|PROCEDURE)\s+)?(?P<scope>\S+)\s+TO\s")
CONNECT = "connect to the database"
SELECT_ONLY = "user is SELECT-only"
_DENIED = {1044, 1045}
_NO_DATABASE = 1049
_NO_SELECT = {1142, 1143}


@dataclass(frozen=True)
class TableNeed:
    """A table (without the prefix) and the columns the adapter selects from it."""

    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class IndexNeed:
    """An index the incremental query needs: one whose first column is ``column``.

    ``query``: the adapter's own statement, for ``EXPLAIN`` (with ``params``); ``create``: the index to suggest, with
    ``{table}`` for the prefixed table name; ``upstream``: where the shop's own schema leaves it out; ``without``: what
    the adapter does meanwhile.
    """

    table: str
    column: str
    create: str
    query: str
    params: dict[str, Any] = field(default_factory=dict)
    upstream: str = ""
    without: str = ""


def check_database(shop: SqlShop, tables: Sequence[TableNeed], indexes: Sequence[IndexNeed]) -> Iterator[Check]:
    url = make_url(shop.config.database_url)
    mysql = url.get_backend_name() in ("mysql", "mariadb")
    where = f"{url.host or 'localhost'}:{url.port or 3306}" if mysql else url.get_backend_name()
    database = url.database or ""
    stage = CONNECT  # what is being tested when an error ends the checks
    try:
        with shop.engine.connect() as conn:
            current = conn.execute(text("SELECT DATABASE()" if mysql else "SELECT 1")).scalar()
            if mysql:
                database = str(current or database)
            yield passed(CONNECT, f"{url.username or '(no user)'}@{where}/{database}")
            unreadable = set()
            for need in tables:
                stage = f"table {shop.prefix}{need.name}"
                line = _table(conn, shop, need, database, mysql)
                if not line.ok:
                    unreadable.add(need.name)
                yield line
            if not mysql:
                return  # grants and index statistics are read from MySQL/MariaDB only
            stage = SELECT_ONLY
            yield _grants(conn, database, url.host or "localhost")
            for index in indexes:
                stage = f"index on {shop.prefix}{index.table}.{index.column}"
                if index.table not in unreadable:  # no index to look for on a table that is not there
                    yield _index(conn, shop, index)
    except Unreachable as error:
        yield failed(
            stage,
            str(error),
            "check the host and port in shop.database_url and that the database is up; waits are "
            "shop.connect_timeout_seconds and shop.timeout_seconds",
        )
    except DBAPIError as error:
        code = _code(error)
        user = url.username or "(no user)"
        if stage == CONNECT and code in _DENIED:
            detail = f"{where} refused user {user!r} (MySQL error {code})"
            fix = "shop.database_url: the user name and password (and that the user may connect from this host)"
        elif stage == CONNECT and code == _NO_DATABASE:
            detail = f"{where} has no database {database!r} (MySQL error {code})"
            fix = "shop.database_url: the database name after the host"
        else:
            detail = f"{where}: {type(error.orig).__name__}" + (f" (MySQL error {code})" if code else "")
            fix = "check shop.database_url"
        yield failed(stage, detail, fix)
    except SQLAlchemyError as error:  # a URL the engine cannot use, a driver that is not installed
        yield failed(stage, f"{where}: {type(error).__name__}", "check shop.database_url")


def _table(conn: Connection, shop: SqlShop, need: TableNeed, database: str, mysql: bool) -> Check:
    name = f"{shop.prefix}{need.name}"
    what = f"table {name}"
    if mysql:
        found = {
            str(row[0]).lower()
            for row in conn.execute(
                text(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
                ),
                {"t": name},
            )
        }
        if not found:
            return failed(
                what,
                f"no table {name} in {database!r} that this user can see",
                f"shop.table_prefix (now {shop.prefix!r}) or the database in shop.database_url; or GRANT SELECT ON "
                f"`{database}`.* to the user",
            )
        missing = [column for column in need.columns if column.lower() not in found]
        if missing:
            return failed(
                what,
                f"{name} has no column {', '.join(missing)} (or this user may not see it)",
                f"the table is not the one kind = {getattr(shop, 'kind', '?')!r} reads: check the shop's version, "
                "shop.kind and shop.table_prefix",
            )
    columns = ", ".join(f"`{column}`" for column in need.columns)
    try:
        conn.execute(text(f"SELECT {columns} FROM {shop.table(need.name)} LIMIT 0")).all()
    except DBAPIError as error:
        code = _code(error)
        if code in _NO_SELECT:
            return failed(
                what,
                f"this user may not SELECT from {name} (MySQL error {code})",
                f"GRANT SELECT ON `{database}`.* TO the user of shop.database_url",
            )
        return failed(what, f"SELECT from {name} failed: {type(error.orig).__name__} (error {code})", "check the table")
    return passed(what, f"the {len(need.columns)} columns read are there; SELECT allowed")


def _grants(conn: Connection, database: str, host: str) -> Check:
    what = SELECT_ONLY
    lines = [str(row[0]) for row in conn.execute(text("SHOW GRANTS FOR CURRENT_USER()"))]
    writes: list[str] = []
    roles = 0
    for line in lines:
        match = _GRANT.match(line)
        if match is None:
            roles += line.startswith("GRANT ")  # a role granted to the user: its privileges are not listed here
            continue
        scope = match.group("scope")
        if not _covers(scope, database):
            continue
        privileges = {p.split("(")[0].strip().upper() for p in _split(match.group("privileges"))}
        for privilege in sorted(privileges & WRITES):
            writes.append(f"{privilege} on {_shown_scope(scope)}")
    if writes:
        return failed(
            what,
            f"the user may write: {', '.join(writes)}",
            f"create a read-only user: GRANT SELECT ON `{database}`.* TO 'cardbridge'@'<this host>' IDENTIFIED BY "
            f"'…'; and put it in shop.database_url (the database is at {host})",
        )
    note = f"; {roles} role grant(s) not expanded" if roles else ""
    return passed(what, f"no INSERT, UPDATE, DELETE or ALL PRIVILEGES on `{database}` (SHOW GRANTS){note}")


def _index(conn: Connection, shop: SqlShop, need: IndexNeed) -> Check:
    table = f"{shop.prefix}{need.table}"
    what = f"index on {table}.{need.column}"
    names = leading_index(conn, table, need.column)
    plan = _explain(conn, shop, need, names)
    if names:
        return passed(what, f"index {', '.join(names)}; {plan}")
    upstream = f" (the shop's own schema has none: {need.upstream})" if need.upstream else ""
    return failed(
        what,
        f"no index starts with {need.column}{upstream}; {plan}"
        + (f"; meanwhile {need.without}" if need.without else ""),
        "a DBA decision (CardBridge never creates it): " + need.create.format(table=shop.table(need.table)),
    )


def _explain(conn: Connection, shop: SqlShop, need: IndexNeed, indexes: list[str]) -> str:
    """What ``EXPLAIN`` says of the adapter's query: the access type, the key and the rows it expects to read."""
    try:
        rows = conn.execute(text("EXPLAIN " + need.query.format(table=shop.table(need.table))), need.params)
        first = rows.mappings().first()
    except SQLAlchemyError:
        return "EXPLAIN could not be run"
    if first is None:
        return "EXPLAIN said nothing"
    access, key, count = first.get("type"), first.get("key"), first.get("rows")
    about = f"~{count} rows" if count is not None else "rows unknown"
    if key and key in indexes:
        return f"EXPLAIN of the sync query: {access} on {key}, {about}"
    if access == "ALL":
        return f"EXPLAIN of the sync query: a full table scan, {about}"
    if not indexes:  # read by another key (the primary), every row up to the watermark: a scan in key order
        return f"EXPLAIN of the sync query: scans by {key or 'no key'} ({access}), {about}"
    return f"EXPLAIN of the sync query: {access} by {key or 'no key'} (not {', '.join(indexes)}), {about}"


def _code(error: DBAPIError) -> int | None:
    args = getattr(error.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _split(privileges: str) -> list[str]:
    """``SELECT (a, b), INSERT`` → ``["SELECT (a, b)", "INSERT"]``: commas inside a column list do not split."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(privileges):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(privileges[start:i])
            start = i + 1
    parts.append(privileges[start:])
    return [part.strip() for part in parts if part.strip()]


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if len(name) >= 2 and name[0] == name[-1] == "`" else name


def _covers(scope: str, database: str) -> bool:
    """Whether a grant's ``db.table`` scope reaches ``database``: ``*.*``, the database itself, or a database-level
    pattern with ``%`` and ``_`` (MySQL's wildcards in db grants; ``\\_`` is a literal underscore)."""
    if scope in ("*", "*.*"):
        return True
    db = _unquote(scope.split("`.", 1)[0] + "`" if scope.startswith("`") else scope.split(".", 1)[0])
    pattern = ""
    i = 0
    while i < len(db):
        char = db[i]
        if char == "\\" and i + 1 < len(db):
            pattern += re.escape(db[i + 1])
            i += 2
            continue
        pattern += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        i += 1
    return re.fullmatch(pattern, database, flags=re.IGNORECASE) is not None


def _shown_scope(scope: str) -> str:
    return scope.replace("``", "`")
