"""What the database-reading shop adapters share: their settings, a read-only engine and the shop's local time."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext, make_url

from adapters.base import MalformedRecord
from connector.core.http import Unreachable
from connector.core.models import bounded_time
from connector.core.settings import PageSize, RequiredStr, Seconds, ShopSettings, Timeout, TimeZone

#: A row that cannot be read (the quarantine reason is the message).
MalformedRow = MalformedRecord
#: Ids one ``IN (…)`` read by primary key holds at most (bounded query size and memory).
ID_CHUNK = 500
#: MySQL's zero dates, which it keeps where no date was set (the driver hands them over as text).
ZERO_DATES = ("0000-00-00 00:00:00", "0000-00-00")
#: MySQL client error codes (include/errmsg.h; PyMySQL's constants/CR.py) for a server that cannot be reached or
#: stopped answering: CR_CONN_HOST_ERROR (connect failed or timed out), CR_SERVER_GONE_ERROR, CR_SERVER_LOST (the
#: read timed out or the connection dropped). Decided on the code, never on the driver's wording.
CANNOT_CONNECT = 2003
NO_ANSWER = frozenset({2006, 2013})
#: Ids one windowed query covers at most: each query reads at most this many rows by primary key (bounded work per
#: statement, well inside ``timeout_seconds``), whatever the table's size.
ID_WINDOW = 20_000
#: How far the cursor of a windowed pass stays behind the database's clock at the start of the pass. A row changed
#: while the windows were read may lie in a window already passed; it carries a time after the pass began (the shop
#: writes its own clock, which this margin allows to differ from the database's), so the next pass reads it again.
CLOCK_MARGIN = timedelta(seconds=60)
#: Days of orders (by creation) a pass without the index re-reads for changes; see ``recheck_days``.
RecheckDays = Annotated[int, Field(ge=1, le=3650)]


def unset(value: Any) -> bool:
    """An optional date column with no date: NULL, empty or a zero date (a zero ``deleted_at`` is no deletion)."""
    return value is None or (isinstance(value, str) and (not value.strip() or value.strip() in ZERO_DATES))


class DatabaseShopSettings(ShopSettings):
    """``[shop]`` of a shop read from its database (``kind = "dujiaoka"``, ``"acgfaka"``)."""

    #: A read-only SQLAlchemy URL, e.g. ``mysql+pymysql://reader:pw@127.0.0.1/dujiaoka`` (a SELECT-only user).
    database_url: RequiredStr
    #: Table name prefix (dujiaoka: none by default).
    table_prefix: str = ""
    #: The zone the shop writes its ``Y-m-d H:i:s`` timestamps in (stored here as UTC).
    timezone: TimeZone = "Asia/Shanghai"
    #: Orders per query.
    page_size: PageSize = 100
    #: Re-read orders updated (or paid) this many seconds before the cursor (late commits).
    lookback_seconds: Seconds = 300
    #: Seconds to wait for a connection, and for each answer (the server's greeting, a query's rows).
    connect_timeout_seconds: Timeout = 5.0
    timeout_seconds: Timeout = 30.0
    #: When the orders table has no index on the time a change leaves (dujiaoka ``updated_at``, acg-faka
    #: ``pay_time``; neither upstream schema has one), a pass reads by primary key instead: every new order (id above
    #: the last one read) and the changes among the orders created in the last ``recheck_days`` days, found by id.
    #: A change to an older order is read by ``reconcile`` (every stored paid order, by id) and by ``backfill``.
    #: With the index (``cardbridge check`` prints the statement) every change is read by time, at any age.
    recheck_days: RecheckDays = 31
    #: Points redemption (积分兑换) only: a SQLAlchemy URL of a second database user that may SELECT and INSERT on
    #: the coupon table(s) and nothing else (``cardbridge check`` prints the GRANT), e.g.
    #: ``mysql+pymysql://cardbridge_coupons:pw@127.0.0.1/dujiaoka``. Unset: no coupons are made; ``database_url``
    #: stays read-only either way.
    coupon_database_url: str | None = None

    @field_validator("table_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"\w{0,20}", value):
            raise ValueError("use letters, digits and '_' only")
        return value


class SqlShop:
    """Base for shops read straight from their MySQL/MariaDB database (发卡 systems without an order API)."""

    settings: type[DatabaseShopSettings] = DatabaseShopSettings

    def __init__(self, config: DatabaseShopSettings) -> None:
        self.config = config
        self.zone = ZoneInfo(config.timezone)
        self.prefix = config.table_prefix
        self.engine: Engine = database_engine(config, config.database_url, "database_url", read_only=True)
        #: None: each pass looks for an index that starts with the column changes are read by (id windows without
        #: one); True/False force the choice (the benchmark times the old query without its index).
        self.use_windows: bool | None = None

    def windowed(self, conn: Connection, name: str, column: str) -> bool:
        """Whether this pass reads table ``name`` by id windows: forced by :attr:`use_windows`, else when no index of
        it starts with ``column`` (MySQL/MariaDB only; elsewhere the plain query)."""
        if self.use_windows is not None:
            return self.use_windows
        return self.mysql and not leading_index(conn, f"{self.prefix}{name}", column)

    def table(self, name: str) -> str:
        return f"`{self.prefix}{name}`"

    def utc(self, value: Any, column: str) -> datetime:
        """A naive ``Y-m-d H:i:s`` in the shop's zone (how PHP shops write them) as aware UTC. A zero date
        (``0000-00-00 00:00:00``, which MySQL keeps and its driver hands over as text) is no date."""
        if value is None:
            raise MalformedRow(f"{column} is empty")
        if not isinstance(value, datetime):
            raise MalformedRow(f"{column} is not a date (a zero date such as 0000-00-00 reads as text)")
        try:
            return (value.replace(tzinfo=self.zone) if value.tzinfo is None else value).astimezone(UTC)
        except OverflowError:  # 9999-12-31 in a zone west of UTC
            raise MalformedRow(f"{column} is out of the calendar's range") from None

    def position(self, value: Any) -> datetime | None:
        """A row's time as a cursor may keep it: a plausible date (see :func:`~connector.core.models.bounded_time`)
        or None. A row dated 9999 is read (and quarantined) but never carries the cursor past the orders to come."""
        try:
            return bounded_time(self.utc(value, "time"))
        except ValueError:
            return None

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.zone).replace(tzinfo=None)

    @staticmethod
    def integer(value: Any) -> int | None:
        """A status or count column as an int (a driver may hand a TINYINT over as text); None when it is not one."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isascii() and value.strip().lstrip("-").isdigit():
            return int(value.strip()) if len(value) < 20 else None
        return None

    @staticmethod
    def id_chunks(ids: Sequence[str], size: int = ID_CHUNK) -> Iterator[list[int]]:
        """Order ids as the integers these tables key orders by, ``size`` at a time. An id that is no integer (a
        webhook's garbage, a store filled from another shop) cannot be a row here: it is left out, so it reads as
        absent instead of failing the whole read."""
        numbers = [int(i) for i in map(str, ids) if i.isascii() and i.isdigit() and len(i) < 19]
        for start in range(0, len(numbers), size):
            yield numbers[start : start + size]

    @staticmethod
    def in_list(values: Sequence[Any], prefix: str = "v") -> tuple[str, dict[str, Any]]:
        """``:v0, :v1, …`` and their bindings, for ``IN (…)``."""
        names = [f"{prefix}{n}" for n in range(len(values))]
        return ", ".join(f":{n}" for n in names), dict(zip(names, values, strict=True))

    def close(self) -> None:
        self.engine.dispose()

    @property
    def mysql(self) -> bool:
        return self.engine.dialect.name in ("mysql", "mariadb")


