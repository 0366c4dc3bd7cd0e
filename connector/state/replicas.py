"""The daemons sharing this state store (``cardbridge run`` replicas), each a row with a heartbeat.

A replica is ``host:pid:start`` (:mod:`connector.state.process`), the same name its outbox claims and webhook event
claims carry (``claimed_by``). Its row
is written at start and moved every quarter lease by :class:`connector.server.leadership.Leadership`; it is deleted
on a clean stop. A row whose heartbeat is older than its own lease belongs to a replica that died (SIGKILL, power cut,
a partition): ``status`` leaves it out, and what it had claimed may be taken by the others.

Times are the replicas' wall clocks (:func:`connector.core.clock.utcnow`), the only clock they share: keep them
synchronised (NTP). A replica whose clock runs *d* behind looks dead *d* early to the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from connector.core.clock import utcnow
from connector.state.process import parse, this_process
from connector.state.sql import table_of
from connector.state.tables import PassLockRow


class ReplicaRow(SQLModel, table=True):
    """One running daemon."""

    __tablename__ = "replicas"
    #: ``host:pid:start`` (:mod:`connector.state.process`).
    id: str = Field(primary_key=True, max_length=300)
    host: str = Field(max_length=255)
    pid: int
    #: ``[server] listen`` of the replica (where its webhooks and ``/healthz`` are served).
    listen: str = Field(max_length=255)
    #: CardBridge's version, so a rolling upgrade shows which replicas run what.
    version: str = Field(max_length=40)
    started_at: datetime
    heartbeat_at: datetime
    #: The replica's lease: it is taken to be dead after this long without a heartbeat.
    lease_seconds: float


replicas_t = table_of(ReplicaRow)
locks_t = table_of(PassLockRow)

#: Rows of replicas dead for this long are deleted (they are left out of every listing well before).
FORGET_AFTER = timedelta(days=1)


def this_replica() -> str:
    """This process's name among the replicas and in claims: ``host:pid:start`` (:mod:`connector.state.process`)."""
    return this_process()


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Replica:
    id: str
    host: str
    pid: int
    listen: str
    version: str
    started_at: datetime
    heartbeat_at: datetime
    lease_seconds: float

    def alive(self, now: datetime) -> bool:
        return now - self.heartbeat_at <= timedelta(seconds=self.lease_seconds)


class Replicas:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def beat(self, me: str, listen: str, version: str, lease_seconds: float, started_at: datetime) -> None:
        """Say this replica lives (its row written on the first beat, and again if another replica pruned it)."""
        now = utcnow()
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(replicas_t)
                .where(replicas_t.c.id == me)
                .values(heartbeat_at=now, lease_seconds=lease_seconds, listen=listen[:255])
            )
        if moved.rowcount == 1:
            return
        found = parse(me)
        host, pid = (found.host, found.pid) if found else (me, 0)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(replicas_t).values(
                        id=me,
                        host=host[:255],
                        pid=pid,
                        listen=listen[:255],
                        version=version[:40],
                        started_at=started_at,
                        heartbeat_at=now,
                        lease_seconds=lease_seconds,
                    )
                )
        except IntegrityError:  # written by our own previous beat meanwhile: nothing to do
            pass

    def leave(self, me: str) -> None:
        """A clean stop: the row goes at once (the others need not wait a lease to know)."""
        with self.engine.begin() as conn:
            conn.execute(delete(replicas_t).where(replicas_t.c.id == me))

    def all(self) -> list[Replica]:
        """Every row, oldest first (dead ones too: :meth:`Replica.alive` says which)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(replicas_t).order_by(replicas_t.c.started_at, replicas_t.c.id)).all()
        return [
            Replica(
                id=row.id,
                host=row.host,
                pid=row.pid,
                listen=row.listen,
                version=row.version,
                started_at=_aware(row.started_at),
                heartbeat_at=_aware(row.heartbeat_at),
                lease_seconds=row.lease_seconds,
            )
            for row in rows
        ]

    def live(self, now: datetime | None = None) -> list[Replica]:
        """The replicas whose heartbeat is within their lease."""
        now = now or utcnow()
        return [replica for replica in self.all() if replica.alive(now)]

    def prune(self, now: datetime | None = None) -> int:
        """Delete the rows of replicas dead for :data:`FORGET_AFTER`."""
        with self.engine.begin() as conn:
            gone = conn.execute(delete(replicas_t).where(replicas_t.c.heartbeat_at < (now or utcnow()) - FORGET_AFTER))
        return int(gone.rowcount or 0)

    def alive(self, owner: str, now: datetime | None = None) -> bool:
        """Whether ``owner`` (``host:pid:start``) shows a heartbeat within its lease: as a replica, or as the holder of
        a lock (a ``cardbridge backfill`` run by hand holds the pass lock and is no replica). Used for claims made on
        another host, whose process cannot be asked directly."""
        now = now or utcnow()
        found = parse(owner)
        if found is None:
            return False
        # A claim written before the start part was recorded names ``host:pid``: any lock of that host and pid.
        holds = (
            locks_t.c.process == owner
            if found.start
            else and_(locks_t.c.host == found.host, locks_t.c.pid == found.pid)
        )
        with self.engine.connect() as conn:
            replica = conn.execute(
                select(replicas_t.c.heartbeat_at, replicas_t.c.lease_seconds).where(replicas_t.c.id == owner)
            ).first()
            locks = conn.execute(select(locks_t.c.heartbeat_at, locks_t.c.lease_seconds).where(holds)).all()
        beats = ([replica] if replica is not None else []) + list(locks)
        return any(now - _aware(at) <= timedelta(seconds=lease) for at, lease in beats)
