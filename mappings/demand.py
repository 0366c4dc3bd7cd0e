"""Demand posts (需求帖), pure: rank topics members ask in, and say which product each one most likely means.

Ranking: likes and replies are members agreeing ("+1", "me too"), views are interest; a post loses weight with age
so last month's request does not sit on top forever. Matching is fuzzy (rapidfuzz) on normalised text, so
"原神 月卡" finds 原神月卡 and "netflix premium 4k" finds Netflix Premium; below :data:`MATCH_THRESHOLD` a topic is
"no product": something the shop does not sell yet.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rapidfuzz import fuzz

from mappings.heat import log_weight, normalise

#: Below this similarity (0–100) a topic means no product.
MATCH_THRESHOLD = 80.0
#: Days after which a topic's score is halved (and again after twice as long, …).
HALF_LIFE_DAYS = 14.0
LIKE_WEIGHT = 3.0
REPLY_WEIGHT = 2.0
VIEW_WEIGHT = 1.0


class Topic(Protocol):
    """What ranking reads of a topic (``adapters.insights.Topic`` has it; mappings import no adapter)."""

    @property
    def topic_id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def like_count(self) -> int: ...
    @property
    def reply_count(self) -> int: ...
    @property
    def views(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def participants(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ProductMatch:
    product_id: str
    name: str
    #: Similarity 0–100.
    score: float


@dataclass(frozen=True)
class DemandPost:
    topic: Topic
    score: float
    product: ProductMatch | None
    #: Participants linked to a customer with a paid order.
    verified_buyers: int


def topic_score(topic: Topic, now: datetime) -> float:
    """Likes and replies, plus views on a log scale, halved every :data:`HALF_LIFE_DAYS` of age."""
    raw = LIKE_WEIGHT * topic.like_count + REPLY_WEIGHT * topic.reply_count + VIEW_WEIGHT * log_weight(topic.views)
    age_days = max(0.0, (now - topic.created_at).total_seconds() / 86_400)
    return round(raw * 0.5 ** (age_days / HALF_LIFE_DAYS), 3)


def match_product(text: str, products: Mapping[str, str], threshold: float = MATCH_THRESHOLD) -> ProductMatch | None:
    """The product whose name best matches ``text`` (a topic's title), or None below ``threshold``.

    ``partial_ratio`` aligns the name with the best window of the title (a request names a product inside a
    sentence); spaces are dropped first since Chinese writers put them anywhere ("原神 月卡")."""
    haystack = normalise(text).replace(" ", "")
    best: ProductMatch | None = None
    for product_id, name in products.items():
        needle = normalise(name).replace(" ", "")
        if len(needle) < 2 or not haystack:
            continue
        score = fuzz.partial_ratio(needle, haystack)
        if score >= threshold and (
            best is None or score > best.score or (score == best.score and product_id < best.product_id)
        ):
            best = ProductMatch(product_id, name, round(score, 1))
    return best


def rank(
    topics: Sequence[Topic],
    products: Mapping[str, str],
    buyers: Collection[str],
    now: datetime,
    threshold: float = MATCH_THRESHOLD,
) -> list[DemandPost]:
    """Demand topics best first, each with its likely product and how many verified buyers (member ids in
    ``buyers``) took part."""
    ranked = [
        DemandPost(
            topic=topic,
            score=topic_score(topic, now),
            product=match_product(topic.title, products, threshold),
            verified_buyers=sum(1 for member in set(topic.participants) if member in buyers),
        )
        for topic in topics
    ]
    ranked.sort(key=lambda d: (-d.score, d.topic.topic_id))
    return ranked
