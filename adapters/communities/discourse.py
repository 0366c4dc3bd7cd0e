"""Discourse community adapter (``kind = "discourse"``): verified-buyer badges and groups.

- Identity: exact primary-email match; bulk (the admin user list, 100 users a call) when many customers wait, one
  ``email=`` look-up each when few do. Buyer emails are never sent as ``emails=`` (that sends invitations).
- Badges are granted one user per call (the API has no batch grant); groups take up to 1000 usernames per call.
- The badge and group are created on first use; their ids are cached in the state store.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx

from adapters.base import Action, CommunityStats, CommunityStopped, Match, Outcome
from adapters.communities.discourse_client import GROUP_BATCH, DiscourseClient
from connector.core.config import CommunityConfig, Rule
from connector.core.http import RemoteError, describe_body
from connector.core.logs import log


class IdCache(Protocol):
    """Where remote object ids are remembered between passes (the state store's ``remote_objects``)."""

    def get(self, kind: str, name: str) -> str | None: ...

    def set(self, kind: str, name: str, remote_id: str | None) -> None: ...


class MemoryCache:
    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}

    def get(self, kind: str, name: str) -> str | None:
        return self._ids.get((kind, name))

    def set(self, kind: str, name: str, remote_id: str | None) -> None:
        if remote_id is None:
            self._ids.pop((kind, name), None)
        else:
            self._ids[(kind, name)] = remote_id


def _stops_everything(error: RemoteError) -> bool:
    """Errors that would fail every call, so the pass stops for this community instead of trying each action:

    a bad or under-privileged API key (401/403), and a forum that still answers 5xx or 429 after the client's
    retries (the remaining actions wait in the outbox for the next pass instead of each waiting out the retries).
    """
    body = error.body if isinstance(error.body, dict) else {}
    if error.status >= 500 or error.status == 429:
        return True
    return error.status in (401, 403) and body.get("error_type") in ("invalid_access", "not_logged_in", None)


def _unreachable(name: str, error: Exception) -> CommunityStopped:
    return CommunityStopped(f"{name}: unreachable after retries ({type(error).__name__}: {error})")


