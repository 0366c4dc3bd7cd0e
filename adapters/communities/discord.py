"""Discord community adapter (``kind = "discord"``): verified-buyer roles on a guild, review threads in a forum
channel (:mod:`adapters.communities.discord_reviews`), and members' Linked Roles metadata.

Only the roles the rules name are ever touched (``PUT``/``DELETE /guilds/{g}/members/{u}/roles/{r}``, both
idempotent, each with an ``X-Audit-Log-Reason``). Discord has no email look-up: a customer gets roles once they link
on the link page (:class:`~adapters.base.MemberAuthorization`) or an admin links them
(``cardbridge link --customer ID --discord-user ID``).

- 401: the token is wrong; the community stops at once (Discord bans IPs that keep making invalid requests).
- 403 ``50013``: the role is above the bot's highest role; the action is parked as dead with that reason, reported once
  per role per pass, never retried in a loop.
- 404 ``10007``: the member is not in the guild; the action waits and is granted when they join.
- 429 asking for longer than ``max_retry_wait_seconds`` (a ``shared`` limit on a channel can say 1337 s): not slept;
  :class:`~connector.core.http.Deferred` reaches the delivery stage, which defers that action to the time given and
  goes on with the others (Discord limits are per bucket and top-level resource, so a thread that is limited says
  nothing about roles or other threads; requests to the held bucket are refused locally, never sent).
- A POST whose answer is a 5xx or never arrives is not re-sent blindly: the action is verified (its message or thread
  looked for) before it is sent again.

The reconcile reads each member CardBridge granted a role to (``GET /guilds/{g}/members/{u}``; listing every member
would need the privileged GUILD_MEMBERS intent): a managed role removed by hand is drift, and a member who left the
server gets the role again when they come back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import httpx
from pydantic import Field, field_validator

from adapters.base import (
    Action,
    CommunityStats,
    CommunityStopped,
    IdCache,
    Match,
    MemberOAuth,
    Outcome,
    settled_payload,
    wrong_payload,
)
from adapters.checks import Check, CheckContext
from adapters.communities.discord_check import check_guild
from adapters.communities.discord_client import API, DiscordClient, DiscordOAuth, error_code
from adapters.communities.discord_constants import RECORDS
from adapters.communities.discord_contributions import ReactionContributions, snowflake_time
from adapters.communities.discord_insights import DemandThreads
from adapters.communities.discord_interactions import COMMANDS, parse_interaction, public_key, verify_signature
from adapters.communities.discord_products import ProductThreads
from adapters.communities.discord_reviews import ReviewThreads
from adapters.communities.discord_webhooks import InteractionWebhooks
from adapters.contributions import Contribution, Interaction
from adapters.insights import Topic
from connector.core.budget import LimitStore
from connector.core.config import Rule
from connector.core.http import Deferred, RemoteError, describe_body, stopped_reason
from connector.core.logs import log
from connector.core.payloads import Announcement, DiscordPost, ProductCard, RoleConnection
from connector.core.settings import CommunitySettings, HttpUrl, RemoteTimeouts, RequiredStr


class DiscordSettings(CommunitySettings, RemoteTimeouts):
    """``[communities.<name>]`` with ``kind = "discord"``."""

    #: The bot's token (Developer Portal > Bot), the guild (server) id, and the API root.
    bot_token: RequiredStr
    guild_id: RequiredStr
    api_base: HttpUrl = API
    #: For the member link page and Linked Roles: the application's id (= OAuth2 client id), its OAuth2 client secret,
    #: and the site that serves the OAuth2 authorize page.
    application_id: str = ""
    client_secret: str = ""
    oauth_base: HttpUrl = "https://discord.com"
    #: For slash commands (``/points``, ``/redeem``) over HTTP: the application's public key (Developer Portal >
    #: General Information > Public Key, 64 hex characters), which signs every interaction Discord sends.
    public_key: str = ""
    #: Earning points from reactions: the most forum threads and messages read in one pass (the newest first).
    earn_max_threads: Annotated[int, Field(ge=1, le=10_000)] = 200
    earn_max_messages: Annotated[int, Field(ge=1, le=100_000)] = 5000
    #: ... and the most requests (thread lists, message pages, reaction pages), paced by Discord's buckets.
    earn_max_requests: Annotated[int, Field(ge=1, le=100_000)] = 2000

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        if value:
            public_key(value)  # 64 hex characters, else the message says so
        return value.lower()

    def missing_for(self, section: str) -> list[str]:
        if section == "link":
            needed = {"application_id": self.application_id, "client_secret": self.client_secret}
        elif section in ("interactions", "redeem"):
            needed = {"application_id": self.application_id, "public_key": self.public_key}
        else:
            return []
        return [key for key, value in needed.items() if not value]


_HINTS = {
    50013: " - the bot lacks a permission here (Send Messages / Manage Threads in the forum channel)",
    50001: " - the bot cannot see the channel (View Channel)",
    40067: " - the forum requires a tag: set [reviews] tags",
    40058: " - forum_channel must be a forum channel's id",
}


class DiscordCommunity:
    """Roles, review threads and Linked Roles on one guild. Capabilities: :class:`~adapters.base.MemberCheck`,
    :class:`~adapters.base.ThreadCheck`, :class:`~adapters.base.UserLookup`,
    :class:`~adapters.base.MemberAuthorization`, :class:`~adapters.contributions.InteractionEndpoint` (slash commands,
    :mod:`adapters.communities.discord_interactions`) and :class:`~adapters.contributions.ContributionSource`
    (reactions in forum channels, :mod:`adapters.communities.discord_contributions`), and
    :class:`~adapters.base.SharesRateLimits`."""

    kind = "discord"
    settings = DiscordSettings

    def __init__(
        self,
        name: str,
        config: DiscordSettings,
        rules: Sequence[Rule] = (),
        cache: IdCache | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.clock = clock
        self.config = config
        self.guild = config.guild_id
        # The bot's client and the OAuth2 one reach the same API under the same table's limits.
        limits: dict[str, Any] = {
            "transport": transport,
            "timeout": config.timeout_seconds,
            "connect_timeout": config.connect_timeout_seconds,
            "max_retry_seconds": config.max_retry_seconds,
            "keys": f"[communities.{name}]",
            "max_wait": config.max_retry_wait_seconds,
        }
        self._client = DiscordClient(config.bot_token, config.api_base, sleep=sleep, **limits)
        # The application's OAuth2 side (link page, Linked Roles), when application_id is set.
        self._oauth = (
            DiscordOAuth(
                config.application_id,
                config.client_secret,
                config.api_base,
                config.oauth_base,
                **limits,
            )
            if config.application_id
            else None
        )
        self._reviews = ReviewThreads(self._client, self.guild, cache)
        self._products = ProductThreads(self._reviews)
        self._public_key = public_key(config.public_key) if config.public_key else None
        self._webhooks = (
            InteractionWebhooks(config.application_id, config.api_base, sleep=sleep, **limits)
            if config.application_id
            else None
        )
        self._commands_registered = False
        self._earn = ReactionContributions(
            self._client, self.guild, config.earn_max_threads, config.earn_max_messages, config.earn_max_requests
        )
        self._demand = DemandThreads(self._client, self.guild)
        self._records_checked = False
        self.role_names = {
            grant.role: rule.name
            for rule in rules
            for community, grant in rule.grant.items()
            if community == name and grant.role
        }
        self._reported: set[str] = set()

    def share_rate_limits(self, store: LimitStore) -> None:
        """The bot's global gate, buckets and 429 holds counted in ``store`` (:class:`~adapters.base.SharesRateLimits`).
        The OAuth2 client (members' own tokens, buckets per token) and interaction replies (webhook buckets, outside
        the global limit) stay paced in this process."""
        self._client.share_limits(store)

    def match_users(self, emails: Mapping[str, str]) -> dict[str, Match]:
        return {}  # Discord cannot look users up by email; customers are linked explicitly

    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes = []
        for action in actions:
            if action.kind == "review":
                outcomes.append(self._guarded(action, self._review))
            elif action.kind in ("product_card", "announcement"):
                outcomes.append(self._guarded(action, self._product))
            elif action.kind == "role_connection":
                outcomes.append(self._guarded(action, self._role_connection))
            else:
                outcomes.append(self._role(action))
        return outcomes

    def _guarded(self, action: Action, apply: Callable[[Action], Outcome]) -> Outcome:
        """Errors shared by every bot call: a refused token stops the community, an outage stops the pass."""
        try:
            return apply(action)
        except Deferred:
            raise  # this action's limit only: the delivery stage defers it and goes on
        except RemoteError as error:
            if error.status == 401:
                raise CommunityStopped(f"{self.name}: the bot token was refused (401); fix bot_token") from error
            if error.status >= 500 or error.status == 429:
                raise CommunityStopped(stopped_reason(self.name, error)) from error
            permanent = error.status in (400, 403, 404)
            hint = _HINTS.get(error_code(error) or 0, "")
            return Outcome(
                action.id, False, error=f"{describe_body(error.body)} (HTTP {error.status}){hint}", permanent=permanent
            )
        except httpx.HTTPError as error:
            raise CommunityStopped(f"{self.name}: unreachable: {error}") from error

    def _review(self, action: Action) -> Outcome:
        settled = settled_payload(action)
        if settled is not None:
            return settled
        if not isinstance(action.payload, DiscordPost):
            return wrong_payload(action, DiscordPost)
        return self._reviews.apply(action, action.payload)

    def _product(self, action: Action) -> Outcome:
        settled = settled_payload(action)
        if settled is not None:
            return settled
        p = action.payload
        if action.kind == "product_card":
            return self._products.card(action, p) if isinstance(p, ProductCard) else wrong_payload(action, ProductCard)
        return (
            self._products.announce(action, p) if isinstance(p, Announcement) else wrong_payload(action, Announcement)
        )

    # ---- Linked Roles --------------------------------------------------------------------------------------------

    def _ensure_records(self) -> None:
        """Register the metadata records once per process; no write when Discord already has them."""
        if self._records_checked:
            return
        current = self._client.role_metadata(self.config.application_id)
        strip = [{k: r.get(k) for k in ("type", "key", "name", "description")} for r in current]
        if strip != RECORDS:
            self._client.set_role_metadata(self.config.application_id, RECORDS)
        self._records_checked = True

    def _role_connection(self, action: Action) -> Outcome:
        settled = settled_payload(action)
        if settled is not None:
            return settled
        p = action.payload
        if not isinstance(p, RoleConnection):
            return wrong_payload(action, RoleConnection)
        if self._oauth is None:
            return Outcome(action.id, False, permanent=True, error="application_id is not configured")
        self._ensure_records()
        connection = {"platform_name": p.platform_name, "metadata": dict(p.metadata)}
        # The member's token, not the bot's: a refusal means they removed the app or the scope.
        revoked = "the member's Discord authorisation was withdrawn; they must link again"
        try:
            token = p.access_token or p.renew()
            if token is None:
                return Outcome(action.id, False, permanent=True, error=revoked, data={"revoked": revoked})
            try:
                self._oauth.set_role_connection(token, connection)
            except RemoteError as error:
                renewed = p.renew() if error.status == 401 else None
                if renewed is None:
                    raise
                self._oauth.set_role_connection(renewed, connection)
        except RemoteError as error:
            if error.status in (401, 403):
                return Outcome(action.id, False, permanent=True, error=revoked, data={"revoked": revoked})
            raise
        return Outcome(action.id, True, data={"hash": p.hash})

    # ---- MemberAuthorization: the link page and Linked Roles -----------------------------------------------------

    @property
    def oauth(self) -> MemberOAuth | None:
        """The application's OAuth2 flow; None without ``application_id``."""
        return self._oauth

    def add_member(self, user_id: str, access_token: str) -> bool:
        """Add a member who authorised ``guilds.join`` to the guild (the bot must be in it with Create Instant
        Invite). True if added, False if already a member."""
        return self._client.add_member(self.guild, user_id, access_token)

    # ---- InteractionEndpoint: /points and /redeem ----------------------------------------------------------------

    def verify_interaction(self, signature: str, timestamp: str, body: bytes) -> bool:
        """Ed25519 over ``timestamp + body`` with ``public_key``, the timestamp within 15 minutes of now; False for
        anything malformed, and always False without ``public_key``."""
        if self._public_key is None:
            return False
        return verify_signature(self._public_key, signature, timestamp, body, self.clock())

    def read_interaction(self, body: bytes) -> Interaction | None:
        """``/points`` or ``/redeem points:N``; None for a PING or anything else. Raises
        :class:`~adapters.communities.discord_interactions.MalformedInteraction` for a command Discord cannot have
        sent (call it on verified bodies only)."""
        return parse_interaction(body)

    def edit_reply(self, token: str, text: str) -> None:
        """Replace the deferred reply's text (pinging nobody). Raises
        :class:`~adapters.communities.discord_webhooks.ReplyExpired` once the token's 15 minutes are over."""
        self._interaction_webhooks().edit_original(token, text)

    def register_commands(self) -> None:
        """Make the guild's commands ``/points`` and ``/redeem``, once per process: one read, and one bulk overwrite
        only when Discord's commands differ (each command Discord has to create counts against its 200 a day)."""
        if self._commands_registered:
            return
        app = self._application_id()
        current = self._client.guild_commands(app, self.guild)
        if _command_shapes(current) != _command_shapes(COMMANDS):
            self._client.set_guild_commands(app, self.guild, COMMANDS)
        self._commands_registered = True

    def _application_id(self) -> str:
        if not self.config.application_id:
            raise CommunityStopped(f"{self.name}: slash commands need application_id ([communities.{self.name}])")
        return self.config.application_id

    def _interaction_webhooks(self) -> InteractionWebhooks:
        if self._webhooks is None:
            raise CommunityStopped(f"{self.name}: slash commands need application_id ([communities.{self.name}])")
        return self._webhooks

    # ---- ContributionSource: reactions in forum channels -----------------------------------------------------------

    def contributions(self, places: Sequence[str], since: datetime, generation: str = "") -> Iterator[Contribution]:
        """Members' posts since ``since`` in the forum channels ``places`` (ids), with who reacted; deleted posts are
        absent (see :attr:`contributions_complete` before taking an absent post's points back). Every walk reads
        everything (nothing is skipped as unchanged), so ``generation`` is not needed."""
        return self._earn.contributions(places, since)

    @property
    def contributions_complete(self) -> bool:
        """False when the last :meth:`contributions` stopped at ``earn_max_threads``, ``earn_max_messages`` or
        ``earn_max_requests``: posts it did not list may simply not have been read."""
        return self._earn.complete

    def posted_at(self, post_id: str) -> datetime | None:
        """A message's time, read from its id (a snowflake)."""
        return snowflake_time(post_id)

    def demand_topics(self, category: str | None, tag: str | None, limit: int) -> list[Topic]:
        """Threads of the forum channel ``category`` (an id) that carry ``tag`` (:class:`DemandThreads`)."""
        return self._demand.demand_topics(category, tag, limit)

    # ---- UserLookup, ThreadCheck -----------------------------------------------------------------------------------

    def find_user(self, username: str) -> Match | None:
        """Discord members are named by their user id (a snowflake); roles are granted by it. No remote call."""
        return Match(username, username) if username.isdigit() else None

    def thread_exists(self, thread_id: str) -> bool:
        try:
            self._client.channel(thread_id)
        except RemoteError as error:
            if error.status == 404:
                return False
            raise
        return True

    # ---- roles ---------------------------------------------------------------------------------------------------

    def _role(self, action: Action) -> Outcome:
        if action.kind != "role":
            return Outcome(action.id, False, error=f"discord cannot apply {action.kind!r}", permanent=True)
        reason = (
            f"CardBridge: {'paid order' if action.op == 'grant' else 'no paid order left'} "
            f"(rule {self.role_names.get(action.target, '?')})"
        )
        try:
            if action.op == "grant":
                self._client.add_role(self.guild, action.username, action.target, reason)
            else:
                self._client.remove_role(self.guild, action.username, action.target, reason)
            return Outcome(action.id, True)
        except Deferred:
            raise  # this action's limit only: the delivery stage defers it and goes on
        except RemoteError as error:
            code = error_code(error)
            if error.status == 401:
                raise CommunityStopped(f"{self.name}: the bot token was refused (401); fix bot_token") from error
            if error.status == 404 and code == 10007:
                if action.op == "revoke":
                    return Outcome(action.id, True)  # not in the guild: the role is not held either
                return Outcome(action.id, False, error="member is not in the guild yet", wait=True)
            if error.status == 403 and code == 50013:
                if action.target not in self._reported:
                    self._reported.add(action.target)
                    log.error(
                        "role above the bot",
                        community=self.name,
                        role=action.target,
                        hint="drag the bot's role above the roles it manages (Server Settings > Roles)",
                    )
                return Outcome(
                    action.id,
                    False,
                    permanent=True,
                    error=f"role {action.target} is above the bot's highest role (50013 Missing Permissions)",
                )
            if error.status >= 500 or error.status == 429:
                raise CommunityStopped(stopped_reason(self.name, error)) from error
            return Outcome(action.id, False, error=str(error))
        except httpx.HTTPError as error:
            raise CommunityStopped(f"{self.name}: unreachable: {error}") from error

    def verify(self, action: Action) -> Outcome | None:
        if action.kind == "review":
            post = action.payload
            return self._reviews.verify(action, post) if isinstance(post, DiscordPost) else None
        if action.kind == "role_connection":
            return None  # a PUT of the same values: sending it again is harmless
        if action.kind == "product_card":
            return None  # an edit of the starter message, or a thread found again by its name: sent again
        if action.kind == "announcement":
            return None  # sent again with the same nonce
        try:
            roles = set(self._client.member(self.guild, action.username).get("roles", []))
        except RemoteError as error:
            if error.status == 404:
                return Outcome(action.id, True) if action.op == "revoke" else None
            raise
        held = action.target in roles
        return Outcome(action.id, True) if held == (action.op == "grant") else None

    def who_holds(
        self, granted: Mapping[tuple[str, str], Sequence[str]]
    ) -> dict[tuple[str, str], tuple[set[str], set[str]]]:
        """For each granted (kind, target): (members who hold it now, members no longer in the server). One read per
        member, however many roles they were granted."""
        roles_of: dict[str, set[str] | None] = {}
        for user in {user for (kind, _), users in granted.items() if kind == "role" for user in users}:
            try:
                roles_of[user] = set(self._client.member(self.guild, user).get("roles", []))
            except RemoteError as error:
                if error.status != 404:
                    raise
                roles_of[user] = None
        answers: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
        for (kind, target), users in granted.items():
            if kind != "role":
                continue
            answers[(kind, target)] = (
                {u for u in users if target in (roles_of.get(u) or set())},
                {u for u in users if roles_of.get(u, set()) is None},
            )
        return answers

    def check(self, context: CheckContext | None = None) -> Iterator[Check]:
        """``cardbridge check`` (:class:`~adapters.checks.SelfCheck`): :mod:`adapters.communities.discord_check`."""
        c = self.config
        roles = {role: f"rule {rule!r}" for role, rule in self.role_names.items()}
        return check_guild(
            self.name,
            self._client,
            self.guild,
            c.api_base,
            c.application_id,
            roles,
            context or CheckContext(),
            public_key=c.public_key,
        )

    def stats(self) -> CommunityStats:
        parts = [self._client.http.stats] + ([self._oauth.http.stats] if self._oauth else [])
        return CommunityStats(
            requests=sum(s.requests for s in parts),
            writes=sum(s.writes for s in parts),
            rate_limited=sum(s.rate_limited for s in parts),
            retries=sum(s.retries for s in parts),
        )

    def close(self) -> None:
        self._client.close()
        if self._oauth is not None:
            self._oauth.close()
        if self._webhooks is not None:
            self._webhooks.close()


def _command_shapes(commands: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """What decides whether Discord's commands are CardBridge's: names, types, descriptions and options, in name
    order (Discord adds ids, versions and defaults of its own)."""

    def option(o: Mapping[str, Any]) -> tuple[Any, ...]:
        return (o.get("type"), o.get("name"), o.get("description"), bool(o.get("required")), o.get("min_value"))

    shapes = [
        (
            c.get("name"),
            c.get("type", 1),
            c.get("description"),
            dict(c.get("description_localizations") or {}),
            [option(o) for o in c.get("options") or []],
        )
        for c in commands
    ]
    return sorted(shapes, key=lambda shape: str(shape[0]))
