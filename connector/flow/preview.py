"""A dry run's last stage: instead of delivering, list what the outbox holds for each community, as the real pass
would send it.

A dry run is a whole pass on a throw-away copy of the state store (``connector.state.snapshot``): the shop is read,
customers are matched (look-ups are reads) and planned into the copy's outbox, exactly as a real pass plans. The plan
shown is then every action not settled yet — the ones this pass planned, and the ones earlier passes left pending,
failed or interrupted, which the real pass would send or verify too — each with what it would write (a review post's
rendered text, a points award), told by the feature that owns its kind.
"""

from __future__ import annotations

from collections.abc import Sequence

from connector.features.base import Feature, PlannedAction, Run
from connector.state.tables import OutboxRow

#: Rows read per query while listing.
PAGE = 1000
#: What an action that is not plainly due would do first, by its status.
_STATUS_NOTE = {
    "failed": "retried (failed before: {error})",
    "sending": "verified first (a pass was interrupted while sending it)",
}


class PreviewStage:
    name = "preview"

    def __init__(self, features: Sequence[Feature]) -> None:
        self.owners: dict[str, Feature] = {kind: feature for feature in features for kind in feature.kinds}

    def run(self, run: Run) -> None:
        outbox, plan = run.state.outbox, run.report.plan
        for name in run.communities:
            last = 0
            while rows := outbox.open_rows(name, after_id=last, limit=PAGE):
                plan.extend(self._line(row) for row in rows)
                last = rows[-1].id or last

    def _line(self, row: OutboxRow) -> PlannedAction:
        owner = self.owners.get(row.kind)
        detail = owner.describe(row) if owner is not None else None
        note = _STATUS_NOTE.get(row.status)
        if note is not None:
            reason = note.format(error=row.last_error or "no reason kept")
            detail = f"{reason}: {detail}" if detail else reason
        return PlannedAction(row.community, row.customer_key, None, row.kind, row.target, row.op, detail)
