"""The community read back as information for the shop: demand posts (需求帖) and the text of recent posts for
keyword heat (热度分析). Optional capabilities of community adapters.

Adapters only read facts; ranking, tokenising and matching to products live in ``mappings.demand`` and
``mappings.heat``. Member text is untrusted: it is handed to the caller to be counted and dropped, never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Topic:
    """A topic (Discourse) or forum thread (Discord) as the community's list shows it now."""

    topic_id: str
    title: str
    #: The Discourse category id, or the Discord forum channel id.
    category: str
    tags: tuple[str, ...]
    like_count: int
    #: Replies after the first post (Discourse ``reply_count`` / ``posts_count - 1``; Discord ``message_count``).
    reply_count: int
    #: Discourse ``views``; Discord has none (0).
    views: int
    created_at: datetime
    bumped_at: datetime
    #: Member ids of the author and those who replied, as the list names them (``posters``), author first.
    participants: tuple[str, ...] = ()


@dataclass(frozen=True)
class PostText:
    """One public post's plain text, to be tokenised and forgotten."""

    post_id: str
    topic_id: str
    author_id: str
    created_at: datetime
    text: str


@runtime_checkable
class TopicSource(Protocol):
    """Optional: a community whose topics in a category or with a tag CardBridge can list (demand posts)."""

    def demand_topics(self, category: str | None, tag: str | None, limit: int) -> list[Topic]:
        """Live public topics in ``category`` (an id or slug) or with ``tag`` (both given: either), newest bump first,
        at most ``limit``. Bounded: the adapter stops at its own page limits."""
        ...


@runtime_checkable
class PostTextSource(Protocol):
    """Optional: a community whose recent public posts' text CardBridge can read incrementally (keyword heat)."""

    def posts_since(self, cursor: str | None, limit: int) -> tuple[list[PostText], str | None]:
        """Public posts made after ``cursor`` (None: as far back as the adapter's page limit reaches), oldest first, at most ``limit``, and the
        cursor to store once their counts are committed. Deleted, hidden and non-regular posts are left out."""
        ...


def participants(topics: Sequence[Topic]) -> set[str]:
    """Every member id that took part in any of ``topics``."""
    return {member for topic in topics for member in topic.participants}
