"""Plan: for each batch of dirty customers, the features add what should hold; the batch is written in one
transaction (new outbox rows with deterministic keys, superseded ones, customers waiting for an identity).

The features run in the order the pass lists them (``connector.flow.run.FEATURES``), each seeing what the earlier
ones decided.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector.features.base import Feature, PlanBatch, Run
from connector.state.sql import CHUNK


class PlanStage:
    """Plan the customers that changed. ``after_match``: the second plan of a pass, for customers the match stage
    has just found an account for. (A dry run plans the same way, into a throw-away copy of the store.)"""

    def __init__(self, features: Sequence[Feature], *, after_match: bool = False) -> None:
        self.features = features
        self.after_match = after_match
        self.name = "replan" if after_match else "plan"

    def run(self, run: Run) -> None:
        options, report, plans = run.options, run.report, run.state.plans
        everyone = options.full and not self.after_match
        keys = plans.dirty_customer_keys(all_customers=everyone)
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            batch = PlanBatch(plans.plan_inputs(chunk))
            for feature in self.features:
                feature.plan(run, batch)
            report.customers_planned += len(chunk)
            report.actions_planned += len(batch.new)
            need_identity = sorted(set(batch.need_identity))
            plans.apply_plan(chunk, batch.new, batch.supersede, need_identity, batch.still_dirty)
            options.progress("plan", min(start + CHUNK, len(keys)), len(keys))
