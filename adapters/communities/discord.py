"""Discord community adapter (``kind = "discord"``): verified-buyer roles on a guild, review threads in a forum
channel, and members' Linked Roles metadata.

Only the roles the rules name are ever touched (``PUT``/``DELETE /guilds/{g}/members/{u}/roles/{r}``, both
idempotent, each with an ``X-Audit-Log-Reason``). Discord has no email look-up: a customer gets roles once an admin
links them (``cardbridge link --customer ID --discord-user ID``).

- 401: the token is wrong; the community stops at once (Discord bans IPs that keep making invalid requests).
- 403 ``50013``: the role is above the bot's highest role; the action is parked as dead with that reason, reported once
  per role per pass, never retried in a loop.
- 404 ``10007``: the member is not in the guild; the action waits and is granted when they join.

The reconcile reads each member CardBridge granted a role to (``GET /guilds/{g}/members/{u}``; listing every member
would need the privileged GUILD_MEMBERS intent): a managed role removed by hand is drift, and a member who left the
server gets the role again when they come back.

Reviews (``[reviews] <name> = { forum_channel = "<id>" }``): per product, one thread whose starter message introduces
the product and one message per review in it; per review, one thread whose starter message (same id as the thread)
is the review. Edits patch the message, unarchiving the thread first when Discord says it is archived (and archiving
it again after). Only the author may edit a message, so moderators cannot change what CardBridge wrote; a message or
thread a moderator deleted becomes a conflict. Every message is sent with ``allowed_mentions: {"parse": []}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from adapters.base import Action, CommunityStats, CommunityStopped, Match, Outcome
from adapters.communities.discord_client import API, DiscordClient, DiscordOAuth
from connector.core.config import CommunityConfig, Rule
from connector.core.http import RemoteError, describe_body
from connector.core.logs import log
from connector.features.linked_roles import RECORDS
from mappings.discord_posts import NO_PINGS, SUPPRESS_EMBEDS


def _code(error: RemoteError) -> int | None:
    return error.body.get("code") if isinstance(error.body, dict) else None


_HINTS = {
    50013: " - the bot lacks a permission here (Send Messages / Manage Threads in the forum channel)",
    50001: " - the bot cannot see the channel (View Channel)",
    40067: " - the forum requires a tag: set [reviews] tags",
    40058: " - forum_channel must be a forum channel's id",
}


class _Refused(Exception):
    """A review action that cannot work with this configuration (reported, parked as dead)."""


class DiscordCommunity:
    kind = "discord"

    def __init__(
        self,
        name: str,
        config: CommunityConfig,
        rules: Sequence[Rule] = (),
        cache: Any = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Any = None,
    ) -> None:
        self.name = name
        self.config = config
        self.guild = str(config.guild_id)
        #: Remembers a product's thread the moment it exists, so a failure before the pass records it makes no twin.
        self.cache = cache
        self.client = DiscordClient(
            config.bot_token, config.api_base or API, transport=transport, timeout=config.timeout_seconds, sleep=sleep
        )
        #: The application's OAuth2 side (link page, Linked Roles), when application_id and client_secret are set.
        self.oauth = (
            DiscordOAuth(
                config.application_id,
                config.client_secret,
                config.api_base or API,
                config.oauth_base or "https://discord.com",
                transport=transport,
                timeout=config.timeout_seconds,
            )
            if config.application_id
            else None
        )
        self._tags: dict[str, dict[str, str]] = {}
        self._records_checked = False
        self.role_names = {
            grant.role: rule.name
            for rule in rules
            for community, grant in rule.grant.items()
            if community == name and grant.role
        }
        self._reported: set[str] = set()

    def match_users(self, emails: Mapping[str, str]) -> dict[str, Match]:
        return {}  # Discord cannot look users up by email; customers are linked explicitly

    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes = []
        for action in actions:
            if action.kind == "review":
                outcomes.append(self._guarded(action, self._review))
            elif action.kind == "role_connection":
                outcomes.append(self._guarded(action, self._role_connection))
            else:
                outcomes.append(self._role(action))
        return outcomes

    def _guarded(self, action: Action, apply: Any) -> Outcome:
        """Errors shared by every bot call: a refused token stops the community, an outage stops the pass."""
        try:
            return apply(action)  # type: ignore[no-any-return]
        except RemoteError as error:
            if error.status == 401:
                raise CommunityStopped(f"{self.name}: the bot token was refused (401); fix bot_token") from error
            if error.status >= 500 or error.status == 429:
                raise CommunityStopped(f"{self.name}: {describe_body(error.body)} (HTTP {error.status})") from error
            permanent = error.status in (400, 403, 404)
            hint = _HINTS.get(_code(error) or 0, "")
            return Outcome(
                action.id, False, error=f"{describe_body(error.body)} (HTTP {error.status}){hint}", permanent=permanent
            )
        except httpx.HTTPError as error:
            raise CommunityStopped(
                f"{self.name}: unreachable after retries ({type(error).__name__}: {error})"
            ) from error

    # ---- reviews -------------------------------------------------------------------------------------------------

    def _message(self, content: str) -> dict[str, Any]:
        return {"content": content, "allowed_mentions": NO_PINGS, "flags": SUPPRESS_EMBEDS}

    def _tag_ids(self, forum_id: str, names: Sequence[str]) -> list[str]:
        """Tag names (config) → ids from the forum's ``available_tags``, read once per forum and process."""
        if not names:
            return []
        tags = self._tags.get(forum_id, {})
        if forum_id not in self._tags or any(name not in tags for name in names):
            # Read again when a name is missing: an admin may have added the tag since.
            forum = self.client.channel(forum_id)
            tags = self._tags[forum_id] = {
                str(t.get("name")): str(t.get("id")) for t in forum.get("available_tags") or []
            }
        missing = [name for name in names if name not in tags]
        if missing:
            raise _Refused(
                f"tag {', '.join(map(repr, missing))} is not one of the forum's tags "
                f"({', '.join(sorted(tags)) or 'it has none'}); fix [reviews] tags"
            )
        return [tags[name] for name in names]

    def _review(self, action: Action) -> Outcome:
        p = action.payload
        if p.get("skip"):
            return Outcome(action.id, True, data={"skipped": True})
        if not p.get("forum_channel"):
            return Outcome(action.id, False, permanent=True, error="no [reviews] forum_channel for this community")
        try:
            if action.op == "create":
                return self._create_review(action)
            if action.op == "edit":
                return self._edit_review(action)
            return self._delete_review(action)
        except _Refused as refused:
            return Outcome(action.id, False, permanent=True, error=str(refused))

    def _reason(self, action: Action) -> str:
        return f"CardBridge: shop review {action.target}"

    def _create_review(self, action: Action) -> Outcome:
        p = action.payload
        forum = str(p["forum_channel"])
        if p.get("thread_per") == "review":
            tags = list(p.get("tags") or []) + (
                [p["verified_tag"]] if p.get("verified_tag") and p.get("verified") else []
            )
            thread = self.client.start_thread(
                forum,
                str(p["thread_name"]),
                self._message(str(p["raw"])),
                self._tag_ids(forum, tags),
                self._reason(action),
            )
            return Outcome(
                action.id,
                True,
                ref=str(thread["id"]),
                data={
                    "post_id": str(thread["id"]),
                    "thread_id": str(thread["id"]),
                    "content_hash": p["hash"],
                    "state": "posted",
                },
            )
        data: dict[str, Any] = {}
        thread_id = p.get("topic_id") or (self.cache.get("thread", str(p["product_id"])) if self.cache else None)
        if thread_id is None:
            thread = self.client.start_thread(
                forum,
                str(p["topic_title"]),
                self._message(str(p["topic_intro"])),
                self._tag_ids(forum, list(p.get("tags") or [])),
                f"CardBridge: reviews of product {p['product_id']}",
            )
            thread_id = str(thread["id"])
            if self.cache is not None:
                self.cache.set("thread", str(p["product_id"]), thread_id)
        data["topic_id"] = str(thread_id)
        try:
            message = self._unarchived(
                str(thread_id), lambda: self.client.send_message(str(thread_id), self._message(str(p["raw"])))
            )
        except RemoteError as error:
            if error.status == 404 and _code(error) == 10003:
                return Outcome(
                    action.id, True, data=data, conflict="the product's review thread was deleted on Discord"
                )
            raise
        data.update(post_id=str(message["id"]), thread_id=str(thread_id), content_hash=p["hash"], state="posted")
        return Outcome(action.id, True, ref=str(message["id"]), data=data)

    def _edit_review(self, action: Action) -> Outcome:
        p = action.payload
        thread, message = str(p["thread_id"]), str(p["post_id"])
        try:
            self._unarchived(thread, lambda: self.client.edit_message(thread, message, self._message(str(p["raw"]))))
        except RemoteError as error:
            if error.status == 404 and _code(error) in (10003, 10008):
                return Outcome(action.id, True, conflict="the review's message was deleted on Discord by a moderator")
            raise
        return Outcome(action.id, True, data={"content_hash": p["hash"], "state": "posted"})

    def _delete_review(self, action: Action) -> Outcome:
        p = action.payload
        thread, message = str(p["thread_id"]), str(p["post_id"])
        try:
            if p.get("thread_per") == "review":
                # The review is the thread; deleting a thread needs Manage Threads in the forum.
                self.client.delete_channel(thread, self._reason(action))
            else:
                self.client.delete_message(thread, message)  # its own message: no extra permission needed
        except RemoteError as error:
            if error.status != 404:
                raise
        return Outcome(action.id, True, data={"state": "deleted"})

    def _unarchived(self, thread_id: str, call: Any) -> dict[str, Any]:
        """Run ``call``; if Discord says the thread is archived (50083), unarchive it, retry, and archive it again."""
        try:
            return call()  # type: ignore[no-any-return]
        except RemoteError as error:
            if _code(error) != 50083:
                raise
        self.client.edit_thread(thread_id, {"archived": False}, "CardBridge: update a shop review")
        try:
            return call()  # type: ignore[no-any-return]
        finally:
            self.client.edit_thread(thread_id, {"archived": True}, "CardBridge: leave the thread as it was")

    # ---- Linked Roles --------------------------------------------------------------------------------------------

    def _ensure_records(self) -> None:
        """Register the metadata records once per process; no write when Discord already has them."""
        if self._records_checked:
            return
        current = self.client.role_metadata(self.config.application_id)
        strip = [{k: r.get(k) for k in ("type", "key", "name", "description")} for r in current]
        if strip != RECORDS:
            self.client.set_role_metadata(self.config.application_id, RECORDS)
        self._records_checked = True

    def _role_connection(self, action: Action) -> Outcome:
        p = action.payload
        if p.get("error"):
            return Outcome(action.id, False, permanent=True, error=str(p["error"]))
        if self.oauth is None:
            return Outcome(action.id, False, permanent=True, error="application_id is not configured")
        self._ensure_records()
        connection = {"platform_name": p["platform_name"], "metadata": dict(p["metadata"])}
        try:
            try:
                self.oauth.set_role_connection(str(p["access_token"]), connection)
            except RemoteError as error:
                renewed = p["renew"]() if error.status == 401 and callable(p.get("renew")) else None
                if renewed is None:
                    raise
                self.oauth.set_role_connection(renewed, connection)
        except RemoteError as error:
            if error.status in (401, 403):
                # The member's token, not the bot's: they removed the app or the scope. Not this community's fault.
                reason = "the member's Discord authorisation was withdrawn; they must link again"
                return Outcome(action.id, False, permanent=True, error=reason, data={"revoked": reason})
            raise
        return Outcome(action.id, True, data={"hash": p["hash"]})

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
                raise CommunityStopped(f"{self.name}: {describe_body(error.body)} (HTTP {error.status})") from error
            return Outcome(action.id, False, error=str(error))
        except httpx.HTTPError as error:
            raise CommunityStopped(
                f"{self.name}: unreachable after retries ({type(error).__name__}: {error})"
            ) from error

    def verify(self, action: Action) -> Outcome | None:
        if action.kind == "review":
            return self._verify_review(action)
        if action.kind == "role_connection":
            return None  # a PUT of the same values: sending it again is harmless
        try:
            roles = set(self.client.member(self.guild, action.username).get("roles", []))
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
                roles_of[user] = set(self.client.member(self.guild, user).get("roles", []))
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

    def _verify_review(self, action: Action) -> Outcome | None:
        """After a crash: find the message by the marker line it ends with (messages have no external id)."""
        p = action.payload
        if action.op != "create" or p.get("skip"):
            return None  # edits and deletes are idempotent: sending them again is harmless
        marker = str(p.get("marker") or "")
        if p.get("thread_per") == "review":
            # The thread's name ends with the review id; a fresh thread is active (not archived) for days.
            suffix = " · " + str(p.get("thread_name", "")).rsplit(" · ", 1)[-1]  # " · #12", not matching "#112"
            for thread in self.client.active_threads(self.guild):
                if thread.get("parent_id") == str(p["forum_channel"]) and str(thread.get("name", "")).endswith(suffix):
                    thread_id = str(thread["id"])
                    return Outcome(
                        action.id,
                        True,
                        ref=thread_id,
                        data={
                            "post_id": thread_id,
                            "thread_id": thread_id,
                            "content_hash": p["hash"],
                            "state": "posted",
                        },
                    )
            return None
        thread_id = p.get("topic_id") or (self.cache.get("thread", str(p["product_id"])) if self.cache else None)
        if thread_id:
            # Newest first: a message sent just before the crash is among the latest 100.
            for message in self.client.messages(str(thread_id)):
                if marker and str(message.get("content", "")).endswith(marker):
                    return Outcome(
                        action.id,
                        True,
                        ref=str(message["id"]),
                        data={
                            "topic_id": str(thread_id),
                            "post_id": str(message["id"]),
                            "thread_id": str(thread_id),
                            "content_hash": p["hash"],
                            "state": "posted",
                        },
                    )
        return None

    def stats(self) -> CommunityStats:
        parts = [self.client.http.stats] + ([self.oauth.http.stats] if self.oauth else [])
        return CommunityStats(
            requests=sum(s.requests for s in parts),
            writes=sum(s.writes for s in parts),
            rate_limited=sum(s.rate_limited for s in parts),
            retries=sum(s.retries for s in parts),
        )

    def close(self) -> None:
        self.client.close()
        if self.oauth is not None:
            self.oauth.close()
