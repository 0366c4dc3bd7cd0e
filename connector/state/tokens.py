"""Members' OAuth2 tokens from the link page, encrypted at rest (Fernet), for Linked Roles metadata updates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import Engine, and_, delete, select, update

from connector.core.clock import utcnow
from connector.state.sql import table_of
from connector.state.tables import MemberTokenRow

tokens_t = table_of(MemberTokenRow)


@dataclass(frozen=True)
class MemberToken:
    community: str
    customer_key: str
    user_id: str
    scopes: frozenset[str]
    access_token: str
    refresh_token: str
    expires_at: datetime
    metadata_hash: str | None
    revoked: str | None


class TokenStore:
    """Read and write members' tokens; nothing leaves this class unencrypted except to the caller."""

    def __init__(self, engine: Engine, key: str) -> None:
        self.engine = engine
        self.fernet = Fernet(key.encode())

    def _open(self, row: MemberTokenRow | None) -> MemberToken | None:
        if row is None:
            return None
        try:
            access = self.fernet.decrypt(row.access_token.encode()).decode()
            refresh = self.fernet.decrypt(row.refresh_token.encode()).decode()
        except InvalidToken:
            # Encrypted with another key (token_key was changed): the member has to link again.
            access = refresh = ""
        return MemberToken(
            row.community,
            row.customer_key,
            row.user_id,
            frozenset(row.scopes.split()),
            access,
            refresh,
            row.expires_at,
            row.metadata_hash,
            row.revoked or (None if access else "token_key changed; the member must link again"),
        )

    def save(
        self,
        community: str,
        customer_key: str,
        user_id: str,
        scopes: Sequence[str],
        access_token: str,
        refresh_token: str,
        expires_at: float,
    ) -> None:
        """Store (or replace) a member's tokens; a new grant clears ``revoked`` and the last metadata written."""
        values = {
            "user_id": user_id,
            "scopes": " ".join(sorted(scopes))[:255],
            "access_token": self.fernet.encrypt(access_token.encode()).decode(),
            "refresh_token": self.fernet.encrypt(refresh_token.encode()).decode(),
            "expires_at": datetime.fromtimestamp(expires_at, UTC),
            "updated_at": utcnow(),
        }
        with self.engine.begin() as conn:
            where = and_(tokens_t.c.community == community, tokens_t.c.customer_key == customer_key)
            conn.execute(delete(tokens_t).where(where))
            conn.execute(
                tokens_t.insert().values(
                    community=community, customer_key=customer_key, metadata_hash=None, revoked=None, **values
                )
            )

    def refreshed(
        self, community: str, customer_key: str, access_token: str, refresh_token: str, expires_at: float
    ) -> None:
        """Replace rotated tokens at once: Discord's old refresh token stops working when a new one is issued."""
        with self.engine.begin() as conn:
            conn.execute(
                update(tokens_t)
                .where(and_(tokens_t.c.community == community, tokens_t.c.customer_key == customer_key))
                .values(
                    access_token=self.fernet.encrypt(access_token.encode()).decode(),
                    refresh_token=self.fernet.encrypt(refresh_token.encode()).decode(),
                    expires_at=datetime.fromtimestamp(expires_at, UTC),
                    updated_at=utcnow(),
                )
            )

    def get(self, community: str, customer_key: str) -> MemberToken | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(tokens_t).where(and_(tokens_t.c.community == community, tokens_t.c.customer_key == customer_key))
            ).first()
        return self._open(MemberTokenRow.model_validate(dict(row._mapping)) if row else None)

    def for_customers(self, keys: Sequence[str]) -> dict[tuple[str, str], tuple[str, str | None, str | None]]:
        """(community, customer) → (Discord user id, metadata hash last written, revoked reason); nothing decrypted."""
        if not keys:
            return {}
        with self.engine.connect() as conn:
            return {
                (r.community, r.customer_key): (r.user_id, r.metadata_hash, r.revoked)
                for r in conn.execute(
                    select(
                        tokens_t.c.community,
                        tokens_t.c.customer_key,
                        tokens_t.c.user_id,
                        tokens_t.c.metadata_hash,
                        tokens_t.c.revoked,
                    ).where(tokens_t.c.customer_key.in_(list(keys)))
                )
            }

    def written(self, community: str, customer_key: str, metadata_hash: str) -> None:
        self._set(community, customer_key, metadata_hash=metadata_hash)

    def revoke(self, community: str, customer_key: str, reason: str) -> None:
        self._set(community, customer_key, revoked=reason[:255])

    def forget(self, community: str, customer_key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(tokens_t).where(and_(tokens_t.c.community == community, tokens_t.c.customer_key == customer_key))
            )

    def _set(self, community: str, customer_key: str, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(tokens_t)
                .where(and_(tokens_t.c.community == community, tokens_t.c.customer_key == customer_key))
                .values(updated_at=utcnow(), **values)
            )
