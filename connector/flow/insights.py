"""The insights report: keyword heat and demand posts, as the CLI, the HTML report and the daemon's page show them.

Heat comes from the state store alone (weekly counts, joined with paid orders per product); demand is read live from
the community (``TopicSource``) and ranked with ``mappings.demand``. Both are computed here once so every face shows
the same numbers.

The two lists a merchant acts on, over the report's weeks:

- **talked about but not selling**: products named in at least ``floor`` posts and in no paid order;
- **selling but not talked about**: products in at least ``floor`` paid orders and named in no post.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from adapters.base import CommunityAdapter
from adapters.insights import Topic, TopicSource
from connector.core.insights_config import InsightsConfig
from connector.core.logs import log
from connector.state import State
from mappings.demand import DemandPost, rank
from mappings.heat import Rising, by_term, recent_weeks, rising, totals, week_of

#: Rows per list in the report.
TOP = 15


@dataclass(frozen=True)
class Trend:
    """A term or product, its posts in the report's weeks (oldest first) and their sum."""

    key: str
    label: str
    weekly: tuple[int, ...]
    total: int


@dataclass(frozen=True)
class ProductHeat:
    product_id: str
    name: str
    mentions: int
    paid_orders: int


@dataclass
class HeatReport:
    communities: list[str]
    this_week: date
    weeks: list[date]
    rising: list[Rising] = field(default_factory=list)
    terms: list[Trend] = field(default_factory=list)
    products: list[Trend] = field(default_factory=list)
    most_talked: list[ProductHeat] = field(default_factory=list)
    talked_not_selling: list[ProductHeat] = field(default_factory=list)
    selling_not_talked: list[ProductHeat] = field(default_factory=list)


def _merged(rows: Sequence[Sequence[tuple[str, date, int]]]) -> dict[str, dict[date, int]]:
    return by_term(row for part in rows for row in part)


def heat_report(state: State, config: InsightsConfig, communities: Sequence[str], now: datetime) -> HeatReport:
    """Rising terms, trends and the two cross lists for ``communities`` (summed) in the ``config.weeks`` to ``now``."""
    this_week = week_of(now)
    weeks = recent_weeks(this_week, config.weeks)
    since = weeks[0]
    terms = _merged([state.insights.term_counts(c, since) for c in communities])
    mentions = _merged([state.insights.mention_counts(c, since) for c in communities])
    names = state.insights.products()
    paid = state.insights.paid_orders_by_product(datetime.combine(since, time(0), tzinfo=UTC))
    report = HeatReport(list(communities), this_week, weeks)
    report.rising = rising(terms, this_week, config.trailing_weeks, config.floor, config.ratio)[:TOP]

    def trend(key: str, table: Mapping[str, Mapping[date, int]], label: str) -> Trend:
        weekly = tuple(table[key].get(week, 0) for week in weeks)
        return Trend(key, label, weekly, sum(weekly))

    report.terms = [trend(term, terms, term) for term, _ in totals(terms, weeks)[:TOP]]
    mentioned = dict(totals(mentions, weeks))
    report.products = [trend(pid, mentions, names.get(pid, pid)) for pid in list(mentioned)[:TOP]]
    heat = {
        pid: ProductHeat(pid, names.get(pid, pid), mentioned.get(pid, 0), paid.get(pid, 0))
        for pid in set(names) | set(mentioned) | set(paid)
    }
    report.most_talked = sorted(
        (h for h in heat.values() if h.mentions > 0), key=lambda h: (-h.mentions, -h.paid_orders, h.product_id)
    )[:TOP]
    report.talked_not_selling = sorted(
        (h for h in heat.values() if h.mentions >= config.floor and h.paid_orders == 0),
        key=lambda h: (-h.mentions, h.product_id),
    )
    report.selling_not_talked = sorted(
        (h for h in heat.values() if h.paid_orders >= config.floor and h.mentions == 0),
        key=lambda h: (-h.paid_orders, h.product_id),
    )
    return report


@dataclass(frozen=True)
class CommunityDemand:
    community: str
    #: The topic as the community listed it (tags, bump time), and its rank.
    topic: Topic
    post: DemandPost


def demand_report(
    state: State,
    config: InsightsConfig,
    adapters: Mapping[str, CommunityAdapter],
    now: datetime,
) -> list[CommunityDemand]:
    """Every configured community's demand topics, read now and ranked together (best first)."""
    names = state.insights.products()
    found: list[CommunityDemand] = []
    for community, where in config.communities.items():
        adapter = adapters.get(community)
        if not isinstance(adapter, TopicSource):
            log.warning("community cannot list demand topics", community=community)
            continue
        category = where.category if where.category is not None else where.channel
        topics = adapter.demand_topics(category, where.tag, config.max_demand)
        buyers = state.insights.buyer_members(community)
        by_id = {topic.topic_id: topic for topic in topics}
        found.extend(
            CommunityDemand(community, by_id[post.topic.topic_id], post)
            for post in rank(topics, names, buyers, now, config.match_threshold)
        )
    found.sort(key=lambda d: (-d.post.score, d.community, d.post.topic.topic_id))
    return found[: config.max_demand]


def week_label(week: date) -> str:
    """``11-23`` for the week starting Monday 2026-11-23 (chart axes)."""
    return f"{week:%m-%d}"
