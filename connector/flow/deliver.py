"""Deliver: outbox rows due on each community are claimed, sent in the batches the community can apply, and settled.

Rows a crashed process left in ``sending`` are verified against the community before anything is sent again (read
before retry). A community that cannot be used this pass (a refused key, an outage after the retries) stops with one
error; its rows go back to pending with no attempt counted, so an outage never parks good actions as dead.

Two answers are neither success nor failure. A rate limit that asks for longer than the community's
``max_retry_wait_seconds`` defers the action (pending, no attempt counted, not before the time given) and delivery
goes on with the next action: the adapter lets :class:`~connector.core.http.Deferred` through when the limit is the
action's own (a Discord bucket on one channel), or stops the community when it covers everything (the Discourse
site-wide admin limit). A non-idempotent request that may have been applied without an answer saying so (a POST
answered 5xx, or timed out) leaves the action to be verified, like a crash's orphan, before it is sent again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta

import httpx

from adapters.base import CURRENT_USERNAME, Action, CommunityAdapter, CommunityStopped, MassGrants, Outcome
from connector.core.clock import utcnow
from connector.core.http import Deferred, RemoteError, deferred_by, describe_error, outcome_unknown
from connector.core.logs import log
from connector.core.payloads import Payload
from connector.features.base import Feature, Run
from connector.state.tables import OutboxRow

#: Rows claimed per round: one full Discourse group call.
GROUP_BATCH = 1000
#: Grants of one kind gathered for mass awards per round (Discourse's ``MAX_CSV_LINES``: one award each).
MASS_BATCH = 50_000


class DeliverStage:
    name = "deliver"

    def __init__(self, features: Sequence[Feature]) -> None:
        self.owners: dict[str, Feature] = {kind: feature for feature in features for kind in feature.kinds}
        #: Rows sent under another name than the one they were read with (a rename found earlier in the pass).
        self._sent_as: dict[int, str] = {}

    def run(self, run: Run) -> None:
        outbox = run.state.outbox
        for name, community in run.communities.items():
            try:
                self._recover(run, name, community)
                total = run.state.status.outbox_counts()["pending"]
                mass = community if isinstance(community, MassGrants) else None
                done = self._mass(run, name, community, mass, total) if mass is not None else 0
                if run.stop.is_set():
                    return
                while rows := outbox.due(name, utcnow(), limit=GROUP_BATCH, not_since=run.started):
                    for batch in batches(rows, mass):
                        if run.stop.is_set():
                            return  # the action in flight has finished; the rest waits in the outbox
                        claimed = outbox.claim(batch)
                        if claimed:
                            self._send(run, community, claimed)
                        done += len(batch)
                        run.options.progress("deliver", done, max(total, done))
            except CommunityStopped as error:
                run.report.errors.append(str(error))
                log.error("community stopped", community=name, reason=str(error))
            except Deferred as held:
                # A read this community needed first (verifying an interrupted action) is held by a rate limit longer
                # than the cap: nothing failed; what is left is tried on a later pass.
                until = utcnow() + timedelta(seconds=math.ceil(held.retry_after))
                run.report.deferred_until[name] = max(until, run.report.deferred_until.get(name, until))
                log.warning("delivery deferred by a rate limit", community=name, until=until.isoformat())
            except (RemoteError, httpx.HTTPError) as error:
                run.report.errors.append(f"{name}: {error}")
                log.error("delivery failed", community=name, error=str(error))

    def _mass(self, run: Run, name: str, community: CommunityAdapter, mass: MassGrants, total: int) -> int:
        """Every due grant of one target sent as one batch (a mass award) when there are more than the community's
        threshold of them, before the mixed rounds: gathered by kind, so badge grants are not cut into awards of a
        few hundred by the group and other rows between them in id order. Returns how many rows it sent."""
        done = 0
        kinds = sorted(kind for kind in self.owners if mass.mass_threshold(kind) is not None)
        for kind in kinds:
            threshold = mass.mass_threshold(kind) or 0
            rows = run.state.outbox.due(name, utcnow(), limit=MASS_BATCH, not_since=run.started, kind=kind, op="grant")
            by_target: dict[str, list[OutboxRow]] = {}
            for row in rows:
                by_target.setdefault(row.target, []).append(row)
            for due in by_target.values():
                if len(due) <= threshold:
                    continue  # a few grants: sent one by one in the mixed rounds
                if run.stop.is_set():
                    return done
                claimed = run.state.outbox.claim(due)
                if claimed:
                    self._send(run, community, claimed)
                done += len(due)
                run.options.progress("deliver", done, max(total, done))
        return done

    def actions(self, run: Run, rows: Sequence[OutboxRow]) -> list[Action]:
        """The rows as the community adapter sees them, each with its payload built now, and the account's name and
        user id read in one query for the batch (a rename found earlier in the pass has renamed open rows; a revoke
        for an account the customer was linked to before carries no id and goes by that account's name)."""
        accounts = run.state.identities.names.action_accounts([row.id or 0 for row in rows])
        if len(self._sent_as) > 10 * GROUP_BATCH:  # entries are consumed when recorded; never let leftovers pile up
            self._sent_as.clear()
        for row in rows:
            name = accounts.get(row.id or 0, ("", None))[0]
            if row.id and name and name != row.remote_username:
                self._sent_as[row.id] = name
        return [
            Action(
                id=row.id or 0,
                kind=row.kind,
                target=row.target,
                op=row.op,
                username=accounts.get(row.id or 0, (row.remote_username or "", None))[0],
                remote_ref=run.state.ledger.ledger_ref(row.community, row.customer_key, row.kind, row.target)
                if row.op == "revoke"
                else None,
                payload=self._payload(row),
                user_id=accounts.get(row.id or 0, ("", None))[1],
            )
            for row in rows
        ]

    def _renamed(self, run: Run, rows: Sequence[OutboxRow], outcomes: Mapping[int, Outcome]) -> None:
        """Accounts the community found under a new name (their owner renamed them), and rows sent under a name
        learnt earlier in the pass: stored, so later actions, the ledger and the reconcile use the name the community
        knows (the row itself, read before the rename, gave the ledger its old name)."""
        for row in rows:
            outcome = outcomes.get(row.id or 0)
            sent_as = self._sent_as.pop(row.id or 0, None)
            current = outcome.data.get(CURRENT_USERNAME) if outcome is not None else None
            current = current if isinstance(current, str) and current else sent_as
            if outcome is None or not outcome.ok or not current or current == row.remote_username:
                continue
            accounts = run.state.identities.names.remote_accounts(row.community, [row.customer_key])
            user, linked = accounts.get(row.customer_key, (None, ""))
            if user is not None and linked in (row.remote_username, current):  # the account the customer is linked to
                run.state.identities.names.renamed(row.community, user, row.remote_username or "", current)
                if linked != current:
                    log.info("community account renamed", community=row.community, user_id=user, username=current)

    def _payload(self, row: OutboxRow) -> Payload:
        owner = self.owners.get(row.kind)
        return owner.payload(row) if owner is not None else None

    def _record(self, run: Run, rows: Sequence[OutboxRow], outcomes: Mapping[int, Outcome]) -> None:
        """Each feature remembers what the community answered for its own rows."""
        self._renamed(run, rows, outcomes)
        by_owner: dict[int, list[OutboxRow]] = {}
        owners: dict[int, Feature] = {}
        for row in rows:
            owner = self.owners.get(row.kind)
            if owner is not None:
                by_owner.setdefault(id(owner), []).append(row)
                owners[id(owner)] = owner
        for key, owned in by_owner.items():
            owners[key].record(run, owned, outcomes)

    def _send(self, run: Run, community: CommunityAdapter, rows: Sequence[OutboxRow]) -> None:
        outbox, report = run.state.outbox, run.report
        try:
            outcomes = {o.action_id: o for o in community.apply(self.actions(run, rows))}
        except Deferred as held:
            # This action's own limit (one Discord bucket on one channel): it waits; the others go on.
            self._defer(run, rows, held)
            return
        except (CommunityStopped, RemoteError, httpx.HTTPError) as error:
            # Not these actions' fault (a bad key, a forum that is down): back to pending, no attempt counted;
            # deferred to the time a rate limit gave; or, if a write may have landed, verified before any resend.
            deferred = deferred_by(error)
            if deferred is not None:
                self._defer(run, rows, deferred)
            elif outcome_unknown(error):
                self._unsure(run, rows, error)
            else:
                outbox.release(rows)
            raise
        except BaseException as error:
            # A bug or an interrupt mid-call: whatever was sent is checked before it is sent again.
            self._unsure(run, rows, error)
            raise
        succeeded = [row for row in rows if (o := outcomes.get(row.id or 0)) is not None and o.ok]
        outbox.complete(succeeded, {row.id or 0: outcomes[row.id or 0].ref for row in succeeded})
        self._record(run, rows, outcomes)
        report.delivered += len(succeeded)
        unknown = [row for row in rows if (o := outcomes.get(row.id or 0)) is not None and o.unknown and not o.ok]
        if unknown:
            # Sent, not visible yet (a mass award's jobs): verified on a later pass before anything is sent again.
            first = outcomes[unknown[0].id or 0]
            run.state.outbox.unsure(unknown, f"outcome unknown, verified before it is sent again: {first.error}")
            log.warning("outcome unknown", community=unknown[0].community, actions=len(unknown), error=first.error)
        for row in rows:
            outcome = outcomes.get(row.id or 0)
            if outcome is not None and outcome.unknown and not outcome.ok:
                continue
            if outcome is not None and outcome.wait:
                outbox.release([row])
                report.waiting += 1
            elif outcome is None or not outcome.ok:
                reason = outcome.error if outcome and outcome.error else "no outcome reported"
                self._failed(run, row, reason, permanent=bool(outcome and outcome.permanent))

    def _defer(self, run: Run, rows: Sequence[OutboxRow], deferred: Deferred) -> None:
        """Rows a rate limit holds past ``max_retry_wait_seconds``: pending until the time it gave, no attempt."""
        until = utcnow() + timedelta(seconds=math.ceil(deferred.retry_after))
        scope = f" ({deferred.scope} scope)" if deferred.scope else ""
        reason = (
            f"deferred until {until:%Y-%m-%d %H:%M:%S} UTC: {deferred.remote} rate limit{scope} on "
            f"{deferred.method} {deferred.path} asks for {deferred.retry_after:.0f} s"
        )
        run.state.outbox.defer(rows, until, reason)
        run.report.deferred += len(rows)
        for row in rows:
            run.report.deferred_until[row.community] = max(until, run.report.deferred_until.get(row.community, until))
        log.warning(
            "actions deferred by a rate limit",
            community=rows[0].community if rows else "",
            actions=len(rows),
            until=until.isoformat(),
            wait=round(deferred.retry_after),
            scope=deferred.scope,
            sent=deferred.sent,
        )

    def _unsure(self, run: Run, rows: Sequence[OutboxRow], error: BaseException) -> None:
        """Rows whose write may have landed with no answer saying so: verified on the next pass before any resend."""
        reason = f"outcome unknown, verified before it is sent again: {describe_error(error)}"
        run.state.outbox.unsure(rows, reason)
        log.warning("outcome unknown", community=rows[0].community if rows else "", actions=len(rows), error=reason)

    def _failed(self, run: Run, row: OutboxRow, reason: str, permanent: bool) -> None:
        delivery, report = run.config.delivery, run.report
        attempts = 1 if permanent else delivery.max_attempts
        died = run.state.outbox.fail([row], reason, attempts, delivery.retry_base_seconds)
        report.failed += 1 - died
        report.died += died
        report.failures.append(
            f"{row.community}: {row.op} {row.kind} {row.target!r} for {row.remote_username}: {reason}"
        )
        log.warning(
            "action failed", community=row.community, op=row.op, kind=row.kind, target=row.target, reason=reason
        )

    def _recover(self, run: Run, name: str, community: CommunityAdapter) -> None:
        """Rows a crashed process left in ``sending``: verified against the community before anything is re-sent."""
        orphans = run.state.outbox.orphaned(name)
        if not orphans:
            return
        resend: list[OutboxRow] = []
        actions = self.actions(run, orphans)
        verified = self._verify_many(community, orphans, actions)
        for index, (row, action) in enumerate(zip(orphans, actions, strict=True)):
            try:
                outcome = verified[action.id] if action.id in verified else community.verify(action)
            except BaseException as error:
                # Not verified: the rows stay orphans for the next pass (this process would skip its own claim).
                run.state.outbox.unsure(
                    [*orphans[index:], *resend], f"not verified yet: {describe_error(error)}", attempt=False
                )
                raise
            if outcome is not None and outcome.ok:
                run.state.outbox.complete([row], {row.id or 0: outcome.ref})
                self._record(run, [row], {row.id or 0: outcome})
                run.report.recovered += 1
                log.info(
                    "interrupted action found applied", community=name, op=row.op, kind=row.kind, target=row.target
                )
            elif outcome is not None and outcome.unknown:
                # Still not readable (a mass award whose jobs may not have run): stays to verify, nothing is sent.
                run.state.outbox.unsure([row], f"not verified yet: {outcome.error}", attempt=False)
            else:
                resend.append(row)
        for batch in batches(resend, community if isinstance(community, MassGrants) else None):
            self._send(run, community, batch)

    @staticmethod
    def _verify_many(
        community: CommunityAdapter, rows: Sequence[OutboxRow], actions: Sequence[Action]
    ) -> dict[int, Outcome | None]:
        """Interrupted grants of one target verified together (one read of its holders) when there are more than the
        community's mass threshold of them; the others are verified one by one."""
        if not isinstance(community, MassGrants):
            return {}
        by_target: dict[tuple[str, str], list[Action]] = {}
        for row, action in zip(rows, actions, strict=True):
            if row.op == "grant":
                by_target.setdefault((row.kind, row.target), []).append(action)
        verified: dict[int, Outcome | None] = {}
        for (kind, _), due in by_target.items():
            threshold = community.mass_threshold(kind)
            if threshold is not None and len(due) > threshold:
                verified.update(community.verify_many(due))
        return verified


def batches(rows: Sequence[OutboxRow], mass: MassGrants | None = None) -> list[list[OutboxRow]]:
    """Group rows the community can apply in one call (same kind, target and op): group changes always; grants of
    one target when there are more than the community's mass threshold of them (:class:`MassGrants`: a Discourse mass
    badge award); every other row alone."""
    grouped: dict[tuple[str, str, str], list[OutboxRow]] = {}
    massed: dict[tuple[str, str, str], list[OutboxRow]] = {}
    singles: list[list[OutboxRow]] = []
    for row in rows:
        if row.kind == "group":
            grouped.setdefault((row.kind, row.target, row.op), []).append(row)
        elif mass is not None and row.op == "grant" and mass.mass_threshold(row.kind) is not None:
            massed.setdefault((row.kind, row.target, row.op), []).append(row)
        else:
            singles.append([row])
    for (kind, _, _), due in massed.items():
        threshold = mass.mass_threshold(kind) if mass is not None else None
        if threshold is not None and len(due) > threshold:
            grouped[(kind, due[0].target, "grant")] = due
        else:
            singles.extend([row] for row in due)
    return singles + list(grouped.values())
