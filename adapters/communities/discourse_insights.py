"""Demand topics and recent posts' text from a Discourse forum (:class:`~adapters.insights.TopicSource` and
:class:`~adapters.insights.PostTextSource`).

Routes (discourse/discourse):

- ``GET /c/{slug}/{id}/l/latest.json?page=N`` (``ListController#category_latest``) and ``GET /tag/{name}.json?page=N``
  (``TagsController#show`` → ``show_latest``): ``TopicListItemSerializer`` rows, newest ``bumped_at`` first, 30 a
  page, ``more_topics_url`` while a page is full. Each row has ``views``, ``like_count`` (likes on all the topic's
  posts), ``reply_count``/``posts_count``, ``tags`` (``TopicTagsMixin``: names; newer forums may send objects with a
  ``name``, both are read), ``created_at``, ``bumped_at`` and ``posters`` (``TopicPostersSummary``: the author and
  up to four frequent or recent posters, so "who took part" is a sample of at most five on a real forum).
- ``GET /posts.json?before=ID`` (``PostsController#latest``, ``LatestPostsQuery#public_posts``): public, visible,
  regular posts, ``id`` descending, 50 a page, each with ``raw`` (``add_raw: true``). Paged with ``before`` = the
  smallest id seen, until a page holds an id at or below the cursor.

The posts cursor is ``v1:<largest post id read>``; the first read (no cursor) reads back as far as its page limit, so
the weeks before this one give rising terms their trailing average. A poll reads newest first, so when more posts wait than
``max_post_pages`` × 50, the oldest of them are skipped (a warning says how far it read): heat is a statistic and a
fresh week matters more than a complete one. Member text is returned to be counted, never logged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from adapters.communities.discourse_client import DiscourseClient
from adapters.communities.discourse_contributions import parse_time
from adapters.insights import PostText, Topic
from connector.core.logs import log

#: ``TopicQuery`` page size and ``LatestPostsQuery::PAGE_SIZE``.
TOPICS_PAGE = 30
POSTS_PAGE = 50
REGULAR = 1
#: ``max_post_length`` default: a longer ``raw`` is not a post the forum would hold; it is cut, not trusted.
TEXT_MAX = 32_000


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        return int(value)
    return None


def _count(value: Any) -> int:
    number = _int(value)
    return max(0, number) if number is not None else 0


def _tags(value: Any) -> tuple[str, ...]:
    names: list[str] = []
    for tag in value if isinstance(value, list) else []:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str) and name:
            names.append(name)
    return tuple(names)


def parse_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    kind, _, value = cursor.partition(":")
    number = _int(value)
    if kind != "v1" or number is None:
        log.warning("insights posts cursor not understood; reading the newest page only")
        return None
    return number


class ForumInsights:
    """Reads demand topics and posts' text with the adapter's client (its budget and retries)."""

    def __init__(self, client: DiscourseClient, max_topic_pages: int = 4, max_post_pages: int = 10) -> None:
        self.client = client
        self.max_topic_pages = max_topic_pages
        self.max_post_pages = max_post_pages

    # ---- demand topics -------------------------------------------------------------------------------------------------

    def demand_topics(self, category: str | None, tag: str | None, limit: int) -> list[Topic]:
        found: dict[str, Topic] = {}
        if category:
            resolved = self._category(category)
            if resolved is None:
                log.warning("demand category not found on the forum", category=category)
            else:
                category_id, slug = resolved
                self._list(f"/c/{quote(slug, safe='')}/{category_id}/l/latest.json", limit, found)
        if tag:
            self._list(f"/tag/{quote(tag, safe='')}.json", limit, found)
        ordered = sorted(found.values(), key=lambda t: (t.bumped_at, t.topic_id), reverse=True)
        return ordered[:limit]

    def _category(self, wanted: str) -> tuple[int, str] | None:
        """A category by id, slug or name (case-insensitive)."""
        body = self.client.http.request("GET", "/categories.json").json()
        rows = (body.get("category_list") or {}).get("categories") if isinstance(body, dict) else None
        key = wanted.strip().lower()
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, dict):
                continue
            category_id, name, slug = _int(row.get("id")), row.get("name"), row.get("slug")
            if category_id is None or not isinstance(slug, str):
                continue
            if key in {str(category_id), slug.lower(), str(name).lower()}:
                return category_id, slug
        return None

    def _list(self, path: str, limit: int, found: dict[str, Topic]) -> None:
        listed = 0
        for page in range(self.max_topic_pages):
            response = self.client.http.request("GET", path, params={"page": page}, ok=(200, 404))
            if response.status_code == 404:
                log.warning("demand list not found on the forum (no such tag or category)", path=path)
                return
            body = response.json()
            topics = (body.get("topic_list") or {}).get("topics") if isinstance(body, dict) else None
            rows = [t for t in topics if isinstance(t, dict)] if isinstance(topics, list) else []
            for row in rows:
                topic = self._topic(row)
                if topic is not None:
                    found.setdefault(topic.topic_id, topic)
                    listed += 1
            if len(rows) < TOPICS_PAGE or listed >= limit:
                return

    @staticmethod
    def _topic(row: dict[str, Any]) -> Topic | None:
        topic_id = _int(row.get("id"))
        created = parse_time(row.get("created_at"))
        if topic_id is None or created is None or row.get("archetype", "regular") != "regular":
            return None
        bumped = parse_time(row.get("bumped_at")) or created
        posts_count = _count(row.get("posts_count"))
        replies = _int(row.get("reply_count"))
        posters = row.get("posters")
        participants: list[str] = []
        for poster in posters if isinstance(posters, list) else []:
            user_id = _int(poster.get("user_id")) if isinstance(poster, dict) else None
            if user_id is not None and user_id > 0 and str(user_id) not in participants:
                participants.append(str(user_id))
        title = row.get("title")
        return Topic(
            topic_id=str(topic_id),
            title=title[:255] if isinstance(title, str) else "",
            category=str(_int(row.get("category_id")) or ""),
            tags=_tags(row.get("tags")),
            like_count=_count(row.get("like_count")),
            # ``reply_count`` counts replies *to* posts in older forums; ``posts_count - 1`` is every reply.
            reply_count=max(replies or 0, posts_count - 1),
            views=_count(row.get("views")),
            created_at=created,
            bumped_at=bumped,
            participants=tuple(participants),
        )

    # ---- posts' text ---------------------------------------------------------------------------------------------------

    def posts_since(self, cursor: str | None, limit: int) -> tuple[list[PostText], str | None]:
        after = parse_cursor(cursor)
        pages = self.max_post_pages  # the first read too: the weeks before give the trailing average its history
        found: dict[int, PostText] = {}
        before: int | None = None
        reached = after is None
        for _ in range(pages):
            params = {"before": before} if before is not None else {}
            body = self.client.http.request("GET", "/posts.json", params=params).json()
            rows = body.get("latest_posts") if isinstance(body, dict) else None
            posts = [p for p in rows if isinstance(p, dict)] if isinstance(rows, list) else []
            ids = [i for i in (_int(p.get("id")) for p in posts) if i is not None]
            for post in posts:
                text = self._post(post, after)
                if text is not None:
                    found[int(text.post_id)] = text
            if not ids or len(posts) < POSTS_PAGE or (after is not None and min(ids) <= after):
                reached = True
                break
            before = min(ids)
        if not reached:
            log.warning("insights read stopped at its page limit; older new posts are skipped", pages=pages)
        newest = sorted(found)
        taken = newest[-limit:] if limit > 0 else []
        texts = [found[i] for i in taken]
        next_cursor = f"v1:{taken[-1]}" if taken else cursor
        if len(newest) > len(taken):
            log.info("insights read more posts than one batch keeps; the oldest are skipped", kept=len(taken))
        return texts, next_cursor

    @staticmethod
    def _post(post: dict[str, Any], after: int | None) -> PostText | None:
        post_id, topic_id, user_id = _int(post.get("id")), _int(post.get("topic_id")), post.get("user_id")
        created = parse_time(post.get("created_at"))
        if post_id is None or topic_id is None or created is None or (after is not None and post_id <= after):
            return None
        if post.get("post_type", REGULAR) != REGULAR or post.get("hidden") or post.get("deleted_at"):
            return None
        if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
            return None  # bots (system, discobot) do not speak for members
        raw = post.get("raw")
        text = raw if isinstance(raw, str) else ""
        title = post.get("topic_title") if _int(post.get("post_number")) == 1 else None
        if isinstance(title, str):
            text = f"{title}\n{text}"
        created_at: datetime = created
        return PostText(str(post_id), str(topic_id), str(user_id), created_at, text[:TEXT_MAX])
