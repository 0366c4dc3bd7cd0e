"""Grants and the actions in flight for them: the vocabulary the planner (``mappings``) and the state store share.

Pure types, no I/O: ``mappings`` diffs with them and ``connector.state`` stores them, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Op = Literal["grant", "revoke"]

#: Outbox kinds that are grants (held in the ledger and diffed by the planner); reviews and points are not.
GRANT_KINDS = ("badge", "group", "role")

#: Outbox statuses that still stand for an intention (``dead`` included: a parked action is not re-planned on its own,
#: an admin retries it).
OPEN_STATUSES = ("pending", "sending", "failed", "dead")


@dataclass(frozen=True, order=True)
class GrantKey:
    """One thing a community can hold for a member: ``("badge", "Verified Buyer")``, ``("group", "verified-buyers")``."""

    kind: str
    target: str


@dataclass(frozen=True)
class OpenAction:
    """An outbox action for a grant that is not settled yet (see ``OPEN_STATUSES``)."""

    id: int
    key: GrantKey
    op: Op
    status: str
