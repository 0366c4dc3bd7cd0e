"""Discord community adapter (``kind = "discord"``): verified-buyer roles on a guild.

Only the roles the rules name are ever touched (``PUT``/``DELETE /guilds/{g}/members/{u}/roles/{r}``, both
idempotent, each with an ``X-Audit-Log-Reason``). Discord has no email look-up: a customer gets roles once an admin
links them (``cardbridge link --customer ID --discord-user ID``).

- 401: the token is wrong; the community stops at once (Discord bans IPs that keep making invalid requests).
- 403 ``50013``: the role is above the bot's highest role; the action is parked as dead with that reason, reported once
  per role per pass, never retried in a loop.
- 404 ``10007``: the member is not in the guild; the action waits and is granted when they join.

The reconcile does not read Discord (listing members needs the privileged GUILD_MEMBERS intent).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import httpx

from adapters.base import Action, CommunityStats, CommunityStopped, Match, Outcome
from adapters.communities.discord_client import API, DiscordClient
from connector.config import CommunityConfig, Rule
from connector.http import RemoteError, describe_body
from connector.logs import log


def _code(error: RemoteError) -> int | None:
    return error.body.get("code") if isinstance(error.body, dict) else None


class DiscordCommunity:
    kind = "discord"

    def __init__(self, name: str, config: CommunityConfig, rules: Sequence[Rule] = (), cache: Any = None,
                 transport: httpx.BaseTransport | None = None, sleep: Any = None) -> None:
        self.name = name
        self.config = config
        self.guild = str(config.guild_id)
        self.client = DiscordClient(config.bot_token, config.api_base or API, transport=transport,
                                    timeout=config.timeout_seconds, sleep=sleep)
        self.role_names = {
            grant.role: rule.name for rule in rules for community, grant in rule.grant.items()
            if community == name and grant.role
        }
        self._reported: set[str] = set()

    def match_users(self, emails: Mapping[str, str]) -> dict[str, Match]:
        return {}  # Discord cannot look users up by email; customers are linked explicitly

    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        return [self._role(action) for action in actions]

    def _role(self, action: Action) -> Outcome:
        if action.kind != "role":
            return Outcome(action.id, False, error=f"discord cannot apply {action.kind!r}", permanent=True)
        reason = (f"CardBridge: {'paid order' if action.op == 'grant' else 'no paid order left'} "
                  f"(rule {self.role_names.get(action.target, '?')})")
        try:
            if action.op == "grant":
                self.client.add_role(self.guild, action.username, action.target, reason)
            else:
                self.client.remove_role(self.guild, action.username, action.target, reason)
            return Outcome(action.id, True)
        except RemoteError as error:
            code = _code(error)
            if error.status == 401:
                raise CommunityStopped(f"{self.name}: the bot token was refused (401); fix bot_token") from error
            if error.status == 404 and code == 10007:
                if action.op == "revoke":
                    return Outcome(action.id, True)  # not in the guild: the role is not held either
                return Outcome(action.id, False, error="member is not in the guild yet", wait=True)
            if error.status == 403 and code == 50013:
                if action.target not in self._reported:
                    self._reported.add(action.target)
                    log.error("role above the bot", community=self.name, role=action.target,
                              hint="drag the bot's role above the roles it manages (Server Settings > Roles)")
                return Outcome(action.id, False, permanent=True,
                               error=f"role {action.target} is above the bot's highest role (50013 Missing Permissions)")
            if error.status >= 500 or error.status == 429:
                raise CommunityStopped(f"{self.name}: {describe_body(error.body)} (HTTP {error.status})") from error
            return Outcome(action.id, False, error=str(error))
        except httpx.HTTPError as error:
            raise CommunityStopped(f"{self.name}: unreachable after retries ({type(error).__name__}: {error})") from error

    def verify(self, action: Action) -> Outcome | None:
        try:
            roles = set(self.client.member(self.guild, action.username).get("roles", []))
        except RemoteError as error:
            if error.status == 404:
                return Outcome(action.id, True) if action.op == "revoke" else None
            raise
        held = action.target in roles
        return Outcome(action.id, True) if held == (action.op == "grant") else None

    def stats(self) -> CommunityStats:
        s = self.client.http.stats
        return CommunityStats(requests=s.requests, writes=s.writes, rate_limited=s.rate_limited, retries=s.retries)

    def close(self) -> None:
        self.client.close()
