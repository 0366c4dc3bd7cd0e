"""Discourse community adapter (``kind = "discourse"``): verified-buyer badges and groups.

- Identity: exact primary-email match with *activated* accounts only (the owner confirmed the address; an account
  anyone signed up with a buyer's email proves nothing until then, and is looked up again on a later pass); bulk (the
  admin user list, 100 users a call) when many customers wait, one ``email=`` look-up each when few do. Buyer emails
  are never sent as ``emails=`` (that sends invitations).
- Badges are granted one user per call (the API has no batch grant); groups take up to 1000 users per call, by user
  id where the identity store has it. Decisions rest on statuses, ``error_type`` and read-backs, never on an error's
  words (a zh_CN forum answers in Chinese), and a member renamed on the forum is found by id:
  :mod:`adapters.communities.discourse_grants`.
- The badge and group are created on first use; their ids are cached in the state store.
- Reviews and points: :mod:`adapters.communities.discourse_posts`.
- Points earned on the forum (posts, likes, accepted solutions in the configured categories):
  :mod:`adapters.communities.discourse_contributions`; members' personal messages to the API user (redemptions):
  :mod:`adapters.communities.discourse_inbox`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import httpx
from pydantic import Field

from adapters.base import (
    Action,
    CommunityStats,
    CommunityStopped,
    IdCache,
    Match,
    MemoryCache,
    Outcome,
    RemotePost,
    settled_payload,
    wrong_payload,
)
from adapters.checks import Check, CheckContext
from adapters.communities.discourse_check import check_forum
from adapters.communities.discourse_client import GROUP_BATCH, DiscourseClient
from adapters.communities.discourse_contributions import ContributionLimits, ForumContributions
from adapters.communities.discourse_grants import MemberGrants, renamed
from adapters.communities.discourse_inbox import ForumInbox
from adapters.communities.discourse_insights import ForumInsights
from adapters.communities.discourse_mass_award import MassAward
from adapters.communities.discourse_posts import ForumContent
from adapters.communities.discourse_products import ForumProducts
from adapters.contributions import Contribution, InboxMessage
from adapters.insights import PostText, Topic
from connector.core.budget import LimitStore
from connector.core.config import Rule
from connector.core.http import RemoteError, stopped_reason
from connector.core.logs import log
from connector.core.payloads import Announcement, ProductCard
from connector.core.settings import CommunitySettings, HttpUrl, RemoteTimeouts

#: Action kinds written as forum content (posts, topics, score events, a user field).
CONTENT_KINDS = frozenset({"review", "points", "points_total", "product_card", "announcement"})


class DiscourseSettings(CommunitySettings, RemoteTimeouts):
    """``[communities.<name>]`` with ``kind = "discourse"``."""

    #: The forum's root URL.
    base_url: HttpUrl
    #: An admin API key (Admin > API; badge grants and group creation need one), and the user it acts as.
    api_key: str = ""
    api_username: str = "system"
    #: Request budget per minute for this forum (Discourse's admin-key default is 60 per site).
    requests_per_minute: Annotated[int, Field(ge=1)] = 60
    #: Use the bulk user list (one page of 100 users a call) instead of per-email look-ups when more than this many
    #: customers are waiting for a match.
    bulk_lookup_threshold: Annotated[int, Field(ge=0)] = 20
    #: Shown on the badge and group the connector creates on first use.
    badge_description: str = "Bought from the shop: a verified purchase."
    group_flair_icon: str = "check-circle"
    group_flair_bg_color: str = "2E7D32"
    group_flair_color: str = "FFFFFF"
    #: Make the group the members' primary group, so its title and flair show next to their posts.
    group_primary: bool = True
    #: More than this many grants of one single-grant badge due together go as one mass award (a CSV of usernames,
    #: up to 50,000 a request) instead of one request each; read back before they count as done.
    mass_award_threshold: Annotated[int, Field(ge=1)] = 50
    #: How long one pass waits for a mass award's grants to show among the badge's holders (the forum grants them in
    #: background jobs); what is not shown by then is verified on a later pass.
    mass_award_wait_seconds: Annotated[float, Field(ge=0)] = 30.0
    #: A grant a mass award did not show is sent again only once the award is this old: until its jobs have run, a
    #: second award would grant the badge twice.
    mass_award_settle_seconds: Annotated[float, Field(ge=0)] = 300.0
    #: Points earned on the forum: at most this many topics with new posts, posts, and liker account-age look-ups
    #: (``/admin/users/{id}.json``, remembered for the process's life) in one pass. Newest activity first: a pass at
    #: a limit leaves the window's oldest topics unread, and says so.
    contributions_max_topics: Annotated[int, Field(ge=1)] = 100
    contributions_max_posts: Annotated[int, Field(ge=1)] = 2000
    contributions_max_age_lookups: Annotated[int, Field(ge=0)] = 200
    #: A topic whose list entry has not changed is not opened again for this many minutes (a post hidden after
    #: flags changes nothing in the entry: its points come back within this time); 0: every topic every pass.
    contributions_recheck_minutes: Annotated[int, Field(ge=0, le=1440)] = 60
    #: Personal messages to the API user: PM topics read at most per poll (the oldest bumped first).
    inbox_max_topics: Annotated[int, Field(ge=1)] = 30


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
    return CommunityStopped(f"{name}: unreachable: {error}")


class DiscourseCommunity:
    """Badges, groups, review posts and points on one forum. Capabilities: :class:`~adapters.base.HolderListing`,
    :class:`~adapters.base.PostReader`, :class:`~adapters.base.UserLookup`,
    :class:`~adapters.contributions.ContributionSource`, :class:`~adapters.contributions.PrivateInbox`,
    :class:`~adapters.base.SharesRateLimits`."""

    kind = "discourse"
    settings = DiscourseSettings

    def __init__(
        self,
        name: str,
        config: DiscourseSettings,
        rules: Sequence[Rule] = (),
        cache: IdCache | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Any = None,
    ) -> None:
        self.name = name
        self.config = config
        self.cache: IdCache = cache or MemoryCache()
        self._client = DiscourseClient(
            config.base_url,
            config.api_key,
            config.api_username,
            requests_per_minute=config.requests_per_minute,
            timeout=config.timeout_seconds,
            connect_timeout=config.connect_timeout_seconds,
            max_retry_seconds=config.max_retry_seconds,
            keys=f"[communities.{name}]",
            transport=transport,
            sleep=sleep,
            max_wait=config.max_retry_wait_seconds,
        )
        self._content = ForumContent(self._client, self.cache, config.api_username)
        self._products = ForumProducts(self._content)
        self._contributions = ForumContributions(
            self._client,
            ContributionLimits(
                max_topics=config.contributions_max_topics,
                max_posts=config.contributions_max_posts,
                max_age_lookups=config.contributions_max_age_lookups,
                recheck_minutes=config.contributions_recheck_minutes,
            ),
            seen=self.cache,
        )
        self._inbox = ForumInbox(self._client, config.api_username, max_topics=config.inbox_max_topics)
        self._insights = ForumInsights(self._client)
        self._grants = MemberGrants(self._client, self.badge_id, self.group_id, self._forget)
        self._mass = MassAward(
            self._client.http,
            self.cache,
            wait_seconds=config.mass_award_wait_seconds,
            settle_seconds=config.mass_award_settle_seconds,
            sleep=sleep,
        )
        #: Badge name → whether it allows multiple grants (read once per process, with the badge list).
        self._multiple: dict[str, bool] = {}
        self._group_titles: dict[str, str] = {}
        self._rules = rules
        for rule in rules:
            grant = rule.grant.get(name)
            if grant and grant.group:
                self._group_titles.setdefault(grant.group, grant.group_title or _titled(grant.group))

    # ---- identities ----------------------------------------------------------------------------------------------

    def match_users(self, emails: Mapping[str, str]) -> dict[str, Match]:
        """Activated accounts by primary email; the client drops accounts whose owner has not confirmed the email."""
        wanted: dict[str, list[str]] = defaultdict(list)
        for key, email in emails.items():
            wanted[email.lower()].append(key)
        found: dict[str, Match] = {}
        if len(wanted) > self.config.bulk_lookup_threshold:
            for page in self._client.users_with_emails():
                for user in page:
                    if user.active and user.email and user.email.lower() in wanted:
                        for key in wanted.pop(user.email.lower()):
                            found[key] = Match(str(user.id), user.username)
                if not wanted:
                    break  # everyone pending is found: no need to read the rest of the forum
        else:
            for email, keys in wanted.items():
                one = self._client.user_by_email(email)
                if one is not None and one.active:
                    for key in keys:
                        found[key] = Match(str(one.id), one.username)
        return found

    # ---- remote objects ------------------------------------------------------------------------------------------

    def badge_id(self, name: str) -> int:
        cached = self.cache.get("badge", name)
        if cached:
            return int(cached)
        existing = next((b for b in self._client.badges() if str(b.get("name", "")).lower() == name.lower()), None)
        badge_id = int(existing["id"]) if existing else self._client.create_badge(name, self.config.badge_description)
        if not existing:
            log.info("badge created", community=self.name, badge=name, badge_id=badge_id)
        self.cache.set("badge", name, str(badge_id))
        return badge_id

    def group_id(self, name: str) -> int:
        cached = self.cache.get("group", name)
        if cached:
            return int(cached)
        existing = self._client.group(name)
        if existing:
            group_id = int(existing["id"])
        else:
            title = self._group_titles.get(name, _titled(name))
            group_id = self._client.create_group(
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

    def _forget(self, kind: str, name: str) -> None:
        # An admin deleted the badge or group: forget the cached id so the next attempt finds or recreates it.
        self.cache.set(kind, name, None)

    # ---- actions -------------------------------------------------------------------------------------------------

    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        groups: dict[tuple[str, str], list[Action]] = defaultdict(list)
        grants: dict[str, list[Action]] = defaultdict(list)
        for action in actions:
            if action.kind == "badge" and action.op == "grant":
                grants[action.target].append(action)
        massed = {t for t, due in grants.items() if len(due) > self.config.mass_award_threshold and self._single(t)}
        for target in massed:
            outcomes.extend(self._mass_grant(target, grants[target]))
        for action in actions:
            if action.kind == "badge" and action.op == "grant" and action.target in massed:
                continue
            if action.kind == "group":
                groups[(action.target, action.op)].append(action)
            elif action.kind == "badge":
                outcomes.append(self._badge(action))
            elif action.kind in CONTENT_KINDS:
                outcomes.append(self._write(action))
            else:
                outcomes.append(Outcome(action.id, False, error=f"unknown action kind {action.kind!r}"))
        for (group, op), members in groups.items():
            for start in range(0, len(members), GROUP_BATCH):
                outcomes.extend(self._group(group, op, members[start : start + GROUP_BATCH]))
        return outcomes

    def _badge(self, action: Action) -> Outcome:
        try:
            return self._grants.badge(action)
        except RemoteError as error:
            if _stops_everything(error):
                raise CommunityStopped(stopped_reason(self.name, error)) from error
            return Outcome(action.id, False, error=str(error))
        except httpx.HTTPError as error:
            raise _unreachable(self.name, error) from error

    def _single(self, target: str) -> bool:
        """Whether the badge allows one grant per user (mass awards are only for those)."""
        if target not in self._multiple:
            badge_id = self.badge_id(target)
            badge = next((b for b in self._client.badges() if int(b.get("id", 0)) == badge_id), {})
            self._multiple[target] = bool(badge.get("multiple_grant", False))
        return not self._multiple[target]

    def _mass_grant(self, target: str, actions: Sequence[Action]) -> list[Outcome]:
        try:
            return self._mass.grant(target, self.badge_id(target), actions)
        except RemoteError as error:
            if error.status == 404:  # the badge is gone (400 is an unknown badge id too): find or create it again
                self._forget("badge", target)
            if _stops_everything(error):
                raise CommunityStopped(stopped_reason(self.name, error)) from error
            return [Outcome(a.id, False, error=str(error)) for a in actions]  # e.g. 422: the badge is disabled
        except httpx.HTTPError as error:
            raise _unreachable(self.name, error) from error

    # ---- MassGrants ----------------------------------------------------------------------------------------------

    def mass_threshold(self, kind: str) -> int | None:
        return self.config.mass_award_threshold if kind == "badge" else None

    def verify_many(self, actions: Sequence[Action]) -> dict[int, Outcome | None]:
        """Badge grants of one target whose outcome is unknown, verified with one read of the badge's holders."""
        if not actions:
            return {}
        target = actions[0].target
        return self._mass.verify(target, self.badge_id(target), actions)

    def _group(self, group: str, op: str, actions: Sequence[Action]) -> list[Outcome]:
        try:
            return self._grants.group(group, op, actions)
        except RemoteError as error:
            if error.status == 404:  # users never make a group call 404 (they are dropped): the group is gone
                self._forget("group", group)
            if _stops_everything(error):
                raise CommunityStopped(stopped_reason(self.name, error)) from error
            return [Outcome(a.id, False, error=str(error)) for a in actions]
        except httpx.HTTPError as error:
            raise _unreachable(self.name, error) from error

    # ---- reviews and points --------------------------------------------------------------------------------------

    def _content_write(self, action: Action) -> Outcome:
        settled = settled_payload(action)
        if settled is not None:
            return settled
        p = action.payload
        if action.kind == "product_card":
            return self._products.card(action, p) if isinstance(p, ProductCard) else wrong_payload(action, ProductCard)
        if action.kind == "announcement":
            if not isinstance(p, Announcement):
                return wrong_payload(action, Announcement)
            return self._products.announce(action, p)
        return self._content.apply(action)

    def _write(self, action: Action) -> Outcome:
        try:
            return self._content_write(action)
        except RemoteError as error:
            if _stops_everything(error):
                raise CommunityStopped(stopped_reason(self.name, error)) from error
            return Outcome(action.id, False, error=str(error))
        except httpx.HTTPError as error:
            raise _unreachable(self.name, error) from error

    def verify(self, action: Action) -> Outcome | None:
        """Read the forum to see whether an action interrupted by a crash took effect."""
        p = action.payload
        if action.kind == "product_card" and isinstance(p, ProductCard):
            return self._products.verify_card(action, p)
        if action.kind == "announcement" and isinstance(p, Announcement):
            return self._products.verify_announcement(action, p)
        if action.kind in ("review", "points", "points_total"):
            return self._content.verify(action)
        if action.kind == "badge":
            ref, current = self._grants.user_badge(action)
            data = renamed(action, current)
            if action.op == "grant" and ref is not None:
                return Outcome(action.id, True, ref=str(ref), data=data)
            if action.op == "grant" and self._mass.recent(action.target):
                # A mass award of this badge may still be granting it: a single grant now could make a second row.
                return Outcome(action.id, False, unknown=True, error="not a holder yet; a mass award may still run")
            if action.op == "revoke" and ref is None:
                return Outcome(action.id, True, data=data)
            return None
        if action.kind == "group":
            member = self._grants.is_member(action.target, action)
            return Outcome(action.id, True) if member == (action.op == "grant") else None
        return None

    def holders(self, kind: str, target: str) -> set[str]:
        """Lower-cased usernames that hold a badge or belong to a group on the forum now (for the reconcile)."""
        if kind == "badge":
            return self._client.badge_holders(self.badge_id(target))
        if kind == "group":
            return self._client.group_members(target)
        return set()

    # ---- PostReader, UserLookup ------------------------------------------------------------------------------------

    def read_post(self, post_id: str) -> RemotePost | None:
        return self._content.read_post(post_id)

    def find_user(self, username: str) -> Match | None:
        """The account with this username (``GET /u/{username}.json``), or None."""
        user = self._client.user(username)
        return Match(str(user["id"]), str(user["username"])) if user else None

    # ---- ContributionSource, PrivateInbox ----------------------------------------------------------------------------
    # Reads raise :class:`RemoteError` (a forum that answers 5xx/429 after retries, a key without rights) and
    # :class:`httpx.HTTPError` as they come: the caller decides whether the pass goes on without them.

    def contributions(self, places: Sequence[str], since: datetime, generation: str = "") -> Iterator[Contribution]:
        """Posts since ``since`` in the named categories: :mod:`adapters.communities.discourse_contributions`."""
        return self._contributions.contributions(places, since, generation)

    def demand_topics(self, category: str | None, tag: str | None, limit: int) -> list[Topic]:
        return self._insights.demand_topics(category, tag, limit)

    def posts_since(self, cursor: str | None, limit: int) -> tuple[list[PostText], str | None]:
        return self._insights.posts_since(cursor, limit)

    def messages_since(self, cursor: str | None) -> tuple[list[InboxMessage], str | None]:
        """Members' PMs to the API user after ``cursor``: :mod:`adapters.communities.discourse_inbox`."""
        return self._inbox.messages_since(cursor)

    def message(self, message_id: str) -> InboxMessage | None:
        return self._inbox.message(message_id)

    def reply(self, conversation_id: str, text: str) -> str:
        return self._inbox.reply(conversation_id, text)

    def replied(self, conversation_id: str, marker: str) -> str | None:
        return self._inbox.replied(conversation_id, marker)

    def check(self, context: CheckContext | None = None) -> Iterator[Check]:
        """``cardbridge check`` (:class:`~adapters.checks.SelfCheck`): :mod:`adapters.communities.discourse_check`."""
        config = self.config
        return check_forum(
            self.name, self._client, config.base_url, config.api_username, self._rules, context or CheckContext()
        )

    def share_rate_limits(self, store: LimitStore) -> None:
        """The forum's admin-API window counted in ``store`` (:class:`~adapters.base.SharesRateLimits`)."""
        self._client.share_budget(store)

    def stats(self) -> CommunityStats:
        s = self._client.http.stats
        return CommunityStats(requests=s.requests, writes=s.writes, rate_limited=s.rate_limited, retries=s.retries)

    def close(self) -> None:
        self._client.close()


def _titled(group: str) -> str:
    return group.replace("-", " ").replace("_", " ").title()
