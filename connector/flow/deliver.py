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

Single actions (a badge grant below the mass-award threshold, a role, a review, a points award) go in rounds of up to
:data:`ROUND`, sized to what the community's budget allows in about a second: the round is claimed in one statement
before its first call, its actions are sent one by one, and all of it is settled (done with the ledger, failed, given
back) in one transaction. A crash mid-round leaves the round in ``sending``: verified before anything is resent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

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
#: Grants of one target sent per mass award round: one award each. Well under Discourse's ``MAX_CSV_LINES``
#: (50,000) to bound memory (about 5 kB a row while it is sent); a larger backfill costs one more award and one more
#: boundary page of read-back per round.
MASS_BATCH = 5_000
#: Single actions (a badge grant, a role, a review) claimed and settled together at most: one claim and one settling
#: commit per round instead of one each per action, while a crash leaves at most a round to verify.
ROUND = 50


def round_size(settings: object) -> int:
    """Single actions per round: what the community's request budget allows in about a second (``requests_per_minute``
    / 60, as a Discourse admin key's 60 a minute gives rounds of one), at least 1 and at most :data:`ROUND`; a
    community with no per-minute budget (Discord's per-route buckets, 50 a second globally) gets :data:`ROUND`."""
    per_minute = getattr(settings, "requests_per_minute", None)
    if isinstance(per_minute, int) and per_minute > 0:
        return max(1, min(ROUND, per_minute // 60))
    return ROUND


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
                size = round_size(run.config.communities.get(name))
                while rows := outbox.due(name, utcnow(), limit=GROUP_BATCH, not_since=run.started):
                    singles: list[list[OutboxRow]] = []
                    grouped: list[list[OutboxRow]] = []
                    for batch in batches(rows, mass):
                        (singles if len(batch) == 1 else grouped).append(batch)
                    # Single actions in rounds: claimed together, sent one by one, settled together.
                    for start in range(0, len(singles), size):
                        if run.stop.is_set():
                            return  # the action in flight has finished; the rest waits in the outbox
                        due = [batch[0] for batch in singles[start : start + size]]
                        claimed = outbox.claim(due)
                        if claimed:
                            self._calls(run, community, [[row] for row in claimed])
                        done += len(due)
                        run.options.progress("deliver", done, max(total, done))
                    for batch in grouped:
                        if run.stop.is_set():
                            return
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
        threshold of them, before the mixed rounds: counted per target first (no row loaded for the small ones), then
        loaded by target, so badge grants are not cut into awards of a few hundred by the group and other rows between
        them in id order. Rounds of :data:`MASS_BATCH` bound what a large backfill holds in memory. Returns how many
        rows it sent."""
        done, outbox = 0, run.state.outbox
        kinds = sorted(kind for kind in self.owners if mass.mass_threshold(kind) is not None)
        for kind in kinds:
            threshold = mass.mass_threshold(kind) or 0
            counts = outbox.due_per_target(name, utcnow(), run.started, kind, "grant")
            for target in sorted(t for t, count in counts.items() if count > threshold):
                # Sent rows leave the due set (done, failed with a later retry, or sending to verify): each round
                # reads the next ones, and a short round is the last.
                for _ in range(counts[target] // MASS_BATCH + 1):
                    due = outbox.due(name, utcnow(), MASS_BATCH, run.started, kind=kind, op="grant", target=target)
                    if len(due) <= threshold or run.stop.is_set():
                        break  # a few left (sent one by one in the mixed rounds), or the pass is stopping
                    claimed = outbox.claim(due)
                    done += len(due)
                    del due  # the claimed copies are what is sent: one copy of a round in memory, not two
                    if claimed:
                        self._send(run, community, claimed)
                    run.options.progress("deliver", done, max(total, done))
        return done

    def actions(self, run: Run, rows: Sequence[OutboxRow]) -> list[Action]:
        """The rows as the community adapter sees them, each with its payload built now, and the account's name and
        user id read in one query for the batch (a rename found earlier in the pass has renamed open rows; a revoke
        for an account the customer was linked to before carries no id and goes by that account's name), and the
        remote ids revokes undo in one more."""
        addressed = self._addressed(run, rows)
        return [replace(action, payload=self._payload(row)) for row, action in zip(rows, addressed, strict=True)]

    def _addressed(self, run: Run, rows: Sequence[OutboxRow]) -> list[Action]:
        """:meth:`actions` without their payloads (a round builds each right before its call: a review's payload
        reads the topic an earlier review of the round created), from one read of the accounts and one of the
        ledger refs for all the rows."""
        accounts = run.state.identities.names.action_accounts([row.id or 0 for row in rows])
        revokes = [(row.community, row.customer_key, row.kind, row.target) for row in rows if row.op == "revoke"]
        refs = run.state.ledger.ledger_refs(revokes) if revokes else {}
        if len(self._sent_as) > 10 * GROUP_BATCH:  # entries are consumed when recorded; never let leftovers pile up
            self._sent_as.clear()
        result = []
        for row in rows:
            name, user_id = accounts.get(row.id or 0, (row.remote_username or "", None))
            if row.id and name and name != row.remote_username:
                self._sent_as[row.id] = name
            key = (row.community, row.customer_key, row.kind, row.target)
            result.append(
                Action(
                    id=row.id or 0,
                    kind=row.kind,
                    target=row.target,
                    op=row.op,
                    username=name,
                    remote_ref=refs.get(key) if row.op == "revoke" else None,
                    user_id=user_id,
                )
            )
        return result

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
        """Renames the community reported are stored, and each feature remembers what it answered for its rows."""
        self._renamed(run, rows, outcomes)
        self._features_record(run, rows, outcomes)

    def _features_record(self, run: Run, rows: Sequence[OutboxRow], outcomes: Mapping[int, Outcome]) -> None:
        """Each feature remembers what the community answered for its own rows."""
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
        """Claimed rows sent in one call (a group change, a mass award, one action) and settled."""
        self._calls(run, community, [rows])

    def _calls(self, run: Run, community: CommunityAdapter, calls: Sequence[Sequence[OutboxRow]]) -> None:
        """Claimed rows sent one ``apply`` per call, in order, then settled in one transaction (a round).

        Every row was claimed before its call, so a crash anywhere leaves the round ``sending``: verified before
        anything is sent again. A call the remote's own limit holds (:class:`Deferred`) is deferred and the next one
        goes; an error that stops the community settles what was answered, gives the call in flight its due (deferred,
        left to verify, or back to pending) and the calls not made back to pending, then stops; so does a stop request
        between calls."""
        rows = [row for call in calls for row in call]
        if not rows:
            return
        addressed = {action.id: action for action in self._addressed(run, rows)}
        outcomes: dict[int, Outcome] = {}
        sent: list[OutboxRow] = []
        held: list[tuple[Sequence[OutboxRow], Deferred]] = []
        unsent: list[OutboxRow] = []
        error: BaseException | None = None
        failing: Sequence[OutboxRow] = ()
        #: The last call's answers, not recorded by the features yet.
        unrecorded: tuple[Sequence[OutboxRow], dict[int, Outcome]] | None = None
        for index, call in enumerate(calls):
            if index and run.stop.is_set():
                unsent = [row for rest in calls[index:] for row in rest]
                break
            if unrecorded is not None:
                # What the last call created (a review's topic) is stored before this call's payload is built; the
                # rows themselves are settled with the round (a crash first: verified, found applied, recorded).
                self._features_record(run, *unrecorded)
                unrecorded = None
            try:
                actions = [replace(addressed[row.id or 0], payload=self._payload(row)) for row in call]
                answered = community.apply(actions)
            except Deferred as own_limit:
                # This action's own limit (one Discord bucket on one channel): it waits; the others go on.
                held.append((call, own_limit))
                continue
            except BaseException as raised:
                error, failing = raised, call
                unsent = [row for rest in calls[index + 1 :] for row in rest]
                break
            answers = {o.action_id: o for o in answered}
            outcomes.update(answers)
            sent.extend(call)
            unrecorded = (call, answers)
        if error is not None and not isinstance(error, CommunityStopped | RemoteError | httpx.HTTPError):
            # A bug or an interrupt mid-call: whatever was sent is checked before it is sent again.
            unsure, release = list(failing), unsent
        elif error is not None and (deferred := deferred_by(error)) is not None:
            # Not these actions' fault: deferred to the time a rate limit gave (the rest of the round: next pass).
            held.append((failing, deferred))
            unsure, release = [], unsent
        elif error is not None and outcome_unknown(error):
            unsure, release = list(failing), unsent  # a write may have landed: verified before any resend
        else:
            unsure, release = [], [*failing, *unsent]  # a bad key, a forum that is down: back to pending
        self._settle(run, sent, outcomes, held, unsure, release, error)
        if unrecorded is not None:  # the round's last call, recorded once it is settled (as a lone action always was)
            self._features_record(run, *unrecorded)
        if error is not None:
            raise error

    def _settle(
        self,
        run: Run,
        sent: Sequence[OutboxRow],
        outcomes: Mapping[int, Outcome],
        held: Sequence[tuple[Sequence[OutboxRow], Deferred]],
        unsure: Sequence[OutboxRow],
        release: Sequence[OutboxRow],
        error: BaseException | None,
    ) -> None:
        """One transaction for a round: done rows with their ledger, failures, rows to verify, deferred and given
        back rows; then the report, the log and each feature's record of what the community answered."""
        report, delivery = run.report, run.config.delivery
        succeeded = [row for row in sent if (o := outcomes.get(row.id or 0)) is not None and o.ok]
        # Sent, not visible yet (a mass award's jobs): verified on a later pass before anything is sent again.
        unknown = [row for row in sent if (o := outcomes.get(row.id or 0)) is not None and o.unknown and not o.ok]
        waiting = [row for row in sent if (o := outcomes.get(row.id or 0)) is not None and o.wait and not o.unknown]
        failures: list[tuple[OutboxRow, str, bool]] = []
        for row in sent:
            outcome = outcomes.get(row.id or 0)
            if outcome is None or not (outcome.ok or outcome.unknown or outcome.wait):
                reason = outcome.error if outcome and outcome.error else "no outcome reported"
                failures.append((row, reason, bool(outcome and outcome.permanent)))
        deferrals = [(call, *self._deferral(deferred)) for call, deferred in held]
        unsure_reason = f"outcome unknown, verified before it is sent again: {describe_error(error)}" if error else ""
        first_unknown = outcomes[unknown[0].id or 0].error if unknown else None
        died: dict[int, int] = {}
        with run.state.outbox.settling() as settle:
            settle.complete(succeeded, {row.id or 0: outcomes[row.id or 0].ref for row in succeeded})
            settle.unsure(unknown, f"outcome unknown, verified before it is sent again: {first_unknown}")
            settle.release(waiting)
            for row, reason, permanent in failures:
                attempts = 1 if permanent else delivery.max_attempts
                died[row.id or 0] = settle.fail([row], reason, attempts, delivery.retry_base_seconds)
            for call, until, reason in deferrals:
                settle.defer(call, until, reason)
            settle.unsure(unsure, unsure_reason)
            settle.release(release)
        self._renamed(run, sent, outcomes)  # after the ledger took the rows' names: it renames them too
        report.delivered += len(succeeded)
        report.waiting += len(waiting)
        if unknown:
            log.warning("outcome unknown", community=unknown[0].community, actions=len(unknown), error=first_unknown)
        for row, reason, _ in failures:
            dead = died.get(row.id or 0, 0)
            report.failed += 1 - dead
            report.died += dead
            report.failures.append(
                f"{row.community}: {row.op} {row.kind} {row.target!r} for {row.remote_username}: {reason}"
            )
            log.warning(
                "action failed", community=row.community, op=row.op, kind=row.kind, target=row.target, reason=reason
            )
        for (call, deferred), (_, until, _) in zip(held, deferrals, strict=True):
            report.deferred += len(call)
            for row in call:
                report.deferred_until[row.community] = max(until, report.deferred_until.get(row.community, until))
            log.warning(
                "actions deferred by a rate limit",
                community=call[0].community if call else "",
                actions=len(call),
                until=until.isoformat(),
                wait=round(deferred.retry_after),
                scope=deferred.scope,
                sent=deferred.sent,
            )
        if unsure:
            log.warning("outcome unknown", community=unsure[0].community, actions=len(unsure), error=unsure_reason)

    @staticmethod
    def _deferral(deferred: Deferred) -> tuple[datetime, str]:
        """Until when a rate limit holds rows past ``max_retry_wait_seconds`` (pending, no attempt), and why."""
        until = utcnow() + timedelta(seconds=math.ceil(deferred.retry_after))
        scope = f" ({deferred.scope} scope)" if deferred.scope else ""
        reason = (
            f"deferred until {until:%Y-%m-%d %H:%M:%S} UTC: {deferred.remote} rate limit{scope} on "
            f"{deferred.method} {deferred.path} asks for {deferred.retry_after:.0f} s"
        )
        return until, reason

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
