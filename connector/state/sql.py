"""What the state modules share: Core table handles, chunking, and the few statements more than one section runs.

Every helper here takes an open connection and runs inside the caller's transaction; none commits.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection, Table, and_, delete, insert, inspect, update
from sqlmodel import SQLModel

from connector.core.models import Quarantined
from connector.state.tables import (
    Cursor,
    CustomerRow,
    IdentityRow,
    LedgerRow,
    OrderRow,
    OutboxRow,
    QuarantineRow,
    RemoteObjectRow,
)

#: Keep IN (...) lists well under every database's parameter limit.
CHUNK = 500

T = TypeVar("T")


def table_of(model: type[SQLModel]) -> Table:
    """The Core table behind a SQLModel table class (SQLModel does not declare ``__table__`` to type checkers)."""
    table = inspect(model).local_table
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


orders_t = table_of(OrderRow)
customers_t = table_of(CustomerRow)
identities_t = table_of(IdentityRow)
ledger_t = table_of(LedgerRow)
outbox_t = table_of(OutboxRow)
quarantine_t = table_of(QuarantineRow)
remote_t = table_of(RemoteObjectRow)
cursors_t = table_of(Cursor)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size`` (for IN lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def order_number_hash(key: bytes, number: str) -> str:
    """The keyed hash an order number is stored as (case and surrounding spaces do not matter)."""
    return hmac.new(key, number.strip().upper().encode(), hashlib.sha256).hexdigest()


def mark_customers_dirty(conn: Connection, keys: Iterable[str]) -> None:
    """Have these customers planned again on the next pass."""
    for chunk in chunks(list(keys)):
        conn.execute(update(customers_t).where(customers_t.c.key.in_(chunk)).values(dirty=True))


def save_quarantined(conn: Connection, records: Sequence[Quarantined], now: datetime) -> None:
    """Keep (or refresh) records that could not be read, with their reason; the payload is never stored."""
    for record in records:
        conn.execute(
            delete(quarantine_t).where(
                and_(quarantine_t.c.stream == record.stream, quarantine_t.c.record_id == record.record_id)
            )
        )
        conn.execute(
            insert(quarantine_t).values(
                stream=record.stream, record_id=record.record_id, reason=record.reason, seen_at=now
            )
        )
