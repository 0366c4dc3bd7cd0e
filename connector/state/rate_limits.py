"""Rate limits shared by every process on the store: the :class:`~connector.core.budget.LimitStore` the budgets of
shared remotes ask, so three replicas never send more than one would be allowed (issue 18).

Two tables, on SQLite and PostgreSQL alike:

- ``rate_limit_slots``, a sliding window as a ring of ``limit`` rows per key, each stamped with its last use. A take is
  one UPDATE of the key's oldest slot whose stamp has left the window: a slot can be used again only ``window`` seconds
  after its last use, so no ``window`` seconds hold more than ``limit`` takes whoever took them. On PostgreSQL the slot
  is chosen with ``FOR UPDATE SKIP LOCKED`` (concurrent takes pick different slots instead of queueing on one) and the
  UPDATE checks the stamp again on the row it writes; on SQLite the statement holds the database's write lock (SQLAlchemy
  leaves ``FOR UPDATE`` out there). ``RETURNING`` says whether a slot was taken. The ring is created on first use and
  resized when ``limit`` changes (once per process and limit, so a take stays one round trip).
- ``rate_limit_buckets``, one row per key for what a remote imposes: a hold after a 429 (every process waits it out),
  and a counter the remote reports (Discord's ``X-RateLimit-Remaining`` until ``-Reset-After``), spent by one UPDATE.

Times are the replicas' wall clocks (``time.time()``), the only clock they share: keep them synchronised (NTP). A
replica whose clock runs *d* seconds behind sees slots free *d* seconds late (it sends less); one that runs ahead reuses
slots up to *d* seconds early, which the remote may answer with a 429 (held for everyone). Rows hold keys and times
only: no URL credentials, no tokens (adapters key a bot by a hash of its token).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

from connector.state.sql import table_of

#: Longest key stored as given; a longer one (a long forum URL) is stored as its SHA-256.
KEY_LENGTH = 255
#: Buckets and holds that ended this long ago are deleted (at most once per :data:`PRUNE_EVERY` per process): Discord
#: reports a bucket per channel and thread, so their rows would otherwise pile up.
KEEP_SECONDS = 3600.0
PRUNE_EVERY = 600.0


class RateLimitSlotRow(SQLModel, table=True):
    """One slot of a key's sliding window: ``limit`` rows per key, each stamped when it was last taken."""

    __tablename__ = "rate_limit_slots"
    key: str = Field(primary_key=True, max_length=KEY_LENGTH)
    slot: int = Field(primary_key=True)
    #: Wall-clock seconds since the epoch; 0 for a slot never taken.
    used_at: float


class RateLimitBucketRow(SQLModel, table=True):
    """What a remote imposed on one key: a counter it reports and a hold after a 429."""

    __tablename__ = "rate_limit_buckets"
    key: str = Field(primary_key=True, max_length=KEY_LENGTH)
    #: Requests left until ``reset_at`` (None: never reported for this key, only held).
    remaining: int | None = None
    reset_at: float = 0.0
    #: No request for this key before this time (wall-clock seconds); 0: not held.
    held_until: float = 0.0
    #: What the remote said was limited (Discord's ``X-RateLimit-Scope``), for the message of a deferral.
    scope: str = Field(default="", max_length=20)


slots_t = table_of(RateLimitSlotRow)
buckets_t = table_of(RateLimitBucketRow)


