"""What members wrote in the configured categories and how it was received: posts since a time, with their likers
(and the likers' account ages), the accepted-solution flag and whether a moderator removed them
(:class:`~adapters.contributions.ContributionSource` for Discourse).

The read path, and why it is the cheapest one the API offers (discourse/discourse sources):

1. ``GET /categories.json`` once a pass, to find each configured category by name (as reviews do).
2. ``GET /c/{slug}/{id}/l/latest.json?page=N``: the category's topics (subcategories included), 30 a page
   (``TopicQuery`` ``per_page``), newest ``bumped_at`` first. A new post bumps its topic, so paging stops at the
   first unpinned topic last bumped before ``since``: topics with nothing new are never opened. ``/posts.json``
   would be no cheaper: it lists the whole site's public posts 50 a page (``LatestPostsQuery``), every category
   and no deleted post, so it cannot report removals.
3. ``GET /t/{id}.json?show_deleted=true``: the first 20 posts (``TopicView#chunk_size``) with ``actions_summary``
   (the like count), ``accepted_answer`` (discourse-solved plugin.rb ``add_to_serializer(:post,
   :accepted_answer)``), ``hidden``, ``deleted_at`` and ``user_deleted``, and the whole ``stream`` of post ids, a
   moderator's deletions included for staff. A longer topic's newer posts come from ``GET /t/{id}/posts.json?
   post_ids[]=…`` (100 ids a request), read from the end backwards until a post older than ``since``.
4. ``GET /post_action_users.json?id=…&post_action_type_id=2&limit=200`` for each live post with likes: every liker
   (likes are public, ``can_see_post_actors?``; ``INDEX_LIMIT`` 200 a page, app/controllers/
   post_action_users_controller.rb). Its ``PostActionUserSerializer`` has no ``created_at``, so:
5. ``GET /admin/users/{id}.json`` (``AdminDetailedUserSerializer``: ``created_at``) once per liker, kept in memory
   for the life of the process (account ages never change).

Requests for T topics with something new (deleted ones included), P_t new posts in topic t, L_p likes on live post p and U likers not seen
before: 1 + 2 × categories (each listing's last, short page) + ceil(T / 30) + T + Σ_t ceil(max(0, P_t − 20) / 100)
+ Σ_p ceil(L_p / 200) + U. At the admin key's 60 requests a minute, 30 topics with 3 new posts each, 40 liked posts
and 25 new likers take about 2 minutes. Each pass is bounded by ``max_topics`` topics, ``max_posts`` posts and
``max_age_lookups`` account look-ups. The newest activity comes first, so a pass that reaches a limit leaves the
oldest topics of the window unread (and the deleted topics' listing, which comes last), and a pass with the same
``since`` leaves the same ones: it says so in a warning; raise the limits or shorten the window. Likers past the
look-up limit come with ``joined_at`` None, and get their age on a later pass (account ages are remembered).

**Unchanged topics are not opened again.** A like does not bump a topic, so every topic of the window would be read
each pass; instead each topic read whole is remembered (the adapter's id cache, kept in the state store) with what
its list entry said: ``bumped_at``, ``posts_count``, ``like_count`` (the sum of its live posts' likes,
``PostAction#update_counters``: ``Topic.where(id: topic_id).update_all like_count``), ``has_accepted_answer``
(discourse-solved), the period of ``recheck_minutes`` it was read in, and the caller's ``generation`` (who is
matched to a shop customer: a post skipped as unchanged may earn once its author is matched). A topic whose entry says the same in the
same period is skipped: a new post, a like or an unlike, a deleted post (``posts_count``) or an accepted answer opens
it again. A post hidden after flags changes none of them, so the first pass of each period reads every topic of the
window again: a hidden post gives its points back within ``recheck_minutes`` (a deleted one at once). The second of
two passes with nothing new in one period costs the category listings alone.

``where`` is the configured category's name. Bots (user id ≤ 0: ``system``, ``discobot``) and posts that are not
regular (small actions, whispers, moderator actions) are left out. A post deleted by a moderator (``deleted_at``),
deleted by its author (``user_deleted``) or hidden after flags (``hidden``, ``Post#hide!``) is ``removed``, and so is
every post of a topic a moderator deleted: trashed topics leave the category's list, so a second listing with
``status=deleted`` (lib/topics_filter.rb ``filter_status``, staff only: ``can_see_deleted_topics?``) finds those
bumped since ``since``: one more request a category, and one per deleted topic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.base import IdCache
from adapters.communities.discourse_client import POST_IDS_PER_READ, DiscourseClient
from adapters.contributions import Contribution, Liker
from connector.core.http import RemoteError
from connector.core.logs import log

#: ``TopicQuery`` topics a page; ``TopicView#chunk_size``; ``PostActionUsersController::INDEX_LIMIT``.
TOPICS_PAGE = 30
FIRST_CHUNK = 20
LIKERS_PAGE = 200
LIKE = 2
#: ``Post.types[:regular]``
REGULAR = 1
#: The account ages kept in memory at most (a user id and a date each).
AGE_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class ContributionLimits:
    """How much one pass reads at most."""

    max_topics: int = 100
    max_posts: int = 2000
    max_age_lookups: int = 200
    #: Category list pages per category (a category whose 30 × this newest topics are all new is read in part).
    max_pages: int = 20
    #: Minutes an unchanged topic is not opened again (0: every topic every pass).
    recheck_minutes: int = 60


def parse_time(value: Any) -> datetime | None:
    """A Discourse timestamp (``2026-11-30T12:00:00.000Z``) as an aware datetime; None when absent or malformed."""
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def like_count(post: dict[str, Any]) -> int:
    """The like entry of ``actions_summary`` (``{"id": 2, "count": N}``; no entry or no count: none)."""
    for entry in post.get("actions_summary") or []:
        if isinstance(entry, dict) and entry.get("id") == LIKE:
            count = _int(entry.get("count"))
            return max(0, count or 0)
    return 0


class ForumContributions:
    """Reads contributions with the adapter's client (its budget and retries); keeps account ages between passes."""

    def __init__(
        self, client: DiscourseClient, limits: ContributionLimits | None = None, seen: IdCache | None = None
    ) -> None:
        self.client = client
        self.limits = limits or ContributionLimits()
        self._joined: dict[int, datetime | None] = {}
        #: Topic id → what its list entry said when it was last read whole (``SEEN``); None: read every topic.
        self.seen = seen

    def contributions(self, places: Sequence[str], since: datetime, generation: str = "") -> Iterator[Contribution]:
        """Posts made since ``since`` in the named categories, oldest topic activity last (the list's order)."""
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        budget = _Budget(self.limits)
        categories = self._categories()
        for place in places:
            category = categories.get(place.lower())
            if category is None:
                log.warning("contribution category not found on the forum", category=place)
                continue
            # Then the topics a moderator deleted since: their posts keep no points (``status=deleted``, staff only).
            for deleted in (False, True):
                if budget.spent():
                    break
                for topic_id, signed in self._topics(category, since, budget, deleted=deleted):
                    signature = f"{signed}|{_short(generation)}"
                    if self._skip(topic_id, signature):
                        continue  # nothing a post's points depend on changed since it was read today
                    whole = yield from self._topic(topic_id, place, since, budget)
                    if whole and self.seen is not None and self.limits.recheck_minutes:
                        self.seen.set(SEEN, str(topic_id), signature)
                    if budget.posts_left <= 0:
                        break
        if budget.cut:
            log.warning("contribution read cut short by its limits; the oldest activity was not read", **budget.said())

    # ---- listing -------------------------------------------------------------------------------------------------------

    def _categories(self) -> dict[str, tuple[int, str]]:
        body = self.client.http.request("GET", "/categories.json").json()
        found: dict[str, tuple[int, str]] = {}
        rows = (body.get("category_list") or {}).get("categories") if isinstance(body, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            category_id, name, slug = _int(row.get("id")), row.get("name"), row.get("slug")
            if category_id is not None and isinstance(name, str) and isinstance(slug, str):
                found.setdefault(name.lower(), (category_id, slug))
        return found

    def _topics(
        self, category: tuple[int, str], since: datetime, budget: _Budget, deleted: bool = False
    ) -> list[tuple[int, str]]:
        """Ids of the category's topics bumped since ``since`` (``deleted``: of its trashed topics), newest first,
        at most the pass's topic budget, each with its list entry's signature (:func:`signature`)."""
        category_id, slug = category
        wanted: list[tuple[int, str]] = []
        listed: set[int] = set()
        for page in range(self.limits.max_pages):
            params: dict[str, Any] = {"page": page, **({"status": "deleted"} if deleted else {})}
            body = self.client.http.request("GET", f"/c/{slug}/{category_id}/l/latest.json", params=params).json()
            topics = (body.get("topic_list") or {}).get("topics") if isinstance(body, dict) else None
            topics = [t for t in topics if isinstance(t, dict)] if isinstance(topics, list) else []
            for topic in topics:
                topic_id = _int(topic.get("id"))
                bumped = parse_time(topic.get("bumped_at")) or parse_time(topic.get("last_posted_at"))
                if topic_id is None or bumped is None:
                    continue
                if bumped < since:
                    if topic.get("pinned"):
                        continue  # pinned topics lead the list whatever their age
                    return wanted
                if budget.topics_left <= 0:
                    budget.cut = True
                    return wanted
                if topic_id not in listed:
                    listed.add(topic_id)
                    wanted.append((topic_id, signature(topic, deleted, self.limits.recheck_minutes)))
                    budget.topics_left -= 1
            if len(topics) < TOPICS_PAGE:
                return wanted
        budget.cut = True
        return wanted

    def _skip(self, topic_id: int, signed: str) -> bool:
        """Whether the topic was read whole in this period and its list entry says nothing changed since."""
        if self.seen is None or not self.limits.recheck_minutes:
            return False
        return self.seen.get(SEEN, str(topic_id)) == signed

    # ---- one topic -----------------------------------------------------------------------------------------------------

    def _topic(
        self, topic_id: int, place: str, since: datetime, budget: _Budget
    ) -> Generator[Contribution, None, bool]:
        """The topic's posts made since ``since``; returns whether it was read whole (no limit cut it)."""
        try:
            body = self.client.http.request("GET", f"/t/{topic_id}.json", params={"show_deleted": "true"}).json()
        except RemoteError as error:
            if error.status in (403, 404, 410):
                return False  # deleted or made private between the listing and now
            raise
        if not isinstance(body, dict):
            return False
        topic_deleted = bool(body.get("deleted_at"))
        stream_body = body.get("post_stream")
        stream_body = stream_body if isinstance(stream_body, dict) else {}
        chunk = [p for p in _list(stream_body.get("posts")) if isinstance(p, dict)]
        stream = [i for i in (_int(x) for x in _list(stream_body.get("stream"))) if i is not None]
        posts = {int(p["id"]): p for p in chunk if _int(p.get("id")) is not None}
        rest = [i for i in stream if i not in posts]
        # Newer posts past the first chunk: read backwards until a batch holds a post older than ``since``.
        while rest:
            batch, rest = rest[-POST_IDS_PER_READ:], rest[:-POST_IDS_PER_READ]
            read = self.client.topic_posts(topic_id, batch)
            posts.update({int(p["id"]): p for p in read if _int(p.get("id")) is not None})
            times = [parse_time(p.get("created_at")) for p in read]
            if any(t is not None and t < since for t in times):
                break
        for post_id in stream or sorted(posts):
            post = posts.get(post_id)
            if post is None:
                continue
            if budget.posts_left <= 0:
                budget.cut = True
                return False
            found = self._contribution(post, place, since, budget, topic_deleted)
            if found is not None:
                budget.posts_left -= 1
                yield found
        return not budget.cut

    def _contribution(
        self, post: dict[str, Any], place: str, since: datetime, budget: _Budget, topic_deleted: bool = False
    ) -> Contribution | None:
        """One post as a contribution; None for posts before ``since``, bots' posts, non-regular posts, or a post
        whose fields are not what Discourse sends (that one is skipped alone)."""
        post_id, author_id = _int(post.get("id")), _int(post.get("user_id"))
        created = parse_time(post.get("created_at"))
        username = post.get("username")
        if post_id is None or author_id is None or created is None or not isinstance(username, str):
            log.warning("contribution post skipped: unexpected fields", post=post.get("id"))
            return None
        if created < since or author_id <= 0 or _int(post.get("post_type")) not in (None, REGULAR):
            return None
        removed = topic_deleted or bool(post.get("deleted_at"))
        removed = removed or post.get("user_deleted") is True or post.get("hidden") is True
        likers: tuple[Liker, ...] = ()
        if not removed and like_count(post) > 0:
            likers = tuple(self._likers(post_id, like_count(post), budget))
        return Contribution(
            post_id=str(post_id),
            author_id=str(author_id),
            author_username=username[:60],
            where=place,
            created_at=created,
            likers=likers,
            accepted=post.get("accepted_answer") is True,
            removed=removed,
        )

    def _likers(self, post_id: int, count: int, budget: _Budget) -> Iterator[Liker]:
        seen: set[int] = set()
        for page in range(-(-count // LIKERS_PAGE) + 1):  # one page more than the count says, in case it grew
            body = self.client.http.request(
                "GET",
                "/post_action_users.json",
                params={"id": post_id, "post_action_type_id": LIKE, "limit": LIKERS_PAGE, "page": page},
            ).json()
            users = body.get("post_action_users") if isinstance(body, dict) else None
            users = [u for u in users if isinstance(u, dict)] if isinstance(users, list) else []
            for user in users:
                user_id = _int(user.get("id"))
                if user_id is None or user_id in seen:
                    continue
                seen.add(user_id)
                yield Liker(str(user_id), self._joined_at(user_id, budget))
            if len(users) < LIKERS_PAGE or not body.get("load_more_post_action_users"):
                return

    def _joined_at(self, user_id: int, budget: _Budget) -> datetime | None:
        """The account's ``created_at`` (``/admin/users/{id}.json``), cached; None past the pass's look-ups."""
        if user_id in self._joined:
            return self._joined[user_id]
        if user_id <= 0:
            return None
        if budget.lookups_left <= 0:
            budget.cut = True
            return None
        budget.lookups_left -= 1
        try:
            body = self.client.http.request("GET", f"/admin/users/{user_id}.json").json()
        except RemoteError as error:
            if error.status != 404:
                raise
            body = None  # the account is gone (deleted): its like no longer counts for anything we can age
        joined = parse_time(body.get("created_at")) if isinstance(body, dict) else None
        if len(self._joined) >= AGE_CACHE_LIMIT:
            self._joined.clear()
        self._joined[user_id] = joined
        return joined


def _short(generation: str) -> str:
    return hashlib.sha256(generation.encode()).hexdigest()[:6]


#: The id-cache kind under which read topics' signatures are kept.
SEEN = "earn_topic"


def signature(topic: dict[str, Any], deleted: bool, minutes: int, now: datetime | None = None) -> str:
    """What a topic's list entry says that a post's points depend on, and the period of ``minutes`` it is read in
    (at most 64 characters)."""
    period = int((now or datetime.now(UTC)).timestamp() // 60 // max(minutes, 1))
    parts = [
        str(period),
        "d" if deleted else "l",
        str(topic.get("bumped_at"))[:24],
        str(_int(topic.get("posts_count"))),
        str(_int(topic.get("like_count"))),
        "s" if topic.get("has_accepted_answer") is True else "-",
    ]
    return "|".join(parts)[:57]  # and "|" + 6 of the generation: within the id cache's 64


class _Budget:
    """What one pass may still read."""

    def __init__(self, limits: ContributionLimits) -> None:
        self.limits = limits
        self.topics_left = limits.max_topics
        self.posts_left = limits.max_posts
        self.lookups_left = limits.max_age_lookups
        self.cut = False

    def spent(self) -> bool:
        """No topic or no post may be read any more this pass (what waits is said as cut short)."""
        if self.topics_left <= 0 or self.posts_left <= 0:
            self.cut = True
            return True
        return False

    def said(self) -> dict[str, int]:
        limits = self.limits
        return {
            "topics": limits.max_topics - self.topics_left,
            "posts": limits.max_posts - self.posts_left,
            "age_lookups": limits.max_age_lookups - self.lookups_left,
        }
