"""A pass is its list of stages: pull → prepare → plan → match → earn → replan → deliver → redeem → report (a dry
run: preview instead of deliver, and no earn or redeem, on a throw-away copy of the store).

``run_pass`` runs them in order on one ``Run``; a stage takes the state store, the config and its adapters from the
run, never the connector. The identity match sits between two plans because who needs a look-up is a planning
decision (a customer with something to receive and no account yet); the second plan covers only the customers the
match has just found. The features plug into prepare, plan and deliver (``connector.features``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from adapters.base import CommunityAdapter, CommunityStats
from connector.core.logs import log
from connector.features.base import Feature, PassReport, Run
from connector.flow.deliver import DeliverStage
from connector.flow.match import MatchStage
from connector.flow.plan import PlanStage
from connector.flow.preview import PreviewStage
from connector.flow.pull import PullStage


class Stage(Protocol):
    """One step of a pass."""

    name: str

    def run(self, run: Run) -> None:
        """Do this stage's work on the run, adding what it did to ``run.report``."""
        ...


class PrepareStage:
    """The features' own reading and planning before customers are planned (reviews are pulled and planned here)."""

    name = "prepare"

    def __init__(self, features: Sequence[Feature]) -> None:
        self.features = features

    def run(self, run: Run) -> None:
        for feature in self.features:
            feature.prepare(run)


class ReportStage:
    """Requests each community answered during the pass (counted from the stage's creation), and the pass's log."""

    name = "report"

    def __init__(self, communities: Mapping[str, CommunityAdapter]) -> None:
        self.before: dict[str, CommunityStats] = {name: c.stats() for name, c in communities.items()}

    def run(self, run: Run) -> None:
        report = run.report
        for name, community in run.communities.items():
            now, start = community.stats(), self.before.get(name, CommunityStats())
            report.requests[name] = {
                "requests": now.requests - start.requests,
                "writes": now.writes - start.writes,
                "rate_limited": now.rate_limited - start.rate_limited,
                "retries": now.retries - start.retries,
            }
        log.info(
            "pass finished",
            orders_read=report.orders_read,
            orders_changed=report.orders_changed,
            actions_planned=report.actions_planned,
            delivered=report.delivered,
            failed=report.failed,
            dead=report.died,
            unmatched=report.unmatched,
        )


def stages(
    features: Sequence[Feature],
    communities: Mapping[str, CommunityAdapter],
    *,
    dry_run: bool = False,
    matched: Sequence[Stage] = (),
    after: Sequence[Stage] = (),
) -> list[Stage]:
    """The stages of one pass, in order; a dry run lists the outbox where a pass delivers. ``matched``: stages that
    need the identity match and feed the second plan (points earned in the community); ``after``: stages that run
    once the outbox is delivered (members' redemptions). A dry run skips both (they write to the ledger)."""
    return [
        PullStage(),
        PrepareStage(features),
        PlanStage(features),
        MatchStage(),
        *(() if dry_run else matched),
        PlanStage(features, after_match=True),
        PreviewStage(features) if dry_run else DeliverStage(features),
        *(() if dry_run else after),
        ReportStage(communities),
    ]


def run_pass(run: Run, steps: Sequence[Stage]) -> PassReport:
    for stage in steps:
        stage.run(run)
    return run.report