def database_engine(config: DatabaseShopSettings, address: str, key: str, *, read_only: bool) -> Engine:
    """An engine on ``address`` (the value of ``[shop] <key>``) with the shop's connect and answer limits; on
    MySQL/MariaDB a server that cannot be reached becomes :class:`~connector.core.http.Unreachable` naming ``key``,
    and a ``read_only`` engine's sessions cannot write."""
    url = make_url(address)
    mysql = url.get_backend_name() in ("mysql", "mariadb")
    # Without these a server that accepts the connection and never answers holds the pass for ever (PyMySQL
    # waits for the greeting with no timeout). Whole seconds: mysqlclient takes integers only.
    limits = {
        "connect_timeout": math.ceil(config.connect_timeout_seconds),
        "read_timeout": math.ceil(config.timeout_seconds),
        "write_timeout": math.ceil(config.timeout_seconds),
    }
    # A writing engine hides its statements' parameters from its errors: they carry coupon codes (secrets).
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_recycle=3600,
        connect_args=limits if mysql else {},
        hide_parameters=not read_only,
    )
    if mysql:
        if read_only:
            event.listen(engine, "connect", _read_only)
        where = f"{url.host or 'localhost'}:{url.port or 3306}"
        event.listen(engine, "handle_error", _unreachable(where, limits, key))
    return engine


