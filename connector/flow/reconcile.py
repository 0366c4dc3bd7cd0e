"""Reconcile: read who really holds each badge, group and role, and compare it with the ledger.

A grant removed by hand is recorded per ``[policy]`` (an override that is never granted again, or granted again);
a member who left the community is not a moderator's doing: the grant is forgotten and made again when they return.
Communities that can list holders (Discourse) are asked per badge and group; those that cannot (Discord) are asked
about the members CardBridge granted to.

The shop side drifts too: :class:`VanishedOrdersStage` asks the shop which stored paid orders it still has (see
:func:`connector.flow.pull.revoke_vanished`), so a deleted order stops granting on the pass that follows.
"""

from __future__ import annotations

import httpx

from adapters.base import HolderListing, MemberCheck, UserLookup
from connector.core.http import RemoteError, describe_error
from connector.core.logs import log
from connector.features.base import Run
from connector.flow.pull import revoke_vanished


class VanishedOrdersStage:
    """Paid orders the shop no longer has (deleted, in the trash) are stored as ``deleted``."""

    name = "vanished"

    def __init__(self) -> None:
        #: One line when orders vanished, for the operator.
        self.found: list[str] = []
        self.count = 0

    def run(self, run: Run) -> None:
        try:
            self.count = revoke_vanished(run)
        except Exception as error:  # any adapter, any driver: the community reconcile still runs
            reason = describe_error(error)
            run.report.errors.append(f"shop: {reason}")
            log.error("presence check failed", error=reason)
            return
        if self.count:
            self.found.append(
                f"shop: {self.count} paid order(s) are gone from the shop (deleted or in the trash); "
                "what they alone granted is revoked"
            )


#: Names looked up per community per reconcile to tell a renamed account from a manual removal (one read each).
NAME_CHECKS = 200


class ReconcileStage:
    name = "reconcile"

    def __init__(self) -> None:
        #: One line per drift found (also logged), so the operator sees every manual removal.
        self.found: list[str] = []

    def run(self, run: Run) -> None:
        for name, community in run.communities.items():
            if not isinstance(community, HolderListing | MemberCheck):
                continue
            try:
                self._community(run, name, community)
            except (RemoteError, httpx.HTTPError) as error:
                run.report.errors.append(f"{name}: reconcile failed: {error}")

    def _community(self, run: Run, name: str, community: HolderListing | MemberCheck) -> None:
        ledger, plans, report = run.state.ledger, run.state.plans, run.report
        respect = run.config.policy.respect_manual_removal
        granted = ledger.granted(name)
        if isinstance(community, MemberCheck):
            answers = community.who_holds({t: [user for _, user in rows] for t, rows in granted.items()})
        for (kind, target), rows in granted.items():
            if isinstance(community, MemberCheck):
                if (kind, target) not in answers:
                    continue  # the community cannot tell: no drift claimed
                holders, absent = answers[(kind, target)]
            else:
                holders, absent = community.holders(kind, target), set()
            left = [(key, user) for key, user in rows if user in absent]
            if left:
                # Not a moderator's doing: the member left. Forget the grant, so it is made again (and waits until
                # they are back).
                ledger.set_ledger_state(name, [(key, kind, target) for key, _ in left], "revoked")
                plans.mark_dirty([key for key, _ in left])
                report.members_left += len(left)
                for _key, user in left:
                    self.found.append(f"{name}: {user} left; {kind} {target!r} is granted again when they return")
            missing = [(key, user) for key, user in rows if user.lower() not in holders and user not in absent]
            if isinstance(community, HolderListing) and isinstance(community, UserLookup):
                missing = self._renamed(run, name, kind, target, community, missing)
            if not missing:
                continue
            ledger.set_ledger_state(
                name, [(key, kind, target) for key, _ in missing], "override" if respect else "revoked"
            )
            for _key, user in missing:
                self.found.append(
                    f"{name}: {kind} {target!r} was removed from {user} by hand; "
                    + ("recorded as an override, not granted again" if respect else "granting it again")
                )
                log.warning(
                    "manual removal",
                    community=name,
                    kind=kind,
                    target=target,
                    user=user,
                    policy="respect" if respect else "re-grant",
                )

    def _renamed(
        self,
        run: Run,
        name: str,
        kind: str,
        target: str,
        community: UserLookup,
        missing: list[tuple[str, str]],
    ) -> list[tuple[str, str]]:
        """The missing holders that are really missing; the others were recorded under a name the forum no longer has.

        Holders are listed by their current name, the ledger keeps the name a grant was made to: a member renamed on
        the forum (or an account deleted) is not a moderator's removal. Their grant is forgotten and the customer
        planned again, so the next pass grants by forum user id and learns the new name (or fails honestly for an
        account that is gone). Names that cannot be checked this time (past :data:`NAME_CHECKS`) claim no drift.
        """
        kept: list[tuple[str, str]] = []
        renamed: list[tuple[str, str]] = []
        known: dict[str, bool] = {}
        for key, user in missing:
            if user not in known:
                if len(known) >= NAME_CHECKS:
                    continue
                known[user] = community.find_user(user) is not None
            (kept if known[user] else renamed).append((key, user))
        if renamed:
            run.state.ledger.set_ledger_state(name, [(key, kind, target) for key, _ in renamed], "revoked")
            run.state.plans.mark_dirty([key for key, _ in renamed])
            for _key, user in renamed:
                self.found.append(
                    f"{name}: {user} is no longer a name on the forum (renamed or deleted); "
                    f"{kind} {target!r} is checked again by user id on the next pass"
                )
        return kept
