"""Pure diff: desired grants − applied ledger, given the actions already in flight → what to do next.

Reconcile, don't replay: the inputs are states, not events, so a refund, a missed webhook or a restart all come out
right on the next pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from connector.core.grants import GrantKey, Op, OpenAction


@dataclass(frozen=True)
class Decision:
    """``new``: actions to write to the outbox; ``supersede``: ids of open actions that are no longer wanted."""

    new: tuple[tuple[GrantKey, Op], ...]
    supersede: tuple[int, ...]


def decide(desired: set[GrantKey], applied: set[GrantKey], open_actions: Iterable[OpenAction]) -> Decision:
    """Compare one customer's desired and applied grants on one community.

    - wanted and held, or unwanted and not held: nothing to do; an open action the other way is superseded;
    - a target whose action is being sent right now is left alone until that send is settled;
    - otherwise one action (grant or revoke) is wanted, unless an equal one is already open.
    """
    by_target: dict[GrantKey, list[OpenAction]] = {}
    for action in open_actions:
        by_target.setdefault(action.key, []).append(action)

    new: list[tuple[GrantKey, Op]] = []
    supersede: list[int] = []
    for key in sorted(desired | applied | set(by_target)):
        actions = by_target.get(key, [])
        if any(action.status == "sending" for action in actions):
            continue
        want, have = key in desired, key in applied
        if want == have:
            supersede.extend(action.id for action in actions)
            continue
        op: Op = "grant" if want else "revoke"
        supersede.extend(action.id for action in actions if action.op != op)
        if not any(action.op == op for action in actions):
            new.append((key, op))
    return Decision(new=tuple(new), supersede=tuple(supersede))