def leading_index(conn: Connection, table: str, column: str) -> list[str]:
    """Names of the indexes of ``table`` (prefixed, unquoted) whose first column is ``column``
    (``information_schema.STATISTICS``, which lists only what this user may see; MySQL/MariaDB only)."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = :t AND COLUMN_NAME = :c AND SEQ_IN_INDEX = 1"
        ),
        {"t": table, "c": column},
    )
    return sorted(str(row[0]) for row in rows)


def database_utc(conn: Connection) -> datetime:
    """The database server's clock, as aware UTC (``UTC_TIMESTAMP()``, whatever the session's time zone)."""
    value = conn.execute(text("SELECT UTC_TIMESTAMP()")).scalar()
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else datetime.now(UTC)


def next_id(conn: Connection, table: str, after: int) -> int | None:
    """The first id above ``after`` in ``table`` (quoted), one read of the primary key: id windows skip a gap in the
    ids (an import, ``auto_increment_increment``, a hostile row id 10⁹) in one step instead of one query per window."""
    found = conn.execute(text(f"SELECT MIN(`id`) FROM {table} WHERE `id` > :after"), {"after": after}).scalar()
    return None if found is None else int(found)


def first_id_since(conn: Connection, table: str, column: str, since: datetime) -> int | None:
    """The smallest id from which on the rows of ``table`` (quoted) have ``column`` at or after ``since`` (naive, in
    the column's zone), by bisection on the primary key: about log2(id range) reads of one row each, no index on
    ``column`` needed. None when no row is that recent.

    It trusts that ids grow with ``column`` (both shops insert an order with its creation time as "now", see the
    adapters). Where they do not (rows imported or edited by hand), the answer may lie later than the first recent row;
    a row below it is then not scanned for changes by a pass (new orders are still read by id, and reconcile re-reads
    the stored paid ones). A row with no date (NULL, or MySQL's zero date) counts as recent: the answer may then lie
    earlier than it could, which costs rows read, never a change missed."""

    def probe(at_least: int) -> tuple[int, bool] | None:
        row = conn.execute(
            text(
                f"SELECT `id`, (`{column}` IS NULL OR `{column}` >= :since OR `{column}` < '1000-01-01') AS recent "
                f"FROM {table} WHERE `id` >= :at ORDER BY `id` LIMIT 1"
            ),
            {"since": since, "at": at_least},
        ).first()
        return None if row is None else (int(row[0]), bool(row[1]))

    bounds = conn.execute(text(f"SELECT MIN(`id`), MAX(`id`) FROM {table}")).first()
    if bounds is None or bounds[0] is None:
        return None
    low, high = int(bounds[0]), int(bounds[1])
    first, last = probe(low), probe(high)
    if first is None or last is None or not last[1]:
        return None
    if first[1]:
        return first[0]
    # probe(low) is old, probe(high) is recent: narrow the gap to one id, then the answer is the row at high.
    while high - low > 1:
        middle = (low + high) // 2
        found = probe(middle)
        if found is not None and found[1]:
            high = middle
        else:
            low = middle
    answer = probe(high)
    return answer[0] if answer is not None else None


def _unreachable(where: str, limits: dict[str, int], key: str = "database_url") -> Any:
    """An engine ``handle_error`` hook: a database that cannot be reached or stopped answering becomes one
    :class:`~connector.core.http.Unreachable` naming the host and the key to change (no statement, no parameters)."""

    def handle(context: ExceptionContext) -> None:
        original = context.original_exception
        code = original.args[0] if original.args and isinstance(original.args[0], int) else None
        if code == CANNOT_CONNECT:
            raise Unreachable(
                f"could not connect to the database at {where} (refused, or no answer within "
                f"{limits['connect_timeout']} s; [shop] {key}, connect_timeout_seconds)"
            ) from None
        if code in NO_ANSWER:
            raise Unreachable(
                f"the database at {where} did not answer within {limits['read_timeout']} s ([shop] timeout_seconds)"
            ) from None

    return handle


def _read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Belt and braces beside a SELECT-only database user: this session cannot write.
    cursor.execute("SET SESSION TRANSACTION READ ONLY")
    cursor.close()
