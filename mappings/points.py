"""Pure points rules: which point events a customer's orders and published reviews call for.

Events have deterministic keys (``order:<id>``, ``review:<id>``, and ``…:reversal``) so each is awarded once however
often a pass runs; a refund or an unpublished review adds a reversal instead of deleting history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from connector.core.config import PointsConfig


@dataclass(frozen=True)
class PointEvent:
    key: str
    points: int
    reason: str


def order_points(total: str, config: PointsConfig) -> int:
    try:
        amount = float(total)
    except ValueError:
        amount = 0.0
    return config.per_order + math.floor(max(amount, 0.0) * config.per_currency_unit)


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
        settle(f"review:{review_id}", published, config.per_review, f"review #{review_id}")
    return due


def tier_role(total: int, tiers: Iterable[tuple[int, str]]) -> str | None:
    """The role of the highest tier ``total`` reaches (tiers as (threshold, role), any order); None below them all."""
    reached = [(threshold, role) for threshold, role in tiers if total >= threshold]
    return max(reached)[1] if reached else None
