"""The contract between a pass and its plug-ins: what a feature sees of a pass, and the one protocol it implements.

A pass (``connector.flow``) runs stages: pull, prepare, plan, match, deliver, report. Features — grants, points,
reviews, Linked Roles, and whatever comes next — plug into three of them, in the order they are listed, like
structlog processors:

- ``prepare(run)``: after the shop's orders are stored, read and plan what is not per customer (reviews);
- ``plan(run, batch)``: add this feature's part of the plan for one batch of customers (a later feature sees what an
  earlier one added: points put tier roles into ``batch.wanted`` before grants diff it against the ledger);
- ``payload(row)`` / ``record(run, rows, outcomes)``: for the outbox kinds the feature owns, what an action writes
  (built from the state store as it is now) and what to remember once it is done;
- ``describe(row)``: what the action would write, in words, for a dry run's plan.

A feature is given the state store, the config and the community adapters it needs, never the connector.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from adapters.base import CommunityAdapter, Outcome, ShopAdapter
from connector.core.config import Config
from connector.core.grants import GrantKey
from connector.core.payloads import Payload
from connector.state import State
from connector.state.planning import CustomerPlanInput, NewAction
from connector.state.tables import OutboxRow

Progress = Callable[[str, int, int | None], None]
"""``progress(stage, done, total)``: called as work advances (``total`` None when unknown)."""


def quiet(stage: str, done: int, total: int | None) -> None:
    """The progress callback that shows nothing."""


@dataclass
class PlannedAction:
    """One line of a dry run's plan."""

    community: str
    customer_key: str
    email: str | None
    kind: str
    target: str
    op: str
    #: What the action writes, as the community would show it: a review post's rendered text, a points award
    #: (``+10 points: order 1042``); None for grants and revokes, whose kind and target say it all.
    detail: str | None = None


@dataclass
class PassReport:
    """What one pass did; the CLI prints it and picks the exit code from ``ok``."""

    orders_read: int = 0
    orders_changed: int = 0
    quarantined: int = 0
    customers_planned: int = 0
    actions_planned: int = 0
    delivered: int = 0
    failed: int = 0
    died: int = 0
    recovered: int = 0
    matched: int = 0
    unmatched: int = 0
    reviews_changed: int = 0
    #: Actions that could not be applied yet through no fault of their own (a member not in the guild yet).
    waiting: int = 0
    #: Actions a rate limit holds for longer than ``max_retry_wait_seconds``: pending, no attempt counted, and per
    #: community the latest time one of them may go again.
    deferred: int = 0
    deferred_until: dict[str, datetime] = field(default_factory=dict)
    conflicts: int = 0
    #: Reconcile: members found gone from the community (their grants wait for their return).
    members_left: int = 0
    errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    plan: list[PlannedAction] = field(default_factory=list)
    requests: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed and not self.died


@dataclass(frozen=True)
class PassOptions:
    """How a pass runs. ``full``: ignore cursors (backfill) and re-plan every customer; ``dry_run``: no remote write
    (the pass plans into a throw-away copy of the store and lists the outbox instead of delivering); ``order_ids``: re-read just these orders (a webhook named them) instead of the incremental pull."""

    full: bool = False
    since: datetime | None = None
    dry_run: bool = False
    order_ids: Sequence[str] | None = None
    progress: Progress = quiet


@dataclass
class Run:
    """One pass as the stages and features see it: the parts it works with, its options, and its report."""

    state: State
    config: Config
    shop: ShopAdapter
    communities: Mapping[str, CommunityAdapter]
    options: PassOptions
    report: PassReport
    started: datetime
    #: Set by the daemon on SIGTERM: the pass stops between pages and between remote calls.
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def dry_run(self) -> bool:
        return self.options.dry_run


@dataclass
class PlanBatch:
    """One batch of customers being planned, and what the features have decided for it so far."""

    customers: Sequence[CustomerPlanInput]
    #: Grants wanted beyond the rules' (tier roles), per customer and community; the grants feature diffs them.
    wanted: dict[str, dict[str, set[GrantKey]]] = field(default_factory=dict)
    #: Each customer's points total (set by the points feature; Linked Roles shows it).
    points: dict[str, int] = field(default_factory=dict)
    new: list[NewAction] = field(default_factory=list)
    supersede: list[int] = field(default_factory=list)
    #: (community, customer) pairs that want something there but have no community account yet.
    need_identity: list[tuple[str, str]] = field(default_factory=list)
    #: Customers to plan again next time (an action of theirs was in flight).
    still_dirty: list[str] = field(default_factory=list)

    @property
    def keys(self) -> list[str]:
        return [customer.key for customer in self.customers]


class Feature(Protocol):
    """A plug-in of the pass. Implement all five; a feature with nothing to do in a step returns at once."""

    #: The outbox kinds whose payload and record this feature owns (``"review"``, ``"points"``, …).
    kinds: frozenset[str]

    def prepare(self, run: Run) -> None:
        """After orders are stored, before customers are planned: read and plan what is not per customer."""
        ...

    def plan(self, run: Run, batch: PlanBatch) -> None:
        """Add this feature's actions (and wanted grants, totals, identities needed) for one batch of customers."""
        ...

    def payload(self, row: OutboxRow) -> Payload:
        """What the action writes, built from the state store as it is now (reconcile, not replay)."""
        ...

    def record(self, run: Run, rows: Sequence[OutboxRow], outcomes: Mapping[int, Outcome]) -> None:
        """Remember what the community answered for this feature's actions (ids, hashes, conflicts)."""
        ...

    def describe(self, row: OutboxRow) -> str | None:
        """For a dry run's plan: what the action would write (a post's text, ``+10 points``), read from the store as
        it is now; None when its kind and target say it all. Never calls a remote (no token refresh, no look-up)."""
        ...
