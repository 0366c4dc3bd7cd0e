"""The outbox: actions written before any remote call, claimed right before it, settled right after.

Lifecycle: pending → sending → done | failed (retried later) → … → dead (parked until an admin retries it). A row
left in ``sending`` by a process that died is ``orphaned``: it is verified against the remote before it is sent again.
So is a row whose request may have been applied without an answer saying so (:meth:`Outbox.unsure`: a POST answered
5xx or timed out); a row the remote asked to wait longer than the client may sleep is :meth:`Outbox.defer`-red.

Delivery claims a round of rows in one statement and settles the round in one transaction (:meth:`Outbox.settling`,
:class:`Settle`). The statements are built once, at import, with bound parameters: most of a delivered action's own
CPU used to go to building and cache-keying a fresh statement per row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, and_, bindparam, func, insert, or_, select, update

from connector.core.clock import utcnow
from connector.core.grants import GRANT_KINDS, OPEN_STATUSES
from connector.state.ledger import held_refs
from connector.state.process import gone_here, this_process
from connector.state.replicas import Replicas
from connector.state.sql import chunks, ledger_t, outbox_t
from connector.state.tables import OutboxRow


def owner_is_gone(owner: str | None, replicas: Replicas | None = None) -> bool:
    """True when the process that claimed a row no longer runs: asked directly on this host (an earlier start of this
    very pid counts as gone); on another host, gone once it shows no heartbeat within its lease, as a replica or as a
    lock holder (``replicas``; without it, a claim from another host is never taken to be gone)."""
    if not owner:
        return True
    here = gone_here(owner)
    if here is not None:
        return here
    return replicas is not None and not replicas.alive(owner)


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- sending -------------------------------------------------------------------------------------------------

    def due(
        self,
        community: str,
        now: datetime,
        limit: int = 1000,
        not_since: datetime | None = None,
        *,
        kind: str | None = None,
        op: str | None = None,
        target: str | None = None,
    ) -> list[OutboxRow]:
        """Actions of ``community`` ready to send: pending, or failed whose retry time has come (oldest first).

        ``not_since``: skip failed rows already tried after that moment (one attempt per action per pass).
        ``kind``, ``op``, ``target``: only such actions (a mass award gathers one badge's grants).
        """
        where = self._due_where(community, now, not_since, kind, op, target)
        with self.engine.connect() as conn:
            return [
                OutboxRow.model_validate(dict(row._mapping))
                for row in conn.execute(select(outbox_t).where(where).order_by(outbox_t.c.id).limit(limit))
            ]

    def due_per_target(
        self, community: str, now: datetime, not_since: datetime | None, kind: str, op: str
    ) -> dict[str, int]:
        """How many actions of ``kind``/``op`` are due per target (one grouped count: no row is loaded)."""
        where = self._due_where(community, now, not_since, kind, op, None)
        with self.engine.connect() as conn:
            query = select(outbox_t.c.target, func.count()).where(where).group_by(outbox_t.c.target)
            return {str(target): int(count) for target, count in conn.execute(query)}

    @staticmethod
    def _due_where(
        community: str,
        now: datetime,
        not_since: datetime | None,
        kind: str | None,
        op: str | None,
        target: str | None,
    ) -> ColumnElement[bool]:
        # Failed rows, and pending rows given back (released) earlier, wait for their time; and one try per pass.
        retry_due = and_(outbox_t.c.status.in_(("failed", "pending")), outbox_t.c.next_attempt_at <= now)
        if not_since is not None:
            retry_due = and_(retry_due, outbox_t.c.updated_at < not_since)
        fresh = and_(outbox_t.c.status == "pending", outbox_t.c.next_attempt_at.is_(None))
        where = and_(outbox_t.c.community == community, or_(fresh, retry_due))
        for column, value in (("kind", kind), ("op", op), ("target", target)):
            if value is not None:
                where = and_(where, outbox_t.c[column] == value)
        return where

    def claim(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        """Mark rows ``sending`` for this process, right before the remote calls that apply them; returns the rows it
        got, in the order given.

        One conditional UPDATE for all of them (``… WHERE id IN (…) AND status IN ('pending', 'failed')``), then, in
        the same transaction, a read of which ones this process now holds: a row another process claimed (or
        finished) meanwhile is left out, so two processes never send the same action. On PostgreSQL the rows are
        locked ``FOR UPDATE SKIP LOCKED`` in id order: a second replica claiming overlapping rows skips the ones the
        first is claiming instead of waiting for its commit (and never locks rows in an opposite order: a
        deadlock); on SQLite the write lock serialises the two transactions. The caller bounds how many rows it claims at once (a
        delivery round), which bounds what a crash leaves to verify.
        """
        if not rows:
            return []
        me, now = this_process(), utcnow()
        got: set[int] = set()
        with self.engine.begin() as conn:
            # Ascending ids, so two processes claiming overlapping rounds take the row locks in one order (PostgreSQL
            # would otherwise detect a deadlock between them and fail one).
            for chunk in chunks(sorted({row.id for row in rows if row.id is not None})):
                ids = list(chunk)
                conn.execute(_CLAIM, {"ids": ids, "me": me, "claim_at": now, "claim_updated": now})
                got.update(conn.execute(_CLAIMED, {"ids": ids, "me": me, "claim_at": now}).scalars())
        return [
            row.model_copy(update={"status": "sending", "claimed_by": me, "claimed_at": now})
            for row in rows
            if row.id in got
        ]

    def orphaned(self, community: str) -> list[OutboxRow]:
        """Rows left in ``sending`` by a process that died: they must be verified against the remote before a resend.

        Read, then claimed for this process by a conditional UPDATE of its own (two transactions).
        """
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(outbox_t.c.id, outbox_t.c.claimed_by).where(
                    and_(outbox_t.c.community == community, outbox_t.c.status == "sending")
                )
            ).all()
        # Every delivery runs under the pass lock, whose holder beats: a claim from another host whose process shows
        # no heartbeat any more (a replica SIGKILLed mid-call) is verified and finished here.
        replicas = Replicas(self.engine)
        ids = [row.id for row in rows if row.claimed_by != this_process() and owner_is_gone(row.claimed_by, replicas)]
        if not ids:
            return []
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                update(outbox_t)
                .where(and_(outbox_t.c.id.in_(ids), outbox_t.c.status == "sending"))
                .values(claimed_by=this_process(), claimed_at=now)
            )
        return self.outbox_rows(ids)

    def open_rows(self, community: str, after_id: int = 0, limit: int = 1000) -> list[OutboxRow]:
        """Actions of ``community`` not settled yet (pending, failed, sending), by id, from ``after_id`` on: what a
        dry run lists as its plan."""
        with self.engine.connect() as conn:
            return [
                OutboxRow.model_validate(dict(row._mapping))
                for row in conn.execute(
                    select(outbox_t)
                    .where(
                        and_(
                            outbox_t.c.community == community,
                            outbox_t.c.status.in_(("pending", "failed", "sending")),
                            outbox_t.c.id > after_id,
                        )
                    )
                    .order_by(outbox_t.c.id)
                    .limit(limit)
                )
            ]

    def outbox_rows(self, ids: Sequence[int]) -> list[OutboxRow]:
        result: list[OutboxRow] = []
        with self.engine.connect() as conn:
            for chunk in chunks(list(ids)):
                result.extend(
                    OutboxRow.model_validate(dict(row._mapping))
                    for row in conn.execute(select(outbox_t).where(outbox_t.c.id.in_(chunk)).order_by(outbox_t.c.id))
                )
        return result

    # ---- settling ------------------------------------------------------------------------------------------------

    @contextmanager
    def settling(self) -> Iterator[Settle]:
        """One transaction to settle many claimed rows in (a delivery round): done, failed, given back or left to
        verify, all committed together or not at all (a crash before the commit leaves them ``sending``: verified)."""
        with self.engine.begin() as conn:
            yield Settle(conn, utcnow())

    def complete(self, rows: Sequence[OutboxRow], remote_refs: Mapping[int, str | None] | None = None) -> None:
        """Mark actions done and move the ledger with them, in one transaction."""
        with self.settling() as settle:
            settle.complete(rows, remote_refs)

    def fail(self, rows: Sequence[OutboxRow], reason: str, max_attempts: int, retry_base: float) -> int:
        """Record a failed attempt; after ``max_attempts`` the action is parked as dead. Returns how many died."""
        with self.settling() as settle:
            return settle.fail(rows, reason, max_attempts, retry_base)

    def release(self, rows: Sequence[OutboxRow]) -> None:
        """Give claimed rows back as they were (pending or failed), without counting an attempt; they are tried
        again on the next pass, not in this one."""
        with self.settling() as settle:
            settle.release(rows)

    def defer(self, rows: Sequence[OutboxRow], until: datetime, reason: str) -> None:
        """Give claimed rows back to wait until ``until`` (the remote's rate limit said so), no attempt counted: they
        stay pending (or failed, if tried before), ``last_error`` says why, and no pass sends them before then."""
        with self.settling() as settle:
            settle.defer(rows, until, reason)

    def unsure(self, rows: Sequence[OutboxRow], reason: str, attempt: bool = True) -> None:
        """The request for these rows may have been applied (a POST answered 5xx, or its answer never came): leave them
        in ``sending`` with no owner, so the next pass treats them as a crash's orphans (:meth:`orphaned`) and
        verifies them against the remote before anything is sent again. ``attempt``: count one (a request went out)."""
        with self.settling() as settle:
            settle.unsure(rows, reason, attempt)

    def retry_dead(self, ids: Sequence[int] | None = None) -> int:
        """Put dead actions back to pending (all of them, or the given ids)."""
        now = utcnow()
        with self.engine.begin() as conn:
            query = update(outbox_t).where(outbox_t.c.status == "dead")
            if ids:
                query = query.where(outbox_t.c.id.in_(list(ids)))
            return conn.execute(
                query.values(status="pending", attempts=0, next_attempt_at=None, updated_at=now)
            ).rowcount

    # ---- what is in flight ---------------------------------------------------------------------------------------

    def count_since(self, community: str, kind: str, since: datetime) -> int:
        """How many actions of ``kind`` were planned for ``community`` since ``since`` (a daily cap's count)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        outbox_t.c.community == community, outbox_t.c.kind == kind, outbox_t.c.created_at >= since
                    )
                ).scalar_one()
            )

    def open_actions(self, community: str, customer_key: str, kind: str, target: str) -> list[int]:
        """Ids of the actions still open (see ``OPEN_STATUSES``) for one target."""
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(outbox_t.c.id).where(
                        and_(
                            outbox_t.c.community == community,
                            outbox_t.c.customer_key == customer_key,
                            outbox_t.c.kind == kind,
                            outbox_t.c.target == target,
                            outbox_t.c.status.in_(OPEN_STATUSES),
                        )
                    )
                ).scalars()
            )

    def action_targets(self, community: str, customer_key: str, kind: str) -> set[str]:
        """Targets that already have an action (in any state but superseded) for this customer and kind."""
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(outbox_t.c.target).where(
                        and_(
                            outbox_t.c.community == community,
                            outbox_t.c.customer_key == customer_key,
                            outbox_t.c.kind == kind,
                            outbox_t.c.status != "superseded",
                        )
                    )
                ).scalars()
            )


