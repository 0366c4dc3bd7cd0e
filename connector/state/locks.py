"""One pass at a time: a lease held as a row in ``pass_locks``, on SQLite and PostgreSQL alike.

Why a row and not PostgreSQL advisory locks: an advisory lock lives as long as one database session, so a pass would
have to pin a pooled connection for its whole length, and SQLite has no equivalent (a write transaction held open
would block the pass's own writes from other connections). A row works the same on both, shows who holds it (pid,
host, since) for the "another pass is running" message, and survives a crashed holder through its
lease: the holder moves ``heartbeat_at`` every ``lease / 4`` seconds from a thread, and a row whose heartbeat is older
than the holder's lease (``lease_seconds``, written by the holder) is taken over. On the holder's own host a dead pid is taken over at once (a ``kill -9`` or a power cut
of a cron job does not block the next run for a lease).

Taking the lock is an INSERT (the primary key makes one of two racing inserts fail) or a compare-and-swap UPDATE on
the crashed holder's ``owner`` token, so two processes can never both believe they hold it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from connector.core.clock import utcnow
from connector.core.logs import log
from connector.state.process import gone_here, this_process
from connector.state.sql import table_of
from connector.state.tables import PassLockRow

locks_t = table_of(PassLockRow)

#: A holder that has not renewed its lease for this long is taken to have crashed.
LEASE_SECONDS = 60.0
#: How often a waiting process asks again.
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Holder:
    """Who holds a lock."""

    pid: int
    host: str
    job: str
    since: datetime
    heartbeat_at: datetime | None = None
    lease_seconds: float = LEASE_SECONDS
    #: ``host:pid:start`` (:mod:`connector.state.process`); ``host:pid`` for a row written before it was recorded.
    process: str = ""

    @property
    def expires_at(self) -> datetime | None:
        """When the lock is free for the taking unless its holder beats again."""
        return self.heartbeat_at + timedelta(seconds=self.lease_seconds) if self.heartbeat_at else None


class PassLocked(Exception):
    """Another process holds the lock (raised at once, or after ``wait`` seconds)."""

    def __init__(self, holder: Holder) -> None:
        self.holder = holder
        since = holder.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        where = "" if holder.host == socket.gethostname() else f" on {holder.host}"
        super().__init__(f"another pass is running ({holder.job}, pid {holder.pid}{where}, since {since})")


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Locks:
    """Named leases over the store's engine. ``lease`` is in seconds (tests shorten it)."""

    def __init__(self, engine: Engine, lease: float = LEASE_SECONDS, process: str | None = None) -> None:
        self.engine = engine
        self.lease = lease
        #: The holder's name in claims (``host:pid:start``; a replica's id).
        self.process = process or this_process()
        self.host = socket.gethostname()
        self.pid = os.getpid()

    def holder(self, name: str = "pass") -> Holder | None:
        """Who holds ``name`` now (a crashed holder's row shows until someone takes it over)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(locks_t).where(locks_t.c.name == name)).first()
        if row is None:
            return None
        return Holder(
            pid=row.pid,
            host=row.host,
            job=row.job,
            since=_aware(row.since),
            heartbeat_at=_aware(row.heartbeat_at),
            lease_seconds=row.lease_seconds,
            process=row.process or f"{row.host}:{row.pid}",
        )

    def try_acquire(self, name: str, job: str) -> str | None:
        """The owner token when the lock was free (or its holder crashed); None when it is held.

        The row is read first: a process waiting for a held lock asks with a SELECT, not with an INSERT bound to fail
        (PostgreSQL logs every duplicate key as an error, and replicas ask several times a second)."""
        token, now = uuid.uuid4().hex, utcnow()
        values = dict(
            owner=token,
            pid=self.pid,
            host=self.host,
            job=job,
            since=now,
            heartbeat_at=now,
            lease_seconds=self.lease,
            process=self.process,
        )
        with self.engine.connect() as conn:
            row = conn.execute(select(locks_t).where(locks_t.c.name == name)).first()
        if row is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(locks_t).values(name=name, **values))
                return token
            except IntegrityError:
                return None  # another process took it between the two statements
        # Judged by the holder's own lease: it beats a quarter of that apart, whatever ours is.
        stale = _aware(row.heartbeat_at) < now - timedelta(seconds=row.lease_seconds)
        dead = gone_here(row.process or f"{row.host}:{row.pid}") is True
        if not (stale or dead):
            return None
        with self.engine.begin() as conn:
            # Only if the row is still the crashed holder's: of two processes taking it over, one wins.
            taken = conn.execute(
                update(locks_t).where(and_(locks_t.c.name == name, locks_t.c.owner == row.owner)).values(**values)
            )
        if taken.rowcount != 1:
            return None
        log.info("lock taken over", lock=name, job=job, previous_pid=row.pid, previous_host=row.host)
        return token

    def renew(self, name: str, token: str) -> bool:
        """Move the heartbeat; False when the lock is no longer ours."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(locks_t)
                .where(and_(locks_t.c.name == name, locks_t.c.owner == token))
                .values(heartbeat_at=utcnow())
            )
        return done.rowcount == 1

    def release(self, name: str, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(locks_t).where(and_(locks_t.c.name == name, locks_t.c.owner == token)))

    @contextmanager
    def hold(self, job: str, *, wait: float = 0.0, name: str = "pass") -> Iterator[None]:
        """Hold ``name`` for the ``with`` block, renewing the lease from a thread.

        Raises :class:`PassLocked` when another process holds it, at once or after ``wait`` seconds of asking again.
        """
        deadline = time.monotonic() + max(wait, 0.0)
        while (token := self.try_acquire(name, job)) is None:
            holder = self.holder(name)
            if time.monotonic() >= deadline:
                if holder is None:
                    continue  # released just now: take it
                raise PassLocked(holder)
            time.sleep(POLL_SECONDS)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(name, token, stop), name=f"lock-{name}", daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()
            self.release(name, token)

    def _beat(self, name: str, token: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease / 4):
            try:
                if not self.renew(name, token):
                    log.warning("pass lock lost", name=name)  # taken over after a stall longer than the lease
                    return
            except Exception as error:  # a database hiccup: the next beat tries again
                log.warning("pass lock heartbeat failed", kind=type(error).__name__)
