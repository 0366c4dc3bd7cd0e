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
from collections.abc import Mapping, Sequence
from datetime import timedelta

from adapters.base import CommunityAdapter, MemberAuthorization, OAuthError, Outcome
from connector.core.clock import utcnow
from connector.core.config import Config
from connector.core.grants import GrantKey
from connector.core.logs import log
from connector.core.payloads import Payload, RoleConnection, Unsendable
from connector.features.base import PlanBatch, Run
from connector.state import State
from connector.state.planning import NewAction
from connector.state.tables import OutboxRow

KIND = "role_connection"


def metadata(paid_orders: int, points: int) -> dict[str, str]:
    """The values of the application's metadata records (registered by the Discord adapter); booleans as 1/0."""
    return {
        "verified_buyer": "1" if paid_orders else "0",
        "order_count": str(paid_orders),
        "points": str(max(points, 0)),
    }


def metadata_hash(values: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


class LinkedRolesFeature:
    kinds = frozenset({KIND})
    _revoked_reason = "the member's Discord authorisation no longer works; they must link again"

    def __init__(self, state: State, config: Config, communities: Mapping[str, CommunityAdapter]) -> None:
        self.state, self.config, self.communities = state, config, communities
        link = config.link
        self.community = link.community if link and link.linked_roles else None
        self.tokens = state.tokens

    @property
    def enabled(self) -> bool:
        return self.community is not None and self.tokens is not None and self.community in self.communities

    def prepare(self, run: Run) -> None:
        return None

    def plan(self, run: Run, batch: PlanBatch) -> None:
        """One action per linked member whose metadata (paid orders, points) differs from what was last written."""
        if not self.enabled or self.tokens is None or self.community is None:
            return
        community = self.community
        states = self.tokens.for_customers(batch.keys)
        for customer in batch.customers:
            key = customer.key
            state = states.get((community, key))
            if state is None or state[2] is not None:
                continue
            token_user, written, _ = state
            identity = customer.identities.get(community)
            user = identity.remote_user_id if identity and identity.status == "matched" else None
            if self.state.outbox.open_actions(community, key, KIND, key):
                continue
            if user != token_user:
                # Unlinked, or relinked to another account by an admin: the old account's connection is cleared
                # with its own token, which is then forgotten.
                batch.new.append(NewAction(community, key, GrantKey(KIND, key), "clear", token_user))
            elif written != metadata_hash(metadata(len(customer.paid_orders), batch.points.get(key, 0))):
                batch.new.append(NewAction(community, key, GrantKey(KIND, key), "set", user))

    def describe(self, row: OutboxRow) -> str | None:
        # Not the payload: building it may refresh the member's token, a remote write.
        if row.op == "clear":
            return "clear the Linked Roles metadata"
        reviews = self.state.reviews
        paid = sum(1 for _, is_paid, _ in reviews.customer_orders(row.customer_key) if is_paid)
        values = metadata(paid, reviews.point_total(row.customer_key))
        return ", ".join(f"{name} = {value}" for name, value in values.items())

    def payload(self, row: OutboxRow) -> Payload:
        """The member's access token (refreshed when it is about to expire) and the values to write now."""
        if self.tokens is None:
            return Unsendable("[link] token_key is not configured")
        token = self.tokens.get(row.community, row.customer_key)
        if token is None:
            return Unsendable("the member's link was removed")
        if token.revoked:
            return Unsendable(token.revoked)
        access: str | None = token.access_token
        if token.expires_at <= utcnow() + timedelta(minutes=5):
            access = self._renew(row, token.refresh_token)
            if access is None:
                return Unsendable(self._revoked_reason)
        reviews = self.state.reviews
        if row.op == "clear":
            values = metadata(0, 0)
        else:
            paid = sum(1 for _, is_paid, _ in reviews.customer_orders(row.customer_key) if is_paid)
            values = metadata(paid, reviews.point_total(row.customer_key))
        link = self.config.link
        return RoleConnection(
            access_token=access,
            metadata=values,
            hash=metadata_hash(values),
            platform_name=link.platform_name if link else "Shop",
            # A token Discord refuses before its expiry (revoked early, or a clock that is off) gets one renewal.
            renew=lambda: self._renew(row, None),
        )

    def _renew(self, row: OutboxRow, refresh_token: str | None) -> str | None:
        """A fresh access token, stored at once (Discord rotates refresh tokens); None when the grant is gone."""
        assert self.tokens is not None
        if refresh_token is None:
            token = self.tokens.get(row.community, row.customer_key)
            if token is None or token.revoked:
                return None
            refresh_token = token.refresh_token
        adapter = self.communities.get(row.community)
        if not isinstance(adapter, MemberAuthorization) or adapter.oauth is None:
            return None
        try:
            fresh = adapter.oauth.refresh(refresh_token)
        except OAuthError as error:
            self.tokens.revoke(row.community, row.customer_key, f"{self._revoked_reason} ({error.error})")
            return None
        self.tokens.refreshed(
            row.community, row.customer_key, fresh.access_token, fresh.refresh_token, fresh.expires_at
        )
        return fresh.access_token

    def record(self, run: Run, rows: Sequence[OutboxRow], outcomes: Mapping[int, Outcome]) -> None:
        if self.tokens is None:
            return
        for row in rows:
            outcome = outcomes.get(row.id or 0)
            if outcome is None:
                continue
            if outcome.ok and row.op == "clear":
                self.tokens.forget(row.community, row.customer_key)
            elif outcome.ok and outcome.data.get("hash"):
                self.tokens.written(row.community, row.customer_key, str(outcome.data["hash"]))
            elif outcome.data.get("revoked"):
                self.tokens.revoke(row.community, row.customer_key, str(outcome.data["revoked"]))
                log.warning("member token revoked", community=row.community, customer=row.customer_key)
