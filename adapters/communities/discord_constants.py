"""Values the Discord adapter sends with every message, and the Linked Roles records it registers.

Reference: ``shared/specs/discord`` (message flags, allowed mentions, application role connection metadata).
"""

from __future__ import annotations

from typing import Any

#: Message flag SUPPRESS_EMBEDS (1 << 2): links in member text do not unfurl into previews. It does not make a link
#: unclickable or stop a client's invite card; :mod:`mappings.discord_posts` makes links inert in the text itself.
SUPPRESS_EMBEDS = 1 << 2
#: What every message CardBridge sends allows to ping: nothing.
NO_PINGS: dict[str, list[str]] = {"parse": []}

#: The application's Linked Roles metadata records (type 7 BOOLEAN_EQUAL, type 2 INTEGER_GREATER_THAN_OR_EQUAL). The
#: values written for a member (``connector.features.linked_roles.metadata``) use these keys; booleans are sent as
#: 1/0 and every value is sent explicitly (an empty metadata object is accepted but not registered).
RECORDS: list[dict[str, Any]] = [
    {"type": 7, "key": "verified_buyer", "name": "Verified buyer", "description": "Has a paid order in the shop"},
    {"type": 2, "key": "order_count", "name": "Paid orders", "description": "Paid orders in the shop, at least"},
    {"type": 2, "key": "points", "name": "Points", "description": "Shop points, at least"},
]
