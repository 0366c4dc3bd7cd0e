"""The outbox: actions written before any remote call, claimed right before it, settled right after.

Lifecycle: pending → sending → done | failed (retried later) → … → dead (parked until an admin retries it). A row
left in ``sending`` by a process that died is ``orphaned``: it is verified against the remote before it is sent again.
So is a row whose request may have been applied without an answer saying so (:meth:`Outbox.unsure`: a POST answered
5xx or timed out); a row the remote asked to wait longer than the client may sleep is :meth:`Outbox.defer`-red.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select, update

from connector.core.clock import utcnow
from connector.core.grants import GRANT_KINDS, OPEN_STATUSES
from connector.state.sql import chunks, ledger_t, outbox_t
from connector.state.tables import OutboxRow


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_gone(owner: str | None) -> bool:
    """True when the process that claimed a row no longer runs (only decidable for this host's processes)."""
    if not owner:
        return True
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return True
    except PermissionError:
        return False
    return False


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
    ) -> list[OutboxRow]:
        """Actions of ``community`` ready to send: pending, or failed whose retry time has come (oldest first).

        ``not_since``: skip failed rows already tried after that moment (one attempt per action per pass).
        ``kind``, ``op``: only actions of that kind and operation (a mass award gathers one badge's grants).
        """
        # Failed rows, and pending rows given back (released) earlier, wait for their time; and one try per pass.
        retry_due = and_(outbox_t.c.status.in_(("failed", "pending")), outbox_t.c.next_attempt_at <= now)
        if not_since is not None:
            retry_due = and_(retry_due, outbox_t.c.updated_at < not_since)
        fresh = and_(outbox_t.c.status == "pending", outbox_t.c.next_attempt_at.is_(None))
        where = and_(outbox_t.c.community == community, or_(fresh, retry_due))
        if kind is not None:
            where = and_(where, outbox_t.c.kind == kind)
        if op is not None:
            where = and_(where, outbox_t.c.op == op)
        with self.engine.connect() as conn:
            return [
                OutboxRow.model_validate(dict(row._mapping))
                for row in conn.execute(select(outbox_t).where(where).order_by(outbox_t.c.id).limit(limit))
            ]

    def claim(self, rows: Sequence[OutboxRow]) -> list[OutboxRow]:
        """Mark rows ``sending`` for this process, right before the remote call that applies them.

        A conditional UPDATE: a row another process claimed (or finished) meanwhile is left out, so two processes
        never send the same action. Claiming per call, not per page, keeps what a crash leaves to verify small.
        """
        me, now = this_process(), utcnow()
        claimed: list[OutboxRow] = []
        with self.engine.begin() as conn:
            for row in rows:
                taken = conn.execute(
                    update(outbox_t)
                    .where(and_(outbox_t.c.id == row.id, outbox_t.c.status.in_(("pending", "failed"))))
                    .values(status="sending", claimed_by=me, claimed_at=now, updated_at=now)
                ).rowcount
                if taken:
                    claimed.append(row.model_copy(update={"status": "sending", "claimed_by": me, "claimed_at": now}))
        return claimed

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
        ids = [row.id for row in rows if row.claimed_by != this_process() and owner_is_gone(row.claimed_by)]
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

    def complete(self, rows: Sequence[OutboxRow], remote_refs: dict[int, str | None] | None = None) -> None:
        """Mark actions done and move the ledger with them, in one transaction."""
        now = utcnow()
        refs = remote_refs or {}
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    update(outbox_t)
                    .where(outbox_t.c.id == row.id)
                    .values(status="done", last_error=None, attempts=row.attempts + 1, updated_at=now)
                )
                if row.kind not in GRANT_KINDS:
                    continue
                where = and_(
                    ledger_t.c.community == row.community,
                    ledger_t.c.customer_key == row.customer_key,
                    ledger_t.c.kind == row.kind,
                    ledger_t.c.target == row.target,
                )
                values: dict[str, Any] = {
                    "state": "granted" if row.op == "grant" else "revoked",
                    "remote_username": row.remote_username,
                    "remote_ref": refs.get(row.id) if row.op == "grant" and row.id is not None else None,
                    "updated_at": now,
                }
                if conn.execute(update(ledger_t).where(where).values(**values)).rowcount == 0:
                    conn.execute(
                        insert(ledger_t).values(
                            community=row.community,
                            customer_key=row.customer_key,
                            kind=row.kind,
                            target=row.target,
                            **values,
                        )
                    )

    def fail(self, rows: Sequence[OutboxRow], reason: str, max_attempts: int, retry_base: float) -> int:
        """Record a failed attempt; after ``max_attempts`` the action is parked as dead. Returns how many died."""
        now = utcnow()
        died = 0
        with self.engine.begin() as conn:
            for row in rows:
                attempts = row.attempts + 1
                dead = attempts >= max_attempts
                died += dead
                conn.execute(
                    update(outbox_t)
                    .where(outbox_t.c.id == row.id)
                    .values(
                        status="dead" if dead else "failed",
                        attempts=attempts,
                        last_error=reason[:2000],
                        next_attempt_at=now + timedelta(seconds=retry_base * 2 ** (attempts - 1)),
                        updated_at=now,
                    )
                )
        return died

    def release(self, rows: Sequence[OutboxRow]) -> None:
        """Give claimed rows back as they were (pending or failed), without counting an attempt; they are tried
        again on the next pass, not in this one."""
        self._give_back(rows, utcnow(), None)

    def defer(self, rows: Sequence[OutboxRow], until: datetime, reason: str) -> None:
        """Give claimed rows back to wait until ``until`` (the remote's rate limit said so), no attempt counted: they
        stay pending (or failed, if tried before), ``last_error`` says why, and no pass sends them before then."""
        self._give_back(rows, until, reason)

    def _give_back(self, rows: Sequence[OutboxRow], not_before: datetime, reason: str | None) -> None:
        """Claimed rows back to pending (failed, if tried before) with no attempt counted, due from ``not_before``;
        ``reason``, when given, replaces ``last_error``."""
        now = utcnow()
        values: dict[str, object] = {"claimed_by": None, "claimed_at": None, "next_attempt_at": not_before}
        if reason is not None:
            values["last_error"] = reason[:2000]
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    update(outbox_t)
                    .where(and_(outbox_t.c.id == row.id, outbox_t.c.status == "sending"))
                    .values(status="failed" if row.attempts else "pending", updated_at=now, **values)
                )

    def unsure(self, rows: Sequence[OutboxRow], reason: str, attempt: bool = True) -> None:
        """The request for these rows may have been applied (a POST answered 5xx, or its answer never came): leave them
        in ``sending`` with no owner, so the next pass treats them as a crash's orphans (:meth:`orphaned`) and
        verifies them against the remote before anything is sent again. ``attempt``: count one (a request went out)."""
        now = utcnow()
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    update(outbox_t)
                    .where(and_(outbox_t.c.id == row.id, outbox_t.c.status == "sending"))
                    .values(
                        claimed_by=None,
                        claimed_at=None,
                        attempts=row.attempts + (1 if attempt else 0),
                        last_error=reason[:2000],
                        updated_at=now,
                    )
                )

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
