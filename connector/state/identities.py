"""Identities: which community account each shop customer is (matched by email, the link page or an admin).

Also the look-ups that lead from what a member or an admin types to a customer: an order number, an id, an email.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update

from connector.core.clock import utcnow
from connector.core.grants import GrantKey
from connector.state.ledger import Ledger
from connector.state.planning import NewAction, Plans
from connector.state.sql import (
    chunks,
    customers_t,
    identities_t,
    ledger_t,
    mark_customers_dirty,
    order_number_hash,
    orders_t,
)
from connector.state.tables import IdentityRow


class Identities:
    """``ledger`` and ``plans``: the sections ``link`` hands a replaced account's grants to."""

    def __init__(self, engine: Engine, ledger: Ledger, plans: Plans, order_number_key: bytes | None = None) -> None:
        self.engine = engine
        self.ledger = ledger
        self.plans = plans
        #: With a key (``[link] secret``), orders are found by the keyed hash of their number.
        self.order_number_key = order_number_key

    # ---- matching ------------------------------------------------------------------------------------------------

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
            mark_customers_dirty(conn, list(matched))
            for chunk in chunks(list(unmatched)):
                conn.execute(
                    update(identities_t)
                    .where(and_(identities_t.c.community == community, identities_t.c.customer_key.in_(chunk)))
                    .values(attempts=identities_t.c.attempts + 1, next_attempt_at=now + retry_after, updated_at=now)
                )

    def link(self, community: str, customer_key: str, user_id: str | None, username: str | None) -> str | None:
        """Link a customer to a community account (``None``: unlink). Returns the account it replaced, if any.

        The old account loses what the connector granted it: its grants are queued as revokes under a key of their
        own (so the customer's new grants do not cancel them) and the ledger forgets them, so the planner grants them
        again to the new account. (The link commits first; the revokes and the ledger follow in transactions of
        their own, as a pass would write them.)
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
            for (kind, target), rows in self.ledger.granted(community).items()
            for key, _ in rows
            if key == customer_key
        ]
        if grants:
            owner = f"{customer_key}#was:{previous}"
            self.plans.apply_plan(
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
        """Customers still waiting for a community account, per community."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(identities_t.c.community, func.count())
                .where(identities_t.c.status == "unmatched")
                .group_by(identities_t.c.community)
            ).all()
        return {row[0]: row[1] for row in rows}

    def identity(self, community: str, customer_key: str) -> IdentityRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(identities_t).where(
                    and_(identities_t.c.community == community, identities_t.c.customer_key == customer_key)
                )
            ).first()
        return IdentityRow.model_validate(dict(row._mapping)) if row else None

    # ---- finding customers ---------------------------------------------------------------------------------------

    def customer_email(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(customers_t.c.email).where(customers_t.c.key == key)).scalar_one_or_none()

    def find_customers(self, text: str) -> list[str]:
        """Customer keys for a shop id (``26`` or ``c:26``), a key, or an email."""
        candidates = {text, f"c:{text}", f"e:{text.strip().lower()}"}
        with self.engine.connect() as conn:
            keys = set(conn.execute(select(customers_t.c.key).where(customers_t.c.key.in_(list(candidates)))).scalars())
            keys |= set(
                conn.execute(select(customers_t.c.key).where(customers_t.c.email == text.strip().lower())).scalars()
            )
        return sorted(keys)

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