# ---- statements ----------------------------------------------------------------------------------------------------
# Built once: a Core statement memoizes its cache key, so executing it again skips the statement building and cache
# key generation that cost most of a delivery's CPU when every call built its own (bench/deliver_cpu.py). Bound
# parameter names differ from the column names (SQLAlchemy reserves those for SET values in an executemany).

#: The rows of the round no other process holds: on PostgreSQL ``FOR UPDATE SKIP LOCKED`` (in id order), so a replica
#: claiming rows another is claiming this moment skips them instead of waiting for its commit; SQLite renders no
#: locking clause (its write lock serialises the claims). The UPDATE's own status test then decides.
_CLAIMABLE = (
    select(outbox_t.c.id)
    .where(outbox_t.c.id.in_(bindparam("ids", expanding=True)), outbox_t.c.status.in_(("pending", "failed")))
    .order_by(outbox_t.c.id)
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(outbox_t)
    .where(outbox_t.c.id.in_(_CLAIMABLE.scalar_subquery()), outbox_t.c.status.in_(("pending", "failed")))
    .values(
        status="sending",
        claimed_by=bindparam("me"),
        claimed_at=bindparam("claim_at"),
        updated_at=bindparam("claim_updated"),
    )
)
_CLAIMED = select(outbox_t.c.id).where(
    outbox_t.c.id.in_(bindparam("ids", expanding=True)),
    outbox_t.c.status == "sending",
    outbox_t.c.claimed_by == bindparam("me"),
    outbox_t.c.claimed_at == bindparam("claim_at"),
)
_DONE = (
    update(outbox_t)
    .where(outbox_t.c.id == bindparam("row_id"))
    .values(status="done", last_error=None, attempts=bindparam("new_attempts"), updated_at=bindparam("now"))
)
_FAIL = (
    update(outbox_t)
    .where(outbox_t.c.id == bindparam("row_id"))
    .values(
        status=bindparam("new_status"),
        attempts=bindparam("new_attempts"),
        last_error=bindparam("reason"),
        next_attempt_at=bindparam("not_before"),
        updated_at=bindparam("now"),
    )
)
_GIVE_BACK_VALUES: dict[str, Any] = {
    "status": bindparam("new_status"),
    "claimed_by": None,
    "claimed_at": None,
    "next_attempt_at": bindparam("not_before"),
    "updated_at": bindparam("now"),
}
_GIVE_BACK = (
    update(outbox_t)
    .where(outbox_t.c.id == bindparam("row_id"), outbox_t.c.status == "sending")
    .values(**_GIVE_BACK_VALUES)
)
_GIVE_BACK_WHY = (
    update(outbox_t)
    .where(outbox_t.c.id == bindparam("row_id"), outbox_t.c.status == "sending")
    .values(**_GIVE_BACK_VALUES, last_error=bindparam("reason"))
)
_UNSURE = (
    update(outbox_t)
    .where(outbox_t.c.id == bindparam("row_id"), outbox_t.c.status == "sending")
    .values(
        claimed_by=None,
        claimed_at=None,
        attempts=bindparam("new_attempts"),
        last_error=bindparam("reason"),
        updated_at=bindparam("now"),
    )
)
_LEDGER_MOVE = (
    update(ledger_t)
    .where(
        ledger_t.c.community == bindparam("l_community"),
        ledger_t.c.customer_key == bindparam("l_customer_key"),
        ledger_t.c.kind == bindparam("l_kind"),
        ledger_t.c.target == bindparam("l_target"),
    )
    .values(
        state=bindparam("l_state"),
        remote_username=bindparam("l_username"),
        remote_ref=bindparam("l_ref"),
        updated_at=bindparam("now"),
    )
)
_LEDGER_ADD = insert(ledger_t)


