"""What the database-reading shop adapters share: their settings, a read-only engine and the shop's local time."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import field_validator
from sqlalchemy import Engine, create_engine, event
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
        url = make_url(config.database_url)
        mysql = url.get_backend_name() in ("mysql", "mariadb")
        # Without these a server that accepts the connection and never answers holds the pass for ever (PyMySQL
        # waits for the greeting with no timeout). Whole seconds: mysqlclient takes integers only.
        limits = {
            "connect_timeout": math.ceil(config.connect_timeout_seconds),
            "read_timeout": math.ceil(config.timeout_seconds),
            "write_timeout": math.ceil(config.timeout_seconds),
        }
        self.engine: Engine = create_engine(
            url, pool_pre_ping=True, pool_recycle=3600, connect_args=limits if mysql else {}
        )
        if mysql:
            event.listen(self.engine, "connect", _read_only)
            where = f"{url.host or 'localhost'}:{url.port or 3306}"
            event.listen(self.engine, "handle_error", _unreachable(where, limits))

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


def _unreachable(where: str, limits: dict[str, int]) -> Any:
    """An engine ``handle_error`` hook: a database that cannot be reached or stopped answering becomes one
    :class:`~connector.core.http.Unreachable` naming the host and the key to change (no statement, no parameters)."""

    def handle(context: ExceptionContext) -> None:
        original = context.original_exception
        code = original.args[0] if original.args and isinstance(original.args[0], int) else None
        if code == CANNOT_CONNECT:
            raise Unreachable(
                f"could not connect to the database at {where} (refused, or no answer within "
                f"{limits['connect_timeout']} s; [shop] database_url, connect_timeout_seconds)"
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
