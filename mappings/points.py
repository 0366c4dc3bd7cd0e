"""Pure points rules: which point events a customer's orders and published reviews call for.

Events have deterministic keys (``order:<id>``, ``review:<id>``, and ``…:reversal``) so each is awarded once however
often a pass runs; a refund or an unpublished review adds a reversal instead of deleting history.

Nothing here raises on a total: a total that is not a bounded amount (``NaN``, ``1e30``, text; an adapter quarantines
such an order, but a third-party adapter or an old state store may still hand one over) earns only ``per_order``, and
every event is capped at :data:`MAX_EVENT_POINTS`, so a sum of events stays a 64-bit integer in any database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from connector.core.config import PointsConfig
from connector.core.models import bounded_amount

#: The most points one event (an order, a review) is worth, whatever the config and the total say.
MAX_EVENT_POINTS = 10**9


@dataclass(frozen=True)
class PointEvent:
    key: str
    points: int
    reason: str


def _capped(points: int) -> int:
    return max(0, min(points, MAX_EVENT_POINTS))


def order_points(total: object, config: PointsConfig) -> int:
    """``per_order`` plus ``per_currency_unit`` per whole unit of a positive, bounded ``total``; at most
    :data:`MAX_EVENT_POINTS`."""
    try:
        amount = max(bounded_amount(total), Decimal(0))
    except ValueError:
        amount = Decimal(0)
    rate = config.per_currency_unit
    earned = 0
    if amount and math.isfinite(rate) and rate > 0:
        earned = math.floor(min(amount * Decimal(repr(rate)), Decimal(MAX_EVENT_POINTS)))
    return _capped(_capped(config.per_order) + earned)


def due_events(
    orders: Iterable[tuple[str, bool, str]],
    reviews: Iterable[tuple[str, bool]],
    recorded: dict[str, int],
    config: PointsConfig,
) -> list[PointEvent]:
    """New events for one customer.

    ``orders``: (order id, paid now, total); ``reviews``: (review id, published now); ``recorded``: events already in
    the ledger (key → points). An award is made once; a reversal undoes exactly what was awarded, once.
    """
    due: list[PointEvent] = []

    def settle(key: str, wanted: bool, points: int, label: str) -> None:
        awarded, reversed_ = key in recorded, f"{key}:reversal" in recorded
        if wanted and not awarded and points:
            due.append(PointEvent(key, points, label))
        elif not wanted and awarded and not reversed_ and recorded[key]:
            due.append(PointEvent(f"{key}:reversal", -recorded[key], f"{label} reversed"))

    for order_id, paid, total in orders:
        settle(f"order:{order_id}", paid, order_points(total, config), f"order #{order_id}")
    for review_id, published in reviews:
        settle(f"review:{review_id}", published, _capped(config.per_review), f"review #{review_id}")
    return due


def tier_role(total: int, tiers: Iterable[tuple[int, str]]) -> str | None:
    """The role of the highest tier ``total`` reaches (tiers as (threshold, role), any order); None below them all."""
    reached = [(threshold, role) for threshold, role in tiers if total >= threshold]
    return max(reached)[1] if reached else None
