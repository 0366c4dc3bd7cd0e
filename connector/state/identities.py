"""Identities: which community account each shop customer is (matched by email, the link page or an admin).

Every link records how it was proven (:class:`Proof`), and a link moves to another account only for a stronger proof
(:meth:`Proof.moves`): an order number and its email, which anyone can type at a guest checkout, never takes a
customer away from the account it is linked to.

Also the look-ups that lead from what a member or an admin types to a customer (an order number, an id, an email),
and the single-use tokens the link page spends (signed links, OAuth2 ``state`` nonces).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from connector.core.clock import utcnow
from connector.core.grants import GrantKey
from connector.state.ledger import Ledger
from connector.state.names import AccountNames
from connector.state.planning import NewAction, Plans
from connector.state.sql import (
    chunks,
    customers_t,
    identities_t,
    mark_customers_dirty,
    order_number_hash,
    orders_t,
    table_of,
)
from connector.state.tables import IdentityRow, SpentTokenRow

spent_t = table_of(SpentTokenRow)

#: Spent tokens are kept this long past their own expiry (clocks of replicas may differ a little).
SPENT_MARGIN = timedelta(minutes=10)


class Proof(str, enum.Enum):
    """How a link between a shop customer and a community account was proven, by strength (:attr:`strength`).

    1. ``order-number``: someone knows a *paid* order's number and its email. Guest checkouts never verify the email,
       so this proves a purchase, not who the customer is: it links a customer nobody holds, and moves nothing.
    2. ``forum-email`` (the forum account's primary email, confirmed by Discourse, equals the shop email),
       ``verified-email`` (the Discord account's email, verified by Discord, equals the shop email) and
       ``signed-link`` (a link the shop's admin printed with ``cardbridge link-url``, for the shop email): whoever
       controls the shop email.
    3. ``admin``: ``cardbridge link``, the shop's own decision.
    """

    ORDER_NUMBER = "order-number"
    FORUM_EMAIL = "forum-email"
    VERIFIED_EMAIL = "verified-email"
    SIGNED_LINK = "signed-link"
    ADMIN = "admin"

    @property
    def strength(self) -> int:
        return _STRENGTH[self]

    def moves(self, current: Proof | None) -> bool:
        """Whether this proof may move a link made by ``current`` (None: recorded before proofs were, counted as the
        weakest) to another account: only a stronger proof does, and the admin CLI moves any link."""
        return self is Proof.ADMIN or self.strength > strength_of(current)

    @classmethod
    def of(cls, value: str | None) -> Proof | None:
        """The proof a stored value names (None for links stored before proofs were recorded, or unknown values)."""
        try:
            return cls(value) if value else None
        except ValueError:
            return None


_STRENGTH = {
    Proof.ORDER_NUMBER: 1,
    Proof.FORUM_EMAIL: 2,
    Proof.VERIFIED_EMAIL: 2,
    Proof.SIGNED_LINK: 2,
    Proof.ADMIN: 3,
}


def strength_of(proof: Proof | None) -> int:
    """A link's strength; one stored before proofs were recorded counts as the weakest (an order number)."""
    return proof.strength if proof is not None else Proof.ORDER_NUMBER.strength


def stronger(a: Proof, b: Proof | None) -> Proof:
    """The stronger of two proofs of the same link (``a`` when equal)."""
    return b if b is not None and b.strength > a.strength else a


class LinkRefused(Exception):
    """The customer is linked to another account by a proof at least as strong as the one offered: nothing moved."""

    def __init__(self, current: Proof | None) -> None:
        super().__init__(f"linked to another account by a proof of strength {strength_of(current)}")
        self.current = current


@dataclass(frozen=True)
class OrderProof:
    """What a buyer-visible order number leads to: its customer, the customer's email, and whether it is paid."""

    customer_key: str
    email: str | None
    paid: bool


def contact_email(customer_key: str, email: str | None) -> str | None:
    """The email a customer is reached at: its stored email, or a guest's key (``e:<email>``)."""
    if email:
        return email
    return customer_key[2:] if customer_key.startswith("e:") else None


def _equals(column: Any, value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


class Identities:
    """``ledger`` and ``plans``: the sections ``link`` hands a replaced account's grants to."""

    def __init__(self, engine: Engine, ledger: Ledger, plans: Plans, order_number_key: bytes | None = None) -> None:
        self.engine = engine
        self.ledger = ledger
        self.plans = plans
        #: With a key (``[link] secret``), orders are found by the keyed hash of their number.
        self.order_number_key = order_number_key
        #: The names and ids of the linked accounts as actions use them, and renames (:mod:`connector.state.names`).
        self.names = AccountNames(engine)

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
                        proof=Proof.FORUM_EMAIL.value,
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

    def link(
        self,
        community: str,
        customer_key: str,
        user_id: str | None,
        username: str | None,
        proof: Proof = Proof.ADMIN,
    ) -> str | None:
        """Link a customer to a community account (``None``: unlink), proven by ``proof``. Returns the account it
        replaced, if any.

        A customer linked to another account moves only when ``proof`` is stronger than the proof of that link
        (:meth:`Proof.moves`); otherwise :class:`LinkRefused` is raised and nothing changes. Linking the same account
        again keeps the stronger of the two proofs. Unlinking is the admin's alone.

        The old account loses what the connector granted it: its grants are queued as revokes under a key of their
        own (so the customer's new grants do not cancel them) and the ledger forgets them, so the planner grants them
        again to the new account. (The link commits first; the revokes and the ledger follow in transactions of
        their own, as a pass would write them.)
        """
        if user_id is None and proof is not Proof.ADMIN:
            raise ValueError("only the admin unlinks")
        for _ in range(3):
            try:
                previous = self._link_once(community, customer_key, user_id, username, proof)
            except _Raced:
                continue  # another link of this customer committed between our read and our write: decide again
            break
        else:
            raise LinkRefused(None)
        return self._revoke_previous(community, customer_key, previous, username or user_id)

    def _link_once(
        self, community: str, customer_key: str, user_id: str | None, username: str | None, proof: Proof
    ) -> str | None:
        now = utcnow()
        with self.engine.begin() as conn:
            where = and_(identities_t.c.community == community, identities_t.c.customer_key == customer_key)
            old = conn.execute(select(identities_t).where(where)).first()
            matched = old is not None and old.status == "matched"
            current = Proof.of(old.proof) if old is not None and matched else None
            same_account = matched and user_id is not None and old is not None and old.remote_user_id == user_id
            previous = old.remote_username if old is not None and matched and not same_account else None
            if matched and not same_account and not proof.moves(current):
                raise LinkRefused(current)
            if old is not None:
                # Only the row as it was read: a link written meanwhile is decided again, never overwritten blindly.
                unchanged = and_(
                    where,
                    identities_t.c.status == old.status,
                    _equals(identities_t.c.remote_user_id, old.remote_user_id),
                    _equals(identities_t.c.proof, old.proof),
                )
                if conn.execute(delete(identities_t).where(unchanged)).rowcount != 1:
                    raise _Raced()
            if user_id is not None:
                recorded = stronger(proof, current) if same_account else proof
                try:
                    conn.execute(
                        insert(identities_t).values(
                            community=community,
                            customer_key=customer_key,
                            status="matched",
                            remote_user_id=user_id,
                            remote_username=username or user_id,
                            proof=recorded.value,
                            attempts=0,
                            updated_at=now,
                        )
                    )
                except IntegrityError:
                    raise _Raced() from None
            conn.execute(update(customers_t).where(customers_t.c.key == customer_key).values(dirty=True))
        return previous

    def _revoke_previous(
        self, community: str, customer_key: str, previous: str | None, new_username: str | None
    ) -> str | None:
        if previous is None or previous == new_username:
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
            # The ledger forgets them, so the planner grants them again to the new account.
            self.ledger.set_ledger_state(
                community, [(customer_key, kind, target) for kind, target in grants], "revoked"
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

    def order_proof(self, number: str) -> OrderProof | None:
        """The stored order a buyer-visible number names (``number`` normalised by the caller: stripped, upper case),
        with its customer's email and whether it is paid; None when there is none.

        The keyed hash is tried first; orders stored before ``[link]`` was configured have no hash yet, and their id
        is compared case-insensitively (it is the number on WooCommerce and Sellix).
        """
        columns = (orders_t.c.customer_key, orders_t.c.status, customers_t.c.email)
        joined = orders_t.outerjoin(customers_t, customers_t.c.key == orders_t.c.customer_key)
        wheres = []
        if self.order_number_key:
            wheres.append(orders_t.c.number_hash == order_number_hash(self.order_number_key, number))
        wheres.append(and_(orders_t.c.number_hash.is_(None), func.upper(orders_t.c.id) == number.strip().upper()))
        with self.engine.connect() as conn:
            for where in wheres:
                # A number may name several stored orders only through the legacy id fallback; a paid one wins.
                rows = conn.execute(select(*columns).select_from(joined).where(where).limit(10)).all()
                if rows:
                    row = next((r for r in rows if r.status == "paid"), rows[0])
                    return OrderProof(
                        row.customer_key, contact_email(row.customer_key, row.email), row.status == "paid"
                    )
        return None

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

    # ---- single-use tokens ---------------------------------------------------------------------------------------

    @staticmethod
    def _spent_key(kind: str, token: str) -> str:
        return f"{kind[:24]}:{hashlib.sha256(token.encode()).hexdigest()}"

    def spend_token(self, kind: str, token: str, expires_at: datetime) -> bool:
        """Use a single-use token (``kind``: ``link``, ``state``, …): True the first time, False ever after.

        The token's hash is kept until ``expires_at`` (when the token's own signature refuses it anyway) and a little
        longer; expired entries are pruned on the way, so the table holds only tokens that could still be replayed.
        """
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(spent_t).where(spent_t.c.expires_at < now - SPENT_MARGIN))
                conn.execute(insert(spent_t).values(key=self._spent_key(kind, token), expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def token_spent(self, kind: str, token: str) -> bool:
        """Whether a single-use token was used already (a read; :meth:`spend_token` is what spends it)."""
        with self.engine.connect() as conn:
            key = self._spent_key(kind, token)
            return conn.execute(select(spent_t.c.key).where(spent_t.c.key == key)).first() is not None


class _Raced(Exception):
    """The identity row changed between the read and the write of a link."""
