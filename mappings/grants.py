"""Pure translation: a customer's orders + the rules → the grants that should hold on each community.

No I/O here; the planner feeds it one customer at a time, so memory stays flat however large the shop is.
"""

from __future__ import annotations

from collections.abc import Iterable

from connector.core.config import Rule
from connector.core.grants import GrantKey


def rule_matches(rule: Rule, product_ids: frozenset[str]) -> bool:
    if rule.products == "*":
        return True  # any paid order, even one whose lines were all removed, proves a purchase
    return not product_ids.isdisjoint(rule.products)


def desired_grants(rules: Iterable[Rule], paid_orders: Iterable[frozenset[str]]) -> dict[str, set[GrantKey]]:
    """What every community should grant a customer, given the product ids of each of their *paid* orders.

    A grant holds while at least one paid order matches a rule that gives it, so a refund revokes only what no other
    paid order still supports, and a grant given by two rules survives the loss of either.
    """
    orders = list(paid_orders)
    wanted: dict[str, set[GrantKey]] = {}
    for rule in rules:
        if not any(rule_matches(rule, products) for products in orders):
            continue
        for community, grant in rule.grant.items():
            keys = wanted.setdefault(community, set())
            if grant.badge:
                keys.add(GrantKey("badge", grant.badge))
            if grant.group:
                keys.add(GrantKey("group", grant.group))
            if grant.role:
                keys.add(GrantKey("role", grant.role))
    return wanted
