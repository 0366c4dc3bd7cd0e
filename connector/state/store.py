"""State-store operations. Each public method is one transaction; SQL is SQLAlchemy Core on the SQLModel tables.

Bulk statements (one SELECT per page, one INSERT/UPDATE per batch) keep a 100,000-order backfill close to the cost of
merely downloading it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from connector.core.clock import utcnow
from connector.core.models import Customer, Order, OrderStatus, Quarantined
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
from mappings.diff import OPEN_STATUSES, OpenAction
from mappings.grants import GrantKey

orders_t = OrderRow.__table__  # type: ignore[attr-defined]
customers_t = CustomerRow.__table__  # type: ignore[attr-defined]
identities_t = IdentityRow.__table__  # type: ignore[attr-defined]
ledger_t = LedgerRow.__table__  # type: ignore[attr-defined]
outbox_t = OutboxRow.__table__  # type: ignore[attr-defined]
quarantine_t = QuarantineRow.__table__  # type: ignore[attr-defined]
remote_t = RemoteObjectRow.__table__  # type: ignore[attr-defined]
cursors_t = Cursor.__table__  # type: ignore[attr-defined]

#: Keep IN (...) lists well under every database's parameter limit.
CHUNK = 500
#: Outbox kinds that are grants (held in the ledger and diffed by the planner); reviews and points are not.
GRANT_KINDS = ("badge", "group", "role")


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


def _chunks(items: Sequence[str], size: int = CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _product_field(order: Order) -> str:
    return "," + ",".join(str(p) for p in sorted(order.product_ids)) + "," if order.lines else ","


@dataclass(frozen=True)
class PageResult:
    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True)
class CustomerPlanInput:
    """Everything the planner needs about one customer on one pass."""

    key: str
    email: str | None
    paid_orders: tuple[frozenset[str], ...]
    identities: dict[str, IdentityRow]
    ledger: dict[str, dict[GrantKey, LedgerRow]]
    open_actions: dict[str, list[OpenAction]]


@dataclass(frozen=True)
class NewAction:
    community: str
    customer_key: str
    key: GrantKey
    op: str
    remote_username: str | None


def order_number_hash(key: bytes, number: str) -> str:
    """The keyed hash an order number is stored as (case and surrounding spaces do not matter)."""
    return hmac.new(key, number.strip().upper().encode(), hashlib.sha256).hexdigest()


class StateStore:
    def __init__(self, engine: Engine, order_number_key: bytes | None = None) -> None:
        self.engine = engine
        #: With a key (``[link] secret``), each order's number is kept as a keyed hash for the link page.
        self.order_number_key = order_number_key

    # ---- cursors -------------------------------------------------------------------------------------------------

    def get_cursor(self, stream: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(cursors_t.c.value).where(cursors_t.c.stream == stream)).scalar_one_or_none()

    def cursors(self) -> dict[str, dict[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(cursors_t)).all()
        return {row.stream: {"value": row.value, "updated_at": row.updated_at.isoformat()} for row in rows}

    @staticmethod
    def _set_cursor(conn, stream: str, value: str) -> None:  # type: ignore[no-untyped-def]
        now = utcnow()
        done = conn.execute(update(cursors_t).where(cursors_t.c.stream == stream).values(value=value, updated_at=now))
        if done.rowcount == 0:
            conn.execute(insert(cursors_t).values(stream=stream, value=value, updated_at=now))

    # ---- pulled records ------------------------------------------------------------------------------------------

    def save_orders_page(
        self,
        stream: str,
        orders: Sequence[Order],
        quarantined: Sequence[Quarantined],
        cursor: str | None,
    ) -> PageResult:
        """Upsert one page of orders, their customers, the quarantined records and the cursor, atomically.

        A customer is marked dirty (to be re-planned) only when something the planner reads changed, so re-reading a
        page (lookback, crash recovery, a webhook) costs no planning and no remote writes.
        """
        now = utcnow()
        inserted = updated = unchanged = 0
        with self.engine.begin() as conn:
            ids = [o.id for o in orders]
            existing = {
                row.id: row
                for chunk in _chunks(ids)
                for row in conn.execute(select(orders_t).where(orders_t.c.id.in_(chunk)))
            }
            new_rows, dirty = [], set()
            for order in orders:
                values = {
                    "id": order.id,
                    "customer_key": order.customer_key,
                    "status": order.status.value,
                    "total": order.total,
                    "currency": order.currency,
                    "product_ids": _product_field(order),
                    "created_at": order.created_at,
                    "modified_at": order.modified_at,
                    "number_hash": order_number_hash(self.order_number_key, order.number or order.id)
                    if self.order_number_key
                    else None,
                }
                old = existing.get(order.id)
                if old is None:
                    new_rows.append(values)
                    inserted += 1
                    dirty.add(order.customer_key)
                    continue
                if all(getattr(old, k) == v for k, v in values.items() if k != "modified_at") and (
                    old.modified_at == order.modified_at
                ):
                    unchanged += 1
                    continue
                conn.execute(update(orders_t).where(orders_t.c.id == order.id).values(**values))
                updated += 1
                if (old.status, old.product_ids, old.customer_key) != (
                    values["status"],
                    values["product_ids"],
                    values["customer_key"],
                ):
                    dirty.update({order.customer_key, old.customer_key})
            if new_rows:
                conn.execute(insert(orders_t), new_rows)
            self._ensure_customers(conn, {o.customer_key: o.email for o in orders}, dirty, now)
            for record in quarantined:
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
            # A record that now reads cleanly leaves quarantine.
            clean = [o.id for o in orders]
            for chunk in _chunks(clean):
                conn.execute(
                    delete(quarantine_t).where(
                        and_(quarantine_t.c.stream == stream, quarantine_t.c.record_id.in_(chunk))
                    )
                )
            if cursor is not None:
                self._set_cursor(conn, stream, cursor)
        return PageResult(inserted, updated, unchanged)

    @staticmethod
    def _ensure_customers(conn, emails: dict[str, str | None], dirty: set[str], now: datetime) -> None:  # type: ignore[no-untyped-def]
        keys = list(emails)
        known = {
            row.key: row
            for chunk in _chunks(keys)
            for row in conn.execute(select(customers_t).where(customers_t.c.key.in_(chunk)))
        }
        new_rows = [
            {"key": key, "email": emails[key], "profile_loaded": False, "dirty": True, "updated_at": now}
            for key in keys
            if key not in known
        ]
        if new_rows:
            conn.execute(insert(customers_t), new_rows)
        for key, row in known.items():
            # A registered customer's account email (profile) wins over an order's billing email.
            if not row.profile_loaded and emails[key] and row.email != emails[key]:
                conn.execute(
                    update(customers_t).where(customers_t.c.key == key).values(email=emails[key], updated_at=now)
                )
                dirty.add(key)
        to_mark = [key for key in dirty if key in known]
        for chunk in _chunks(to_mark):
            conn.execute(update(customers_t).where(customers_t.c.key.in_(chunk)).values(dirty=True))

    def save_customer_profiles(
        self, customers: Sequence[Customer], stream: str | None = None, cursor: str | None = None
    ) -> int:
        """Store customers' account emails. A changed email forgets the old community match. Returns #changed."""
        now = utcnow()
        changed = 0
        with self.engine.begin() as conn:
            keys = [c.key for c in customers]
            known = {
                row.key: row
                for chunk in _chunks(keys)
                for row in conn.execute(select(customers_t).where(customers_t.c.key.in_(chunk)))
            }
            for customer in customers:
                row = known.get(customer.key)
                if row is None:
                    conn.execute(
                        insert(customers_t).values(
                            key=customer.key, email=customer.email, profile_loaded=True, dirty=True, updated_at=now
                        )
                    )
                    changed += 1
                    continue
                if row.email == customer.email and row.profile_loaded:
                    continue
                conn.execute(
                    update(customers_t)
                    .where(customers_t.c.key == customer.key)
                    .values(email=customer.email, profile_loaded=True, dirty=True, updated_at=now)
                )
                if row.email != customer.email:
                    changed += 1
                    conn.execute(
                        delete(identities_t).where(
                            and_(identities_t.c.customer_key == customer.key, identities_t.c.status == "unmatched")
                        )
                    )
            if stream is not None and cursor is not None:
                self._set_cursor(conn, stream, cursor)
        return changed

    def customers_without_profile(self, limit: int = 100) -> list[str]:
        """Registered customers known only from an order's billing email."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(customers_t.c.key)
                .where(and_(customers_t.c.profile_loaded.is_(False), customers_t.c.key.like("c:%")))
                .order_by(customers_t.c.key)
                .limit(limit)
            ).scalars()
            return list(rows)

    def mark_profiles_missing(self, keys: Sequence[str]) -> None:
        """The shop no longer knows these customers (deleted accounts): keep the billing email, stop asking."""
        with self.engine.begin() as conn:
            for chunk in _chunks(list(keys)):
                conn.execute(update(customers_t).where(customers_t.c.key.in_(chunk)).values(profile_loaded=True))

    # ---- identities ----------------------------------------------------------------------------------------------

    def identities_due(self, community: str, now: datetime) -> list[tuple[str, str | None]]:
        """(customer key, email) of customers waiting for a match on ``community`` whose retry time has come."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(identities_t.c.customer_key, customers_t.c.email)
                .join(customers_t, customers_t.c.key == identities_t.c.customer_key)
                .where(
                    and_(
                        identities_t.c.community == community,
                        identities_t.c.status == "unmatched",
                        or_(identities_t.c.next_attempt_at.is_(None), identities_t.c.next_attempt_at <= now),
                    )
                )
                .order_by(identities_t.c.customer_key)
            ).all()
        return [(row.customer_key, row.email) for row in rows]

    def record_matches(
        self,
        community: str,
        matched: dict[str, tuple[str, str]],
        unmatched: Sequence[str],
        retry_after: timedelta,
    ) -> None:
        """Store look-up results: matched customers become dirty (to be planned now), the rest wait ``retry_after``."""
        now = utcnow()
        with self.engine.begin() as conn:
            for key, (user_id, username) in matched.items():
                conn.execute(
                    update(identities_t)
                    .where(and_(identities_t.c.community == community, identities_t.c.customer_key == key))
                    .values(
                        status="matched",
                        remote_user_id=user_id,
                        remote_username=username,
                        attempts=identities_t.c.attempts + 1,
                        next_attempt_at=None,
                        updated_at=now,
                    )
                )
            for chunk in _chunks(list(matched)):
                conn.execute(update(customers_t).where(customers_t.c.key.in_(chunk)).values(dirty=True))
            for chunk in _chunks(list(unmatched)):
                conn.execute(
                    update(identities_t)
                    .where(and_(identities_t.c.community == community, identities_t.c.customer_key.in_(chunk)))
                    .values(attempts=identities_t.c.attempts + 1, next_attempt_at=now + retry_after, updated_at=now)
                )

    def link(self, community: str, customer_key: str, user_id: str | None, username: str | None) -> str | None:
        """Link a customer to a community account (``None``: unlink). Returns the account it replaced, if any.

        The old account loses what the connector granted it: its grants are queued as revokes under a key of their
        own (so the customer's new grants do not cancel them) and the ledger forgets them, so the planner grants them
        again to the new account.
        """
        now = utcnow()
        with self.engine.begin() as conn:
            where = and_(identities_t.c.community == community, identities_t.c.customer_key == customer_key)
            old = conn.execute(select(identities_t).where(where)).first()
            previous = old.remote_username if old is not None and old.status == "matched" else None
            conn.execute(delete(identities_t).where(where))
            if user_id is not None:
                conn.execute(
                    insert(identities_t).values(
                        community=community,
                        customer_key=customer_key,
                        status="matched",
                        remote_user_id=user_id,
                        remote_username=username or user_id,
                        attempts=0,
                        updated_at=now,
                    )
                )
            conn.execute(update(customers_t).where(customers_t.c.key == customer_key).values(dirty=True))
        if previous is None or previous == (username or user_id):
            return None
        grants = [
            (kind, target)
            for (kind, target), rows in self.granted(community).items()
            for key, _ in rows
            if key == customer_key
        ]
        if grants:
            owner = f"{customer_key}#was:{previous}"
            self.apply_plan(
                [],
                [NewAction(community, owner, GrantKey(kind, target), "revoke", previous) for kind, target in grants],
                [],
                [],
            )
            with self.engine.begin() as conn:
                for kind, target in grants:
                    conn.execute(
                        update(ledger_t)
                        .where(
                            and_(
                                ledger_t.c.community == community,
                                ledger_t.c.customer_key == customer_key,
                                ledger_t.c.kind == kind,
                                ledger_t.c.target == target,
                            )
                        )
                        .values(state="revoked", updated_at=now)
                    )
        return previous

    def retry_identities_now(self, emails: Sequence[str]) -> int:
        """A forum account was just created for these emails: look their customers up on the next pass."""
        with self.engine.begin() as conn:
            keys = list(conn.execute(select(customers_t.c.key).where(customers_t.c.email.in_(list(emails)))).scalars())
            if not keys:
                return 0
            return conn.execute(
                update(identities_t)
                .where(and_(identities_t.c.customer_key.in_(keys), identities_t.c.status == "unmatched"))
                .values(next_attempt_at=None)
            ).rowcount

    def unmatched_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(identities_t.c.community, func.count())
                .where(identities_t.c.status == "unmatched")
                .group_by(identities_t.c.community)
            ).all()
        return {row[0]: row[1] for row in rows}

    # ---- planning ------------------------------------------------------------------------------------------------

    def dirty_customer_keys(self, all_customers: bool = False) -> list[str]:
        """Customers to plan: the dirty ones, or every customer (a full reconcile)."""
        with self.engine.connect() as conn:
            query = select(customers_t.c.key).order_by(customers_t.c.key)
            if not all_customers:
                query = query.where(customers_t.c.dirty.is_(True))
            return list(conn.execute(query).scalars())

    def plan_inputs(self, keys: Sequence[str]) -> list[CustomerPlanInput]:
        """Load what the planner needs for a chunk of customers, in four queries."""
        with self.engine.connect() as conn:
            emails = dict(
                conn.execute(select(customers_t.c.key, customers_t.c.email).where(customers_t.c.key.in_(keys))).all()
            )
            paid: dict[str, list[frozenset[str]]] = defaultdict(list)
            for row in conn.execute(
                select(orders_t.c.customer_key, orders_t.c.product_ids).where(
                    and_(orders_t.c.customer_key.in_(keys), orders_t.c.status == OrderStatus.PAID.value)
                )
            ):
                paid[row.customer_key].append(frozenset(p for p in row.product_ids.strip(",").split(",") if p))
            identities: dict[str, dict[str, IdentityRow]] = defaultdict(dict)
            for row in conn.execute(select(identities_t).where(identities_t.c.customer_key.in_(keys))):
                identities[row.customer_key][row.community] = row
            ledger: dict[str, dict[str, dict[GrantKey, LedgerRow]]] = defaultdict(lambda: defaultdict(dict))
            for row in conn.execute(select(ledger_t).where(ledger_t.c.customer_key.in_(keys))):
                ledger[row.customer_key][row.community][GrantKey(row.kind, row.target)] = row
            actions: dict[str, dict[str, list[OpenAction]]] = defaultdict(lambda: defaultdict(list))
            for row in conn.execute(
                select(outbox_t).where(
                    and_(
                        outbox_t.c.customer_key.in_(keys),
                        outbox_t.c.status.in_(OPEN_STATUSES),
                        outbox_t.c.kind.in_(GRANT_KINDS),
                    )
                )
            ):
                actions[row.customer_key][row.community].append(
                    OpenAction(id=row.id, key=GrantKey(row.kind, row.target), op=row.op, status=row.status)
                )
        return [
            CustomerPlanInput(
                key=key,
                email=emails.get(key),
                paid_orders=tuple(paid.get(key, ())),
                identities=identities.get(key, {}),
                ledger=ledger.get(key, {}),
                open_actions=actions.get(key, {}),
            )
            for key in keys
        ]

    def apply_plan(
        self,
        planned: Sequence[str],
        new: Sequence[NewAction],
        supersede: Sequence[int],
        need_identity: Sequence[tuple[str, str]],
        still_dirty: Sequence[str] = (),
    ) -> None:
        """Write the planner's decisions for a chunk of customers in one transaction.

        ``need_identity``: (community, customer) pairs that want grants but have no community account yet.
        ``still_dirty``: customers to plan again next time (e.g. an action of theirs was in flight).
        """
        try:
            self._apply_plan(planned, new, supersede, need_identity, still_dirty)
        except IntegrityError:
            # Another process (a backfill beside the daemon) planned the same actions a moment earlier: its rows
            # stand, with the same deterministic keys; nothing is sent twice.
            pass

    def _apply_plan(
        self,
        planned: Sequence[str],
        new: Sequence[NewAction],
        supersede: Sequence[int],
        need_identity: Sequence[tuple[str, str]],
        still_dirty: Sequence[str],
    ) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            if supersede:
                conn.execute(
                    update(outbox_t)
                    .where(and_(outbox_t.c.id.in_(list(supersede)), outbox_t.c.status != "sending"))
                    .values(status="superseded", updated_at=now)
                )
            if new:
                # The sequence number makes the idempotency key deterministic and unique per target.
                counts: dict[tuple[str, str, str, str], int] = {}
                targets = {(a.community, a.customer_key, a.key.kind, a.key.target) for a in new}
                customers = list({a.customer_key for a in new})
                for chunk in _chunks(customers):
                    for row in conn.execute(
                        select(
                            outbox_t.c.community,
                            outbox_t.c.customer_key,
                            outbox_t.c.kind,
                            outbox_t.c.target,
                            func.count(),
                        )
                        .where(outbox_t.c.customer_key.in_(chunk))
                        .group_by(outbox_t.c.community, outbox_t.c.customer_key, outbox_t.c.kind, outbox_t.c.target)
                    ):
                        target = (row[0], row[1], row[2], row[3])
                        if target in targets:
                            counts[target] = row[4]
                rows = []
                for action in new:
                    target = (action.community, action.customer_key, action.key.kind, action.key.target)
                    seq = counts.get(target, 0) + 1
                    counts[target] = seq
                    rows.append(
                        {
                            "key": f"{action.community}/{action.customer_key}/{action.key.kind}/{action.key.target}"
                            f"/{action.op}/{seq}",
                            "community": action.community,
                            "customer_key": action.customer_key,
                            "kind": action.key.kind,
                            "target": action.key.target,
                            "op": action.op,
                            "remote_username": action.remote_username,
                            "status": "pending",
                            "attempts": 0,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                conn.execute(insert(outbox_t), rows)
            for community, key in need_identity:
                exists = conn.execute(
                    select(identities_t.c.status).where(
                        and_(identities_t.c.community == community, identities_t.c.customer_key == key)
                    )
                ).first()
                if exists is None:
                    conn.execute(
                        insert(identities_t).values(
                            community=community, customer_key=key, status="unmatched", attempts=0, updated_at=now
                        )
                    )
            done = [key for key in planned if key not in set(still_dirty)]
            for chunk in _chunks(done):
                conn.execute(update(customers_t).where(customers_t.c.key.in_(chunk)).values(dirty=False))

    # ---- outbox --------------------------------------------------------------------------------------------------

    def due(
        self, community: str, now: datetime, limit: int = 1000, not_since: datetime | None = None
    ) -> list[OutboxRow]:
        """Actions of ``community`` ready to send: pending, or failed whose retry time has come (oldest first).

        ``not_since``: skip failed rows already tried after that moment (one attempt per action per pass).
        """
        # Failed rows, and pending rows given back (released) earlier, wait for their time; and one try per pass.
        retry_due = and_(outbox_t.c.status.in_(("failed", "pending")), outbox_t.c.next_attempt_at <= now)
        if not_since is not None:
            retry_due = and_(retry_due, outbox_t.c.updated_at < not_since)
        fresh = and_(outbox_t.c.status == "pending", outbox_t.c.next_attempt_at.is_(None))
        with self.engine.connect() as conn:
            return [
                OutboxRow.model_validate(dict(row._mapping))
                for row in conn.execute(
                    select(outbox_t)
                    .where(and_(outbox_t.c.community == community, or_(fresh, retry_due)))
                    .order_by(outbox_t.c.id)
                    .limit(limit)
                )
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
        """Rows left in ``sending`` by a process that died: they must be verified against the remote before a resend."""
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

    def outbox_rows(self, ids: Sequence[int]) -> list[OutboxRow]:
        result: list[OutboxRow] = []
        with self.engine.connect() as conn:
            for chunk in _chunks(list(ids)):  # type: ignore[arg-type]
                result.extend(
                    OutboxRow.model_validate(dict(row._mapping))
                    for row in conn.execute(select(outbox_t).where(outbox_t.c.id.in_(chunk)).order_by(outbox_t.c.id))
                )
        return result

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
                values = {
                    "state": "granted" if row.op == "grant" else "revoked",
                    "remote_username": row.remote_username,
                    "remote_ref": refs.get(row.id) if row.op == "grant" else None,
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

    def open_actions(self, community: str, customer_key: str, kind: str, target: str) -> list[int]:
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

    def order_owner(self, number: str) -> tuple[str, str | None] | None:
        """(customer key, the customer's email) of the stored order with this buyer-visible number, or None.

        Orders stored before ``[link]`` was configured have no hash yet; their id is tried (it is the number on
        WooCommerce and Sellix); a ``backfill`` hashes every order's number.
        """
        where = orders_t.c.id == number.strip()
        if self.order_number_key:
            where = or_(
                orders_t.c.number_hash == order_number_hash(self.order_number_key, number),
                and_(orders_t.c.number_hash.is_(None), where),
            )
        with self.engine.connect() as conn:
            row = conn.execute(
                select(orders_t.c.customer_key, customers_t.c.email)
                .select_from(orders_t.outerjoin(customers_t, customers_t.c.key == orders_t.c.customer_key))
                .where(where)
                .limit(1)
            ).first()
        return (row[0], row[1]) if row else None

    def customer_email(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(customers_t.c.email).where(customers_t.c.key == key)).scalar_one_or_none()

    def identity(self, community: str, customer_key: str) -> IdentityRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(identities_t).where(
                    and_(identities_t.c.community == community, identities_t.c.customer_key == customer_key)
                )
            ).first()
        return IdentityRow.model_validate(dict(row._mapping)) if row else None

    def mark_dirty(self, keys: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            for chunk in _chunks(list(set(keys))):
                conn.execute(update(customers_t).where(customers_t.c.key.in_(chunk)).values(dirty=True))

    def find_customers(self, text: str) -> list[str]:
        """Customer keys for a shop id (``26`` or ``c:26``), a key, or an email."""
        candidates = {text, f"c:{text}", f"e:{text.strip().lower()}"}
        with self.engine.connect() as conn:
            keys = set(conn.execute(select(customers_t.c.key).where(customers_t.c.key.in_(list(candidates)))).scalars())
            keys |= set(
                conn.execute(select(customers_t.c.key).where(customers_t.c.email == text.strip().lower())).scalars()
            )
        return sorted(keys)

    def granted(self, community: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """What the ledger says holds on ``community``: (kind, target) → [(customer key, username)]."""
        found: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        with self.engine.connect() as conn:
            for row in conn.execute(
                select(ledger_t).where(and_(ledger_t.c.community == community, ledger_t.c.state == "granted"))
            ):
                found[(row.kind, row.target)].append((row.customer_key, row.remote_username or ""))
        return dict(found)

    def set_ledger_state(self, community: str, rows: Sequence[tuple[str, str, str]], state: str) -> None:
        """Move ledger rows (customer key, kind, target) to ``state`` (``override`` or ``revoked``) after a reconcile."""
        now = utcnow()
        with self.engine.begin() as conn:
            for customer_key, kind, target in rows:
                conn.execute(
                    update(ledger_t)
                    .where(
                        and_(
                            ledger_t.c.community == community,
                            ledger_t.c.customer_key == customer_key,
                            ledger_t.c.kind == kind,
                            ledger_t.c.target == target,
                        )
                    )
                    .values(state=state, updated_at=now)
                )
                conn.execute(update(customers_t).where(customers_t.c.key == customer_key).values(dirty=True))

    def overrides(self) -> list[dict[str, str]]:
        with self.engine.connect() as conn:
            return [
                {
                    "community": r.community,
                    "customer": r.customer_key,
                    "what": f"{r.kind} {r.target}",
                    "user": r.remote_username or "",
                    "since": r.updated_at.isoformat()[:19],
                }
                for r in conn.execute(
                    select(ledger_t).where(ledger_t.c.state == "override").order_by(ledger_t.c.updated_at)
                )
            ]

    def release(self, rows: Sequence[OutboxRow]) -> None:
        """Give claimed rows back as they were (pending or failed), without counting an attempt; they are tried
        again on the next pass, not in this one."""
        now = utcnow()
        with self.engine.begin() as conn:
            for row in rows:
                conn.execute(
                    update(outbox_t)
                    .where(and_(outbox_t.c.id == row.id, outbox_t.c.status == "sending"))
                    .values(
                        status="failed" if row.attempts else "pending",
                        claimed_by=None,
                        claimed_at=None,
                        next_attempt_at=now,
                        updated_at=now,
                    )
                )

    def ledger_ref(self, community: str, customer_key: str, kind: str, target: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(ledger_t.c.remote_ref).where(
                    and_(
                        ledger_t.c.community == community,
                        ledger_t.c.customer_key == customer_key,
                        ledger_t.c.kind == kind,
                        ledger_t.c.target == target,
                    )
                )
            ).scalar_one_or_none()

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

    # ---- remote object ids ---------------------------------------------------------------------------------------

    def remote_id(self, community: str, kind: str, name: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(remote_t.c.remote_id).where(
                    and_(remote_t.c.community == community, remote_t.c.kind == kind, remote_t.c.name == name)
                )
            ).scalar_one_or_none()

    def set_remote_id(self, community: str, kind: str, name: str, remote_id: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(remote_t).where(
                    and_(remote_t.c.community == community, remote_t.c.kind == kind, remote_t.c.name == name)
                )
            )
            if remote_id is not None:
                conn.execute(insert(remote_t).values(community=community, kind=kind, name=name, remote_id=remote_id))

    # ---- status --------------------------------------------------------------------------------------------------

    def outbox_counts(self) -> dict[str, int]:
        counts = {"pending": 0, "sending": 0, "failed": 0, "dead": 0, "done": 0, "superseded": 0}
        with self.engine.connect() as conn:
            for status, count in conn.execute(select(outbox_t.c.status, func.count()).group_by(outbox_t.c.status)):
                counts[status] = count
        return counts

    def problem_actions(self, limit: int = 20) -> list[OutboxRow]:
        """Failed and dead actions, newest first, for `status` and the failure summary."""
        with self.engine.connect() as conn:
            return [
                OutboxRow.model_validate(dict(row._mapping))
                for row in conn.execute(
                    select(outbox_t)
                    .where(outbox_t.c.status.in_(("failed", "dead")))
                    .order_by(outbox_t.c.updated_at.desc(), outbox_t.c.id.desc())
                    .limit(limit)
                )
            ]

    def actions_per_hour(self, now: datetime, hours: int = 24) -> list[int]:
        """Done outbox actions per hour over the last ``hours`` hours, oldest first (for the status page chart)."""
        start = now - timedelta(hours=hours)
        buckets = [0] * hours
        with self.engine.connect() as conn:
            for (stamp,) in conn.execute(
                select(outbox_t.c.updated_at).where(and_(outbox_t.c.status == "done", outbox_t.c.updated_at >= start))
            ):
                index = int((stamp - start).total_seconds() // 3600)
                if 0 <= index < hours:
                    buckets[index] += 1
        return buckets

    def quarantined(self, limit: int = 50) -> tuple[int, list[QuarantineRow]]:
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(quarantine_t)).scalar_one()
            rows = [
                QuarantineRow.model_validate(dict(row._mapping))
                for row in conn.execute(select(quarantine_t).order_by(quarantine_t.c.seen_at.desc()).limit(limit))
            ]
        return total, rows

    def totals(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {
                "orders": conn.execute(select(func.count()).select_from(orders_t)).scalar_one(),
                "paid_orders": conn.execute(
                    select(func.count()).select_from(orders_t).where(orders_t.c.status == OrderStatus.PAID.value)
                ).scalar_one(),
                "customers": conn.execute(select(func.count()).select_from(customers_t)).scalar_one(),
                "granted": conn.execute(
                    select(func.count()).select_from(ledger_t).where(ledger_t.c.state == "granted")
                ).scalar_one(),
            }
