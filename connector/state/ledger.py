"""The ledger: what the connector has applied on each community (the ``applied`` in desired − applied).

Completed outbox actions move it (``Outbox.complete``, in the same transaction); a reconcile records what a moderator
changed by hand as an ``override``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import Connection, Engine, and_, bindparam, select, update

from connector.core.clock import utcnow
from connector.state.sql import chunks, ledger_t, mark_customers_dirty

#: The remote ids of a community's ledger rows for some customers (built once: see ``connector.state.outbox``).
_REFS = select(ledger_t.c.customer_key, ledger_t.c.kind, ledger_t.c.target, ledger_t.c.remote_ref).where(
    ledger_t.c.community == bindparam("community"), ledger_t.c.customer_key.in_(bindparam("keys", expanding=True))
)


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
                mark_customers_dirty(conn, [customer_key])

    def overrides(self) -> list[dict[str, str]]:
        """Grants a moderator removed by hand (never re-granted), oldest first."""
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

    def ledger_refs(self, keys: Sequence[tuple[str, str, str, str]]) -> dict[tuple[str, str, str, str], str | None]:
        """:meth:`ledger_ref` for many (community, customer key, kind, target) keys: one query per community and
        chunk of customers (a delivery round's revokes). Keys with no ledger row are left out."""
        with self.engine.connect() as conn:
            return held_refs(conn, set(keys))

    def ledger_ref(self, community: str, customer_key: str, kind: str, target: str) -> str | None:
        """The remote id needed to undo a grant (Discourse: the UserBadge id), if one was recorded."""
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


def held_refs(
    conn: Connection, wanted: Collection[tuple[str, str, str, str]]
) -> dict[tuple[str, str, str, str], str | None]:
    """The ledger rows among ``wanted`` (community, customer key, kind, target) keys that exist, with their remote ids,
    read on ``conn`` (inside the caller's transaction, if any): one query per community and chunk of customers."""
    by_community: dict[str, set[str]] = defaultdict(set)
    for community, customer_key, _, _ in wanted:
        by_community[community].add(customer_key)
    found: dict[tuple[str, str, str, str], str | None] = {}
    for community, customers in by_community.items():
        for chunk in chunks(sorted(customers)):
            for r in conn.execute(_REFS, {"community": community, "keys": list(chunk)}):
                key = (community, r.customer_key, r.kind, r.target)
                if key in wanted:
                    found[key] = r.remote_ref
    return found
