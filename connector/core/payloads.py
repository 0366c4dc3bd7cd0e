"""What an outbox action writes: typed payloads built by the features, read by the community adapters.

A payload is built from the state store when the action is sent (reconcile, not replay), so it always says what the
shop holds now. Grants (badge, group, role) carry no payload. Adapters match on the payload's type; an adapter that
meets a payload it does not know answers a permanent failure naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Skip:
    """The shop changed again since the action was planned: write nothing; the next plan decides."""


@dataclass(frozen=True)
class Unsendable:
    """The action cannot be sent and retrying will not help (e.g. the member's authorisation is gone)."""

    reason: str


@dataclass(frozen=True)
class DiscoursePost:
    """A review as a post in the product's review topic (the topic is created on first use)."""

    raw: str
    #: Hash of ``raw`` (None when the review is being deleted).
    hash: str | None
    #: A line in ``raw`` that finds the post again after a crash.
    marker: str
    post_id: str | None
    #: Hash of what CardBridge last wrote to the post: a different hash on the forum means a moderator edited it.
    post_hash: str | None
    topic_id: str | None
    external_id: str
    topic_title: str
    topic_intro: str
    category: str
    category_color: str
    category_text_color: str
    product_id: str


@dataclass(frozen=True)
class DiscordPost:
    """A review as a message in a forum channel: one thread per product, or one thread per review."""

    raw: str
    hash: str | None
    marker: str
    forum_channel: str | None
    thread_per: str
    tags: Sequence[str]
    verified_tag: str | None
    verified: bool
    post_id: str | None
    #: Per review: the post's own thread; per product: the product's thread.
    thread_id: str | None
    topic_id: str | None
    thread_name: str
    topic_title: str
    topic_intro: str
    product_id: str


@dataclass(frozen=True)
class ProductCard:
    """A product card: the first post of the product's Discourse topic (created with the card when the product has
    no topic yet), or the starter message of its Discord thread. Edited in place, never bumping the topic."""

    raw: str
    hash: str
    #: Hash of what CardBridge last wrote to the card: a different hash on the community means a moderator edited it.
    written_hash: str | None
    post_id: str | None
    topic_id: str | None
    product_id: str
    #: Discourse: the product topic's external id, title and category (as for reviews).
    external_id: str = ""
    topic_title: str = ""
    category: str = "Reviews"
    category_color: str = "2E7D32"
    category_text_color: str = "FFFFFF"
    #: Discord: the forum channel, its tags, and the product thread's name.
    forum_channel: str | None = None
    tags: Sequence[str] = ()
    thread_name: str = ""


@dataclass(frozen=True)
class Announcement:
    """A product event announced once: a new Discourse topic in ``category`` (found again by ``external_id``) or a
    message in a Discord ``channel``; never pinging anyone."""

    raw: str
    title: str
    marker: str
    event_id: int
    external_id: str = ""
    category: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class ScoreEvent:
    """One points event (Discourse gamification); ``description`` carries the event's key to find it again."""

    user_id: str | None
    points: int
    date: str
    description: str


@dataclass(frozen=True)
class PointsTotal:
    """A member's points total, written to a user field."""

    total: int
    field_id: int | None


@dataclass(frozen=True)
class RoleConnection:
    """Linked Roles metadata written with the member's own OAuth2 token."""

    access_token: str | None
    metadata: Mapping[str, str]
    hash: str
    platform_name: str
    #: A fresh access token when Discord refuses the current one before its expiry (or None: the grant is gone).
    renew: Callable[[], str | None] = field(compare=False, repr=False)


Payload = (
    Skip
    | Unsendable
    | DiscoursePost
    | DiscordPost
    | ProductCard
    | Announcement
    | ScoreEvent
    | PointsTotal
    | RoleConnection
    | None
)