def stored_key(key: str) -> str:
    """The key as a row holds it (a long one as its hash, so the primary key keeps a fixed width)."""
    if len(key) <= KEY_LENGTH:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _insert(conn: Connection, table: Any) -> Any:
    """``INSERT … ON CONFLICT`` for the connection's database (the same statement on both; SQLAlchemy spells it per
    dialect)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"rate limits on {conn.dialect.name}")  # the store supports SQLite and PostgreSQL


class RateLimits:
    """The ``rate_limit_*`` tables as a :class:`~connector.core.budget.LimitStore`. ``clock``: wall-clock seconds
    (tests move it)."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine, self.clock = engine, clock
        self._lock = threading.Lock()
        #: (key, limit) rings this process has sized; a take for another limit sizes the ring again.
        self._rings: set[tuple[str, int]] = set()
        self._pruned = 0.0

    # ---- sliding windows ------------------------------------------------------------------------------------------

    def take(self, key: str, limit: int, window: float) -> float:
        """0.0 when a slot of ``key``'s window was taken now; else the seconds until one frees or the key's hold ends
        (nothing is taken)."""
        if limit < 1:
            raise ValueError("a window holds at least one request")
        key = stored_key(key)
        with self._lock:
            sized = (key, limit) in self._rings
        if not sized:
            self._size(key, limit)
        s, b = slots_t, buckets_t
        now = self.clock()
        cut = now - window
        free = (
            select(s.c.slot)
            .where(s.c.key == key, s.c.used_at <= cut)
            .order_by(s.c.used_at, s.c.slot)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        not_held = ~exists().where(b.c.key == key, b.c.held_until > now)
        with self.engine.begin() as conn:
            # The stamp is checked again on the row written, so the statement alone keeps the window.
            taken = conn.execute(
                update(s)
                .where(s.c.key == key, s.c.slot == free, s.c.used_at <= cut, not_held)
                .values(used_at=now)
                .returning(s.c.slot)
            ).first()
            if taken is not None:
                return 0.0
            oldest, held_until = conn.execute(
                select(
                    select(func.min(s.c.used_at)).where(s.c.key == key).scalar_subquery(),
                    select(b.c.held_until).where(b.c.key == key).scalar_subquery(),
                )
            ).one()
        if oldest is None:  # the ring is gone (deleted by hand): size it again and ask again at once
            with self._lock:
                self._rings.discard((key, limit))
            return 0.001
        wait = max(oldest + window - now, (held_until or 0.0) - now)
        # A slot that left the window but was being taken by another process (skipped while locked) is gone: a
        # millisecond later the next one is asked for.
        return max(wait, 0.001)

    def _size(self, key: str, limit: int) -> None:
        """Make ``key``'s ring ``limit`` slots: new slots are free; when it shrinks, the most recently used are kept,
        so the window still counts the takes it holds."""
        s = slots_t
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # resizers wait for each other (takes keep going after)
            rows = conn.execute(
                select(s.c.slot, s.c.used_at)
                .where(s.c.key == key)
                .order_by(s.c.used_at.desc(), s.c.slot)
                .with_for_update()
            ).all()
            if len(rows) < limit:
                used = {row.slot for row in rows}
                new = [n for n in range(limit + len(rows)) if n not in used][: limit - len(rows)]
                conn.execute(
                    _insert(conn, s)
                    .values([{"key": key, "slot": n, "used_at": 0.0} for n in new])
                    .on_conflict_do_nothing(index_elements=[s.c.key, s.c.slot])
                )
            elif len(rows) > limit:
                extra = [row.slot for row in rows[limit:]]
                conn.execute(delete(s).where(s.c.key == key, s.c.slot.in_(extra)))
        with self._lock:
            # Not forgetting another limit sized for the same key: two budgets of one process asking with different
            # limits would otherwise resize the ring on every take. The last process to size a ring sets it (a
            # replica started with a new limit sets it for the older ones too).
            self._rings.add((key, limit))

    # ---- holds and reported buckets ---------------------------------------------------------------------------------

    def hold(self, key: str, seconds: float, scope: str = "") -> None:
        """No request for ``key`` for ``seconds`` from now, in any process (a hold only ever grows until it ends)."""
        b = buckets_t
        until = self.clock() + max(seconds, 0.0)
        later = b.c.held_until < until
        with self.engine.begin() as conn:
            conn.execute(
                _insert(conn, b)
                .values(key=stored_key(key), remaining=None, reset_at=0.0, held_until=until, scope=scope[:20])
                .on_conflict_do_update(
                    index_elements=[b.c.key],
                    set_={
                        "held_until": case((later, until), else_=b.c.held_until),
                        "scope": case((later, scope[:20]), else_=b.c.scope),
                    },
                )
            )

    def held(self, key: str) -> tuple[float, str]:
        """Seconds ``key`` is still held (0.0: not held) and the scope given with the hold."""
        b = buckets_t
        with self.engine.connect() as conn:
            row = conn.execute(select(b.c.held_until, b.c.scope).where(b.c.key == stored_key(key))).first()
        if row is None:
            return 0.0, ""
        left = row.held_until - self.clock()
        return (left, row.scope) if left > 0 else (0.0, "")

    def set_bucket(self, key: str, remaining: int, reset_after: float) -> None:
        """What the remote reported for ``key``: ``remaining`` requests until ``reset_after`` seconds from now. The
        newest report wins (as in one process; a late answer may let one request too many through, which the remote
        answers with a 429 that is then held for everyone)."""
        b = buckets_t
        now = self.clock()
        reset_at = now + max(reset_after, 0.0)
        with self.engine.begin() as conn:
            conn.execute(
                _insert(conn, b)
                .values(key=stored_key(key), remaining=remaining, reset_at=reset_at, held_until=0.0, scope="")
                .on_conflict_do_update(index_elements=[b.c.key], set_={"remaining": remaining, "reset_at": reset_at})
            )
            if self._prune_due(now):
                gone = now - KEEP_SECONDS
                conn.execute(delete(b).where(b.c.reset_at < gone, b.c.held_until < gone))

    def spend(self, key: str) -> float:
        """0.0 when a request for ``key`` may go (its reported count was taken one down, or it has none); else the
        seconds until the bucket resets or its hold ends."""
        b = buckets_t
        key = stored_key(key)
        now = self.clock()
        with self.engine.begin() as conn:
            spent = conn.execute(
                update(b)
                .where(
                    b.c.key == key,
                    b.c.held_until <= now,
                    or_(b.c.remaining.is_(None), b.c.remaining > 0, b.c.reset_at <= now),
                )
                .values(remaining=b.c.remaining - 1)
                .returning(b.c.key)
            ).first()
            if spent is not None:
                return 0.0
            row = conn.execute(select(b.c.remaining, b.c.reset_at, b.c.held_until).where(b.c.key == key)).first()
        if row is None:
            return 0.0  # nothing reported for this key: the first request tells
        empty = row.remaining is not None and row.remaining <= 0
        wait = max(row.held_until - now, row.reset_at - now if empty else 0.0)
        return max(wait, 0.001)

    def _prune_due(self, now: float) -> bool:
        with self._lock:
            if 0 <= now - self._pruned < PRUNE_EVERY:
                return False
            self._pruned = now
            return True
