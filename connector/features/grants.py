"""Grants: the badges, groups and roles the rules give to paying customers, diffed against what the ledger holds.

Desired (the rules over the customer's paid orders, plus what earlier features wanted, such as tier roles) minus
applied (the ledger) minus overrides (a grant a moderator removed by hand, recorded by the reconcile) = actions.
Grants carry no payload; the ledger is updated when the outbox row completes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from adapters.base import Outcome
from connector.core.grants import GRANT_KINDS
from connector.core.payloads import Payload
from connector.features.base import PlanBatch, Run
from connector.state.planning import NewAction
from connector.state.tables import OutboxRow
from mappings.diff import decide
from mappings.grants import desired_grants


class GrantsFeature:
    kinds = frozenset(GRANT_KINDS)

    def prepare(self, run: Run) -> None:
        return None

    def plan(self, run: Run, batch: PlanBatch) -> None:
        for customer in batch.customers:
            wanted = desired_grants(run.config.rules, customer.paid_orders)
            for community, extra in batch.wanted.get(customer.key, {}).items():
                wanted.setdefault(community, set()).update(extra)
            for name in run.communities:
                ledger = customer.ledger.get(name, {})
                # A grant a moderator removed by hand (recorded by the reconcile) is theirs: never re-granted.
                overridden = {key for key, row in ledger.items() if row.state == "override"}
                desired = wanted.get(name, set()) - overridden
                applied = {key for key, row in ledger.items() if row.state == "granted"}
                open_actions = customer.open_actions.get(name, [])
                if not (desired or applied or open_actions):
                    continue
                identity = customer.identities.get(name)
                username = identity.remote_username if identity and identity.status == "matched" else None
                if any(a.status == "sending" for a in open_actions):
                    batch.still_dirty.append(customer.key)
                decision = decide(desired, applied, open_actions)
                batch.supersede.extend(decision.supersede)
                for key, op in decision.new:
                    who = username if op == "grant" else (ledger[key].remote_username if key in ledger else None)
                    if who is None:
                        batch.need_identity.append((name, customer.key))
                        continue
                    batch.new.append(NewAction(name, customer.key, key, op, who))

    def payload(self, row: OutboxRow) -> Payload:
        return None

    def record(self, run: Run, rows: Sequence[OutboxRow], outcomes: Mapping[int, Outcome]) -> None:
        return None

    def describe(self, row: OutboxRow) -> str | None:
        return None
