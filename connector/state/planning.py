"""Planning: which customers to plan, what the planner reads about them, and writing its decisions to the outbox.

A customer is ``dirty`` when something the planner reads changed; ``apply_plan`` writes a chunk's new actions (with
deterministic keys), supersedes the ones no longer wanted and cleans the customers, in one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from connector.core.clock import utcnow
from connector.core.grants import GRANT_KINDS, OPEN_STATUSES, GrantKey, OpenAction
from connector.core.models import OrderStatus
from connector.state.sql import chunks, customers_t, identities_t, ledger_t, mark_customers_dirty, orders_t, outbox_t
from connector.state.tables import IdentityRow, LedgerRow


@dataclass(frozen=True)
class CustomerPlanInput:
    """Everything the planner needs about one customer on one pass.

    ``identities`` and ``ledger`` hold the database rows as read (they have the models' attributes; validating them
    into models would cost a large backfill for nothing): read them, do not write them.
    """

    key: str
    email: str | None
    paid_orders: tuple[frozenset[str], ...]
    identities: dict[str, IdentityRow]
    ledger: dict[str, dict[GrantKey, LedgerRow]]
    open_actions: dict[str, list[OpenAction]]


@dataclass(frozen=True)
class NewAction:
    """An action the planner wants written to the outbox (``op`` is ``grant``/``revoke`` for grants; features use
    their own verbs)."""

    community: str
    customer_key: str
    key: GrantKey
    op: str
    remote_username: str | None


class Plans:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def dirty_customer_keys(self, all_customers: bool = False) -> list[str]:
        """Customers to plan: the dirty ones, or every customer (a full reconcile)."""
        with self.engine.connect() as conn:
            query = select(customers_t.c.key).order_by(customers_t.c.key)
            if not all_customers:
                query = query.where(customers_t.c.dirty.is_(True))
            return list(conn.execute(query).scalars())

    def mark_dirty(self, keys: Sequence[str]) -> None:
        """Have these customers planned again on the next pass."""
        with self.engine.begin() as conn:
            mark_customers_dirty(conn, set(keys))

    def plan_inputs(self, keys: Sequence[str]) -> list[CustomerPlanInput]:
        """Load what the planner needs for a chunk of customers, in five queries."""
        with self.engine.connect() as conn:
            emails: dict[str, str | None] = {
                row.key: row.email
                for row in conn.execute(
                    select(customers_t.c.key, customers_t.c.email).where(customers_t.c.key.in_(keys))
                )
            }
            paid: dict[str, list[frozenset[str]]] = defaultdict(list)
            for row in conn.execute(
                select(orders_t.c.customer_key, orders_t.c.product_ids).where(
                    and_(orders_t.c.customer_key.in_(keys), orders_t.c.status == OrderStatus.PAID.value)
                )
            ):
                paid[row.customer_key].append(frozenset(p for p in row.product_ids.strip(",").split(",") if p))
            identities: dict[str, dict[str, IdentityRow]] = defaultdict(dict)
            for row in conn.execute(select(identities_t).where(identities_t.c.customer_key.in_(keys))):
                identities[row.customer_key][row.community] = cast(Any, row)  # a row read as the model (see above)
            ledger: dict[str, dict[str, dict[GrantKey, LedgerRow]]] = defaultdict(lambda: defaultdict(dict))
            for row in conn.execute(select(ledger_t).where(ledger_t.c.customer_key.in_(keys))):
                ledger[row.customer_key][row.community][GrantKey(row.kind, row.target)] = cast(Any, row)
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
        # IntegrityError: another process (a backfill beside the daemon) planned the same actions a moment earlier:
        # its rows stand, with the same deterministic keys; nothing is sent twice.
        with suppress(IntegrityError):
            self._apply_plan(planned, new, supersede, need_identity, still_dirty)

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
                for chunk in chunks(customers):
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
            for chunk in chunks(done):
                conn.execute(update(customers_t).where(customers_t.c.key.in_(chunk)).values(dirty=False))