class DiscourseCommunity:
    kind = "discourse"

    def __init__(
        self,
        name: str,
        config: CommunityConfig,
        rules: Sequence[Rule] = (),
        cache: IdCache | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Any = None,
    ) -> None:
        self.name = name
        self.config = config
        self.cache: IdCache = cache or MemoryCache()
        self.client = DiscourseClient(
            config.base_url,
            config.api_key,
            config.api_username,
            requests_per_minute=config.requests_per_minute,
            timeout=config.timeout_seconds,
            transport=transport,
            sleep=sleep,
        )
        self._group_titles: dict[str, str] = {}
        for rule in rules:
            grant = rule.grant.get(name)
            if grant and grant.group:
                self._group_titles.setdefault(grant.group, grant.group_title or _titled(grant.group))

    # ---- identities ----------------------------------------------------------------------------------------------

    def match_users(self, emails: Mapping[str, str]) -> dict[str, Match]:
        wanted: dict[str, list[str]] = defaultdict(list)
        for key, email in emails.items():
            wanted[email.lower()].append(key)
        found: dict[str, Match] = {}
        if len(wanted) > self.config.bulk_lookup_threshold:
            for page in self.client.users_with_emails():
                for user in page:
                    if user.email and user.email.lower() in wanted:
                        for key in wanted.pop(user.email.lower()):
                            found[key] = Match(str(user.id), user.username)
                if not wanted:
                    break  # everyone pending is found: no need to read the rest of the forum
        else:
            for email, keys in wanted.items():
                user = self.client.user_by_email(email)
                if user is not None:
                    for key in keys:
                        found[key] = Match(str(user.id), user.username)
        return found

    # ---- remote objects ------------------------------------------------------------------------------------------

    def badge_id(self, name: str) -> int:
        cached = self.cache.get("badge", name)
        if cached:
            return int(cached)
        existing = next((b for b in self.client.badges() if str(b.get("name", "")).lower() == name.lower()), None)
        badge_id = int(existing["id"]) if existing else self.client.create_badge(name, self.config.badge_description)
        if not existing:
            log.info("badge created", community=self.name, badge=name, badge_id=badge_id)
        self.cache.set("badge", name, str(badge_id))
        return badge_id

    def group_id(self, name: str) -> int:
        cached = self.cache.get("group", name)
        if cached:
            return int(cached)
        existing = self.client.group(name)
        if existing:
            group_id = int(existing["id"])
        else:
            title = self._group_titles.get(name, _titled(name))
            group_id = self.client.create_group(
                name,
                title=title,
                full_name=title,
                flair_icon=self.config.group_flair_icon,
                flair_bg_color=self.config.group_flair_bg_color,
                flair_color=self.config.group_flair_color,
                primary_group=self.config.group_primary,
            )
            log.info("group created", community=self.name, group=name, group_id=group_id)
        self.cache.set("group", name, str(group_id))
        return group_id

    def _forget_on_404(self, kind: str, name: str, error: RemoteError) -> None:
        # An admin deleted the badge or group: forget the cached id so the next attempt finds or recreates it.
        if error.status == 404:
            self.cache.set(kind, name, None)

    # ---- actions -------------------------------------------------------------------------------------------------

    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        groups: dict[tuple[str, str], list[Action]] = defaultdict(list)
        for action in actions:
            if action.kind == "group":
                groups[(action.target, action.op)].append(action)
            elif action.kind == "badge":
                outcomes.append(self._badge(action))
            elif action.kind in ("review", "points", "points_total"):
                outcomes.append(self._content(action))
            else:
                outcomes.append(Outcome(action.id, False, error=f"unknown action kind {action.kind!r}"))
        for (group, op), members in groups.items():
            for start in range(0, len(members), GROUP_BATCH):
                outcomes.extend(self._group(group, op, members[start : start + GROUP_BATCH]))
        return outcomes

    def _badge(self, action: Action) -> Outcome:
        try:
            badge_id = self.badge_id(action.target)
            if action.op == "grant":
                return Outcome(action.id, True, ref=str(self.client.grant_badge(action.username, badge_id)))
            ref = int(action.remote_ref) if action.remote_ref else self.client.user_badge_id(action.username, badge_id)
            if ref is not None:
                try:
                    self.client.revoke_badge(ref)
                except RemoteError as error:
                    if error.status != 404:  # already gone (revoked by hand): the goal holds
                        raise
            return Outcome(action.id, True)
        except RemoteError as error:
            self._forget_on_404("badge", action.target, error)
            if _stops_everything(error):
                raise CommunityStopped(f"{self.name}: {describe_body(error.body)} (HTTP {error.status})") from error
            return Outcome(action.id, False, error=str(error))
        except httpx.HTTPError as error:
            raise _unreachable(self.name, error) from error

    def _group(self, group: str, op: str, actions: Sequence[Action]) -> list[Outcome]:
        usernames = [a.username for a in actions]
        try:
            group_id = self.group_id(group)
            if op == "grant":
                self.client.add_members(group_id, usernames)
            else:
                self.client.remove_members(group_id, usernames)
            return [Outcome(a.id, True) for a in actions]
        except RemoteError as error:
            self._forget_on_404("group", group, error)
            if _stops_everything(error):
                raise CommunityStopped(f"{self.name}: {describe_body(error.body)} (HTTP {error.status})") from error
            if len(actions) > 1 and 400 <= error.status < 500:
                # One bad user must not sink the batch: retry each alone so the failure lands on the right action.
                return [outcome for a in actions for outcome in self._group(group, op, [a])]
            return [Outcome(a.id, False, error=str(error)) for a in actions]
        except httpx.HTTPError as error:
            raise _unreachable(self.name, error) from error

    # ---- reviews and points --------------------------------------------------------------------------------------

    def _content(self, action: Action) -> Outcome:
        try:
            if action.payload.get("skip"):
                return Outcome(action.id, True, data={"skipped": True})
            if action.kind == "review":
                return {"create": self._create_review, "edit": self._edit_review, "delete": self._delete_review}[
                    action.op
                ](action)
            if action.kind == "points":
                p = action.payload
                event_id = self.client.add_score_event(int(p["user_id"]), p["date"], int(p["points"]), p["description"])
                return Outcome(action.id, True, ref=str(event_id))
            p = action.payload
            self.client.set_user_field(action.username, int(p["field_id"]), str(p["total"]))
            return Outcome(action.id, True, ref=str(p["total"]))
        except RemoteError as error:
            if _stops_everything(error):
                raise CommunityStopped(f"{self.name}: {describe_body(error.body)} (HTTP {error.status})") from error
            return Outcome(action.id, False, error=str(error))
        except httpx.HTTPError as error:
            raise _unreachable(self.name, error) from error

    def category_id(self, name: str, color: str, text_color: str) -> int:
        cached = self.cache.get("category", name)
        if cached:
            return int(cached)
        category_id = self.client.category_id(name) or self.client.create_category(name, color, text_color)
        self.cache.set("category", name, str(category_id))
        return category_id

    def _topic_id(self, p: Any) -> int:
        if p.get("topic_id"):
            return int(p["topic_id"])
        found = self.client.topic_by_external_id(p["external_id"])
        if found is not None:
            return int(found["id"])
        category = self.category_id(p["category"], p["category_color"], p["category_text_color"])
        created = self.client.create_topic(p["topic_title"], p["topic_intro"], category, p["external_id"])
        return int(created["topic_id"])

    def _create_review(self, action: Action) -> Outcome:
        p = action.payload
        topic_id = self._topic_id(p)
        post = self.client.create_post(topic_id, p["raw"])
        return Outcome(
            action.id,
            True,
            ref=str(post["id"]),
            data={
                "topic_id": str(topic_id),
                "post_id": str(post["id"]),
                "version": int(post.get("version") or 1),
                "content_hash": p["hash"],
                "state": "posted",
            },
        )

    def _edit_review(self, action: Action) -> Outcome:
        p = action.payload
        current = self.client.post(int(p["post_id"]))
        changed_by = _changed_by_someone(current, p)
        if changed_by:
            return Outcome(action.id, True, conflict=changed_by)
        post = self.client.edit_post(int(p["post_id"]), p["raw"], "Updated in the shop")
        return Outcome(
            action.id,
            True,
            ref=str(post["id"]),
            data={"version": int(post.get("version") or 0), "content_hash": p["hash"], "state": "posted"},
        )

    def _delete_review(self, action: Action) -> Outcome:
        p = action.payload
        try:
            self.client.delete_post(int(p["post_id"]))
        except RemoteError as error:
            if error.status not in (403, 404):  # already deleted (a moderator did it): the goal holds
                raise
        return Outcome(action.id, True, data={"state": "deleted"})

    def _verify_content(self, action: Action) -> Outcome | None:
        p = action.payload
        if action.kind == "review" and action.op == "create":
            found = self.client.topic_by_external_id(p["external_id"])
            if found is None:
                return None
            for post_id in reversed(found.get("post_stream", {}).get("stream", [])[-20:]):
                post = self.client.post(int(post_id))
                if post and post.get("username") == self.config.api_username and p["marker"] in (post.get("raw") or ""):
                    return Outcome(
                        action.id,
                        True,
                        ref=str(post_id),
                        data={
                            "topic_id": str(found["id"]),
                            "post_id": str(post_id),
                            "version": int(post.get("version") or 1),
                            "content_hash": p["hash"],
                            "state": "posted",
                        },
                    )
            return None
        if action.kind == "review":
            post = self.client.post(int(p["post_id"]))
            if action.op == "delete" and (post is None or post.get("deleted_at")):
                return Outcome(action.id, True, data={"state": "deleted"})
            if action.op == "edit" and post and _hash(post.get("raw") or "") == p["hash"]:
                return Outcome(
                    action.id,
                    True,
                    data={"version": int(post.get("version") or 0), "content_hash": p["hash"], "state": "posted"},
                )
            return None
        if action.kind == "points":
            tag = p["description"]
            for event in self.client.score_events(int(p["user_id"])):
                if event.get("description") == tag:
                    return Outcome(action.id, True, ref=str(event["id"]))
            return None
        return None  # points_total: setting a field twice is harmless

    def verify(self, action: Action) -> Outcome | None:
        """Read the forum to see whether an action interrupted by a crash took effect."""
        if action.kind in ("review", "points", "points_total"):
            return self._verify_content(action)
        if action.kind == "badge":
            ref = self.client.user_badge_id(action.username, self.badge_id(action.target))
            if action.op == "grant" and ref is not None:
                return Outcome(action.id, True, ref=str(ref))
            if action.op == "revoke" and ref is None:
                return Outcome(action.id, True)
            return None
        if action.kind == "group":
            member = self.client.is_member(action.target, action.username)
            return Outcome(action.id, True) if member == (action.op == "grant") else None
        return None

    def holders(self, kind: str, target: str) -> set[str]:
        """Lower-cased usernames that hold a badge or belong to a group on the forum now (for the reconcile)."""
        if kind == "badge":
            return self.client.badge_holders(self.badge_id(target))
        if kind == "group":
            return self.client.group_members(target)
        return set()

    def stats(self) -> CommunityStats:
        s = self.client.http.stats
        return CommunityStats(requests=s.requests, writes=s.writes, rate_limited=s.rate_limited, retries=s.retries)

    def close(self) -> None:
        self.client.close()


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _changed_by_someone(post: dict[str, Any] | None, payload: Any) -> str | None:
    """Why the forum's copy is no longer what the connector wrote (a moderator edited or deleted it), or None."""
    if post is None or post.get("deleted_at"):
        return "the post was deleted on the forum"
    if _hash(post.get("raw") or "") != payload.get("post_hash"):
        editor = post.get("last_editor_username") or "someone"
        return f"the post was edited on the forum by {editor} (version {post.get('version')})"
    return None


def _titled(group: str) -> str:
    return group.replace("-", " ").replace("_", " ").title()
