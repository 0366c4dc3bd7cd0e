"""The link page's brute-force brake: failed proofs per key in a sliding hour, kept in the state store.

Every failure is a row (the key's keyed hash and when it failed), so replicas behind one load balancer share the count
and a restart forgets nothing. A key is a client address (``ip:…``) or a normalised order number (``order:…``):
both are personal, so only ``HMAC-SHA256([link] secret, key)`` is stored. Keyed, not a fixed salt: an IPv4 address
or a sequential order number is found again from a plain or salted hash by trying them all in seconds; without the
secret, a copy of the database tells nothing. Replicas share the secret (their order-number hashes need it too), so
they hash alike; a new secret starts every count afresh (at most an hour of failures forgotten).

Times are the replicas' wall clocks (:func:`connector.core.clock.utcnow`), the only clock they share: keep them
synchronised (NTP). A clock that jumps forward by *d* sees failures up to *d* earlier as gone (and its pruning deletes
them for every replica); one that jumps back by *d* counts its failures up to *d* longer. A wait is never reported
longer than the window.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, Index, delete, func, insert, select
from sqlmodel import Field, SQLModel

from connector.core.clock import utcnow
from connector.state.sql import table_of


class LinkAttemptRow(SQLModel, table=True):
    """One failed proof counted against one key."""

    __tablename__ = "link_attempts"
    __table_args__ = (Index("ix_link_attempts_key_failed_at", "key", "failed_at"),)
    id: int | None = Field(default=None, primary_key=True)
    #: ``HMAC-SHA256([link] secret, "cardbridge-link-attempt:" + key)``, hex: never the address or order number.
    key: str = Field(max_length=64)
    failed_at: datetime


link_attempts_t = table_of(LinkAttemptRow)

#: Seconds a failure counts.
WINDOW = 3600.0
#: Seconds between prunes of rows that left the window, per process (on a failure, never on a question).
PRUNE_EVERY = 60.0


class LinkAttempts:
    """The ``link_attempts`` table; :meth:`brake` gives the link page's brake over it."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine, self.clock = engine, clock
        self._lock = threading.Lock()
        #: When this process last pruned (None: not yet): only the throttle is local.
        self._pruned: datetime | None = None

    def brake(self, secret: bytes, per_hour: int) -> Brake:
        """The brake for ``[link] secret`` and ``[link] attempts_per_hour``."""
        return Brake(self, secret, per_hour)

    def count(self) -> int:
        """How many failures are kept (a figure that reveals no key)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(link_attempts_t)).scalar_one())

    def prune_due(self) -> bool:
        """Whether this process should prune now (at most once every :data:`PRUNE_EVERY` seconds)."""
        with self._lock:
            now = self.clock()
            # A clock set back leaves the last prune "in the future": prune rather than wait for the clock to pass it.
            if self._pruned is not None and 0 <= (now - self._pruned).total_seconds() < PRUNE_EVERY:
                return False
            self._pruned = now
            return True


class Brake:
    """Failures per key in a sliding hour, shared by every process on the store.

    ``blocked_for`` only reads (asking never stores a key); ``failed`` adds one row per key and, at most once a minute
    per process, deletes the rows older than the window, so the table holds about an hour of failures.
    """

    def __init__(self, table: LinkAttempts, secret: bytes, per_hour: int) -> None:
        self.table, self.per_hour = table, per_hour
        self._secret = secret

    def digest(self, key: str) -> str:
        """What ``key`` is stored as (a prefix keeps it apart from the order-number hashes made with the same secret)."""
        return hmac.new(self._secret, b"cardbridge-link-attempt:" + key.encode(), hashlib.sha256).hexdigest()

    def blocked_for(self, *keys: str) -> float:
        """Seconds until a new attempt is allowed for every key (0: allowed now)."""
        now = self.table.clock()
        since = now - timedelta(seconds=WINDOW)
        t = link_attempts_t
        waits = [0.0]
        with self.table.engine.connect() as conn:
            for key in dict.fromkeys(keys):
                # The per_hour-th newest failure in the window: once it ages out, fewer than per_hour remain.
                newest = conn.execute(
                    select(t.c.failed_at)
                    .where(t.c.key == self.digest(key), t.c.failed_at > since)
                    .order_by(t.c.failed_at.desc())
                    .limit(self.per_hour)
                ).all()
                if len(newest) >= self.per_hour:
                    waits.append(WINDOW - (now - newest[-1].failed_at).total_seconds())
        # A failure stamped ahead of this clock (another replica's, ahead of ours) cannot block past the window.
        return min(max(waits), WINDOW)

    def failed(self, *keys: str) -> None:
        """Count a failed proof against every key."""
        if not keys:
            return
        now = self.table.clock()
        t = link_attempts_t
        with self.table.engine.begin() as conn:
            conn.execute(insert(t), [{"key": self.digest(key), "failed_at": now} for key in dict.fromkeys(keys)])
            if self.table.prune_due():
                conn.execute(delete(t).where(t.c.failed_at <= now - timedelta(seconds=WINDOW)))
