"""Account names: which name and id each outbox action addresses, and what changes when a member renames their
community account (Discourse lets members change their username; the id stays).

The identity store links a customer to an account by id and name; open actions and the ledger carry the name. When an
adapter finds the account under a new name, :meth:`AccountNames.renamed` moves the link, the ledger rows and the open
actions to it in one transaction, so later actions and the reconcile use the name the community knows.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, and_, bindparam, select, update

from connector.core.clock import utcnow
from connector.core.grants import OPEN_STATUSES
from connector.state.sql import chunks, identities_t, ledger_t, outbox_t

#: The name columns' size (``remote_username``: 255).
NAME_MAX = 255

#: Each action's account name, with the linked account's user id and name (built once: see
#: ``connector.state.outbox``).
_ACCOUNTS = (
    select(
        outbox_t.c.id,
        outbox_t.c.remote_username,
        identities_t.c.remote_user_id,
        identities_t.c.remote_username.label("linked"),
    )
    .select_from(
        outbox_t.outerjoin(
            identities_t,
            and_(
                identities_t.c.community == outbox_t.c.community,
                identities_t.c.customer_key == outbox_t.c.customer_key,
                identities_t.c.status == "matched",
            ),
        )
    )
    .where(outbox_t.c.id.in_(bindparam("ids", expanding=True)))
)


class AccountNames:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def remote_accounts(self, community: str, customer_keys: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(remote user id, username) of each matched customer among ``customer_keys`` that has a user id, in one
        query per chunk (actions carry the id so a renamed account is still found)."""
        found: dict[str, tuple[str, str]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(customer_keys))):
                rows = conn.execute(
                    select(identities_t.c.customer_key, identities_t.c.remote_user_id, identities_t.c.remote_username)
                    .where(identities_t.c.community == community)
                    .where(identities_t.c.customer_key.in_(chunk), identities_t.c.status == "matched")
                    .where(identities_t.c.remote_user_id.is_not(None))
                ).all()
                found.update({r.customer_key: (r.remote_user_id, r.remote_username or "") for r in rows})
        return found

    def action_accounts(self, action_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
        """For outbox actions: (the account name the action names now, the account's user id when that name is the
        one the customer is linked to, else None), one query per chunk. Read fresh, since a rename found earlier in
        the pass renames open actions; a revoke for an account the customer was linked to before has no id here."""
        found: dict[int, tuple[str, str | None]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(action_ids))):
                for r in conn.execute(_ACCOUNTS, {"ids": list(chunk)}):
                    name = r.remote_username or ""
                    same = r.remote_user_id is not None and (r.linked or "").lower() == name.lower()
                    found[r.id] = (name, r.remote_user_id if same else None)
        return found

    def renamed(self, community: str, user_id: str, old: str, new: str) -> int:
        """The account ``user_id`` is now called ``new`` on ``community`` (its owner renamed it): the links to it, and
        the ledger rows and open actions that name it ``old``, take the new name, so later actions and the reconcile
        use the name the community knows. Returns how many links changed."""
        if not new or len(new) > NAME_MAX:
            return 0  # not a name the columns can hold: a community never hands one out; keep the link as it is
        now = utcnow()
        with self.engine.begin() as conn:
            keys = list(
                conn.execute(
                    select(identities_t.c.customer_key).where(
                        and_(identities_t.c.community == community, identities_t.c.remote_user_id == user_id)
                    )
                ).scalars()
            )
            if not keys:
                return 0
            conn.execute(
                update(identities_t)
                .where(and_(identities_t.c.community == community, identities_t.c.remote_user_id == user_id))
                .values(remote_username=new, updated_at=now)
            )
            for chunk in chunks(keys):
                mine = (ledger_t.c.community == community, ledger_t.c.customer_key.in_(chunk))
                conn.execute(
                    update(ledger_t).where(*mine, ledger_t.c.remote_username == old).values(remote_username=new)
                )
                conn.execute(
                    update(outbox_t)
                    .where(outbox_t.c.community == community, outbox_t.c.customer_key.in_(chunk))
                    .where(outbox_t.c.remote_username == old, outbox_t.c.status.in_(OPEN_STATUSES))
                    .values(remote_username=new)
                )
        return len(keys)