class Settle:
    """The settling statements, run on one open connection inside the caller's transaction (:meth:`Outbox.settling`).

    Each takes many rows and runs one executemany per statement, so a round of actions settles in a handful of
    statements and one commit."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now

    def complete(self, rows: Sequence[OutboxRow], remote_refs: Mapping[int, str | None] | None = None) -> None:
        """Mark actions done and move the ledger with them (an UPDATE of the rows it has, an INSERT of the others)."""
        if not rows:
            return
        refs = remote_refs or {}
        now = self.now
        self.conn.execute(_DONE, [{"row_id": r.id, "new_attempts": r.attempts + 1, "now": now} for r in rows])
        # The ledger key (community, customer, kind, target) → its new values; a later row of the same key wins, as
        # it would have row by row.
        moves: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for row in rows:
            if row.kind not in GRANT_KINDS:
                continue
            grant = row.op == "grant"
            moves[(row.community, row.customer_key, row.kind, row.target)] = {
                "state": "granted" if grant else "revoked",
                "remote_username": row.remote_username,
                "remote_ref": refs.get(row.id) if grant and row.id is not None else None,
            }
        if not moves:
            return
        held = held_refs(self.conn, moves.keys())
        updates = [
            {
                "l_community": key[0],
                "l_customer_key": key[1],
                "l_kind": key[2],
                "l_target": key[3],
                "l_state": values["state"],
                "l_username": values["remote_username"],
                "l_ref": values["remote_ref"],
                "now": now,
            }
            for key, values in moves.items()
            if key in held
        ]
        inserts = [
            {"community": key[0], "customer_key": key[1], "kind": key[2], "target": key[3], "updated_at": now, **values}
            for key, values in moves.items()
            if key not in held
        ]
        if updates:
            self.conn.execute(_LEDGER_MOVE, updates)
        if inserts:
            self.conn.execute(_LEDGER_ADD, inserts)

    def fail(self, rows: Sequence[OutboxRow], reason: str, max_attempts: int, retry_base: float) -> int:
        """Record a failed attempt; after ``max_attempts`` the action is parked as dead. Returns how many died."""
        if not rows:
            return 0
        params = []
        for row in rows:
            attempts = row.attempts + 1
            params.append(
                {
                    "row_id": row.id,
                    "new_status": "dead" if attempts >= max_attempts else "failed",
                    "new_attempts": attempts,
                    "reason": reason[:2000],
                    "not_before": self.now + timedelta(seconds=retry_base * 2 ** (attempts - 1)),
                    "now": self.now,
                }
            )
        self.conn.execute(_FAIL, params)
        return sum(p["new_status"] == "dead" for p in params)

    def release(self, rows: Sequence[OutboxRow]) -> None:
        """See :meth:`Outbox.release`."""
        self._give_back(rows, self.now, None)

    def defer(self, rows: Sequence[OutboxRow], until: datetime, reason: str) -> None:
        """See :meth:`Outbox.defer`."""
        self._give_back(rows, until, reason)

    def _give_back(self, rows: Sequence[OutboxRow], not_before: datetime, reason: str | None) -> None:
        """Claimed rows back to pending (failed, if tried before) with no attempt counted, due from ``not_before``;
        ``reason``, when given, replaces ``last_error``."""
        if not rows:
            return
        params: list[dict[str, Any]] = [
            {
                "row_id": row.id,
                "new_status": "failed" if row.attempts else "pending",
                "not_before": not_before,
                "now": self.now,
            }
            for row in rows
        ]
        if reason is not None:
            for p in params:
                p["reason"] = reason[:2000]
        self.conn.execute(_GIVE_BACK if reason is None else _GIVE_BACK_WHY, params)

    def unsure(self, rows: Sequence[OutboxRow], reason: str, attempt: bool = True) -> None:
        """See :meth:`Outbox.unsure`."""
        if not rows:
            return
        params = [
            {
                "row_id": r.id,
                "new_attempts": r.attempts + (1 if attempt else 0),
                "reason": reason[:2000],
                "now": self.now,
            }
            for r in rows
        ]
        self.conn.execute(_UNSURE, params)
