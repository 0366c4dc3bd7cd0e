"""Linked Roles: each linked member's metadata (verified buyer, paid orders, points) written to Discord.

Discord lets a server offer a role that members claim themselves when their connection's metadata meets the role's
conditions (Server Settings > Roles > Links). CardBridge registers three metadata records on the application and,
for every member who linked with the ``role_connections.write`` scope, writes their values with the member's own
token (``PUT /users/@me/applications/{app}/role-connection``). Like every other write, it goes through the outbox
and is sent only when the values changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from adapters.base import Outcome
from adapters.communities.discord_client import OAuthError
from connector.core.clock import utcnow
from connector.core.logs import log
from connector.state.store import NewAction
from connector.state.tables import OutboxRow
from connector.state.tokens import TokenStore
from mappings.grants import GrantKey

if TYPE_CHECKING:
    from connector.flow.pass_ import Connector

KIND = "role_connection"

#: The application's metadata records (type 7 BOOLEAN_EQUAL, type 2 INTEGER_GREATER_THAN_OR_EQUAL); booleans are sent
#: as 1/0 and every value is sent explicitly (an empty metadata object is accepted but not registered).
RECORDS = [
    {"type": 7, "key": "verified_buyer", "name": "Verified buyer", "description": "Has a paid order in the shop"},
    {"type": 2, "key": "order_count", "name": "Paid orders", "description": "Paid orders in the shop, at least"},
    {"type": 2, "key": "points", "name": "Points", "description": "Shop points, at least"},
]


def metadata(paid_orders: int, points: int) -> dict[str, str]:
    return {
        "verified_buyer": "1" if paid_orders else "0",
        "order_count": str(paid_orders),
        "points": str(max(points, 0)),
    }


def metadata_hash(values: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


class LinkedRolesStage:
    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        link = connector.config.link
        self.community = link.community if link and link.linked_roles else None
        self.tokens = TokenStore(connector.store.engine, link.token_key) if link and link.token_key else None

    @property
    def enabled(self) -> bool:
        return self.community is not None and self.tokens is not None and self.community in self.connector.communities

    def plan(self, chunk: Sequence[str], inputs: dict[str, tuple[int, int, str | None]]) -> list[NewAction]:
        """``inputs``: customer → (paid orders, points total, Discord user id if linked). One action per member whose
        metadata differs from what was last written."""
        if not self.enabled or self.tokens is None or self.community is None:
            return []
        states = self.tokens.for_customers(chunk)
        new: list[NewAction] = []
        for key in chunk:
            state = states.get((self.community, key))
            if state is None or state[2] is not None:
                continue
            token_user, written, _ = state
            paid, total, user = inputs.get(key, (0, 0, None))
            if self.connector.store.open_actions(self.community, key, KIND, key):
                continue
            if user != token_user:
                # Unlinked, or relinked to another account by an admin: the old account's connection is cleared
                # with its own token, which is then forgotten.
                new.append(NewAction(self.community, key, GrantKey(KIND, key), "clear", token_user))
            elif written != metadata_hash(metadata(paid, total)):
                new.append(NewAction(self.community, key, GrantKey(KIND, key), "set", user))
        return new

    def payload(self, row: OutboxRow) -> dict[str, Any]:
        """The member's access token (refreshed when it is about to expire) and the values to write now."""
        assert self.tokens is not None
        token = self.tokens.get(row.community, row.customer_key)
        if token is None:
            return {"error": "the member's link was removed"}
        if token.revoked:
            return {"error": token.revoked}
        access: str | None = token.access_token
        if token.expires_at <= utcnow() + timedelta(minutes=5):
            access = self._renew(row, token.refresh_token)
            if access is None:
                return {"error": self._revoked_reason}
        reviews = self.connector.content.reviews
        if row.op == "clear":
            values = metadata(0, 0)
        else:
            paid = sum(1 for _, is_paid, _ in reviews.customer_orders(row.customer_key) if is_paid)
            values = metadata(paid, reviews.point_total(row.customer_key))
        link = self.connector.config.link
        return {
            "access_token": access,
            "metadata": values,
            "hash": metadata_hash(values),
            "platform_name": link.platform_name if link else "Shop",
            # A token Discord refuses before its expiry (revoked early, or a clock that is off) gets one renewal.
            "renew": lambda: self._renew(row, None),
        }

    _revoked_reason = "the member's Discord authorisation no longer works; they must link again"

    def _renew(self, row: OutboxRow, refresh_token: str | None) -> str | None:
        """A fresh access token, stored at once (Discord rotates refresh tokens); None when the grant is gone."""
        assert self.tokens is not None
        if refresh_token is None:
            token = self.tokens.get(row.community, row.customer_key)
            if token is None or token.revoked:
                return None
            refresh_token = token.refresh_token
        oauth = getattr(self.connector.communities.get(row.community), "oauth", None)
        if oauth is None:
            return None
        try:
            fresh = oauth.refresh(refresh_token)
        except OAuthError as error:
            self.tokens.revoke(row.community, row.customer_key, f"{self._revoked_reason} ({error.error})")
            return None
        self.tokens.refreshed(
            row.community, row.customer_key, fresh.access_token, fresh.refresh_token, fresh.expires_at
        )
        return fresh.access_token

    def record(self, rows: Sequence[OutboxRow], outcomes: dict[int, Outcome]) -> None:
        if self.tokens is None:
            return
        for row in rows:
            outcome = outcomes.get(row.id or 0)
            if row.kind != KIND or outcome is None:
                continue
            if outcome.ok and row.op == "clear":
                self.tokens.forget(row.community, row.customer_key)
            elif outcome.ok and outcome.data.get("hash"):
                self.tokens.written(row.community, row.customer_key, str(outcome.data["hash"]))
            elif outcome.data.get("revoked"):
                self.tokens.revoke(row.community, row.customer_key, str(outcome.data["revoked"]))
                log.warning("member token revoked", community=row.community, customer=row.customer_key)
