"""One pass: pull → store → plan → outbox → deliver. The CLI's ``sync`` and ``backfill`` and the daemon run this.

Each stage only talks to the state store and to the stage's own adapter; nothing below calls back up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx

from adapters.base import Action, CommunityAdapter, CommunityStopped, ShopAdapter
from adapters.registry import COMMUNITIES, SHOPS, load
from connector.core.clock import utcnow
from connector.core.config import Config
from connector.core.http import RemoteError
from connector.core.logs import log, mask_email
from connector.core.prefetch import read_ahead
from connector.features.linked_roles import KIND as ROLE_CONNECTION
from connector.features.linked_roles import LinkedRolesStage
from connector.features.reviews import ContentStage
from connector.state.db import open_engine
from connector.state.store import CHUNK, GRANT_KINDS, NewAction, StateStore

#: Rows claimed per round: one full Discourse group call (``ADD_MEMBERS_LIMIT``).
GROUP_BATCH = 1000
from connector.state.tables import OutboxRow
from mappings.diff import decide
from mappings.grants import GrantKey, desired_grants
from mappings.points import tier_role

ORDERS_STREAM = "orders"
CUSTOMERS_STREAM = "customers"

Progress = Callable[[str, int, int | None], None]
"""``progress(stage, done, total)``: called as work advances (``total`` None when unknown)."""


def _quiet(stage: str, done: int, total: int | None) -> None:
    return None


@dataclass
class PlannedAction:
    community: str
    customer_key: str
    email: str | None
    kind: str
    target: str
    op: str


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


class Connector:
    """The configured shop, communities and state store, with the stages of a pass as methods."""

    def __init__(
        self,
        config: Config,
        store: StateStore | None = None,
        shop: ShopAdapter | None = None,
        communities: dict[str, CommunityAdapter] | None = None,
    ) -> None:
        self.config = config
        self.store = store or StateStore(
            open_engine(config.state_url), order_number_key=config.link.secret.encode() if config.link else None
        )
        self.shop = shop or load(SHOPS, config.shop.kind, "shop.kind")(config.shop)
        self.communities = communities if communities is not None else self._communities()
        self.content = ContentStage(self)
        self.linked = LinkedRolesStage(self)
        #: Set by the daemon on SIGTERM: the pass stops between pages and between remote calls.
        self.stop_requested = threading.Event()

    def _communities(self) -> dict[str, CommunityAdapter]:
        found: dict[str, CommunityAdapter] = {}
        for name, community in self.config.communities.items():
            cls = load(COMMUNITIES, community.kind, f"communities.{name}.kind")
            found[name] = cls(name, community, rules=self.config.rules, cache=_StoreCache(self.store, name))
        return found

    def close(self) -> None:
        self.shop.close()
        for community in self.communities.values():
            community.close()
        self.store.engine.dispose()

    # ---- the whole pass ------------------------------------------------------------------------------------------

    def run_pass(
        self,
        *,
        full: bool = False,
        since: datetime | None = None,
        dry_run: bool = False,
        progress: Progress = _quiet,
        order_ids: Sequence[str] | None = None,
    ) -> PassReport:
        """``full``: ignore cursors (backfill) and re-plan every customer; ``dry_run``: no remote write, no outbox;
        ``order_ids``: re-read just these orders (a webhook named them) instead of the incremental pull."""
        report = PassReport()
        started = utcnow()
        before = {name: community.stats() for name, community in self.communities.items()}
        try:
            if order_ids is not None:
                self.pull_orders(report, order_ids)
            else:
                self.pull(report, full=full, since=since, progress=progress)
                self.content.pull(report)
        except (RemoteError, httpx.HTTPError) as error:
            report.errors.append(f"shop: {error}")
            log.error("pull failed", error=str(error))
        reviewers = self.content.plan_reviews(report, everyone=full, dry_run=dry_run)
        if reviewers and self.config.points and not dry_run:
            self.store.mark_dirty(reviewers)  # a review published or withdrawn changes its author's points
        self.plan(report, everyone=full, dry_run=dry_run, progress=progress)
        self.resolve_identities(report)
        if dry_run:
            # A dry run changed nothing, so the second plan sees everything the first did, plus the new matches:
            # keep only its answer, or each action would be listed twice.
            report.plan.clear()
            report.actions_planned = 0
        self.plan(report, everyone=full and dry_run, dry_run=dry_run, progress=progress)
        if not dry_run:
            self.deliver(report, started, progress=progress)
        for name, community in self.communities.items():
            stats, start = community.stats(), before[name]
            report.requests[name] = {
                "requests": stats.requests - start.requests,
                "writes": stats.writes - start.writes,
                "rate_limited": stats.rate_limited - start.rate_limited,
                "retries": stats.retries - start.retries,
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
        return report

    # ---- pull ----------------------------------------------------------------------------------------------------

    def pull_orders(self, report: PassReport, ids: Sequence[str]) -> None:
        fetch = getattr(self.shop, "orders_by_id", None)
        if fetch is None or not ids:
            return
        page = fetch(list(ids))
        result = self.store.save_orders_page(ORDERS_STREAM, page.orders, page.quarantined, None)
        report.orders_read += len(page.orders)
        report.orders_changed += result.inserted + result.updated
        while keys := self.store.customers_without_profile(limit=100):
            found, missing = self.shop.customer_profiles(keys)
            self.store.save_customer_profiles(found)
            self.store.mark_profiles_missing(missing)

    def pull(self, report: PassReport, *, full: bool, since: datetime | None, progress: Progress) -> None:
        cursor = None if full else self.store.get_cursor(ORDERS_STREAM)
        for page in read_ahead(self.shop.order_pages(cursor, since=since)):
            if self.stop_requested.is_set():
                return
            result = self.store.save_orders_page(ORDERS_STREAM, page.orders, page.quarantined, page.cursor)
            report.orders_read += len(page.orders) + len(page.quarantined)
            report.orders_changed += result.inserted + result.updated
            report.quarantined += len(page.quarantined)
            for record in page.quarantined:
                log.warning(
                    "record quarantined", stream=record.stream, record_id=record.record_id, reason=record.reason
                )
            progress("pull", report.orders_read, None)
        if full:
            for customer_page in self.shop.customer_pages():
                self.store.save_customer_profiles(customer_page.customers)
        while keys := self.store.customers_without_profile(limit=100):
            found, missing = self.shop.customer_profiles(keys)
            self.store.save_customer_profiles(found)
            self.store.mark_profiles_missing(missing)

    # ---- plan ----------------------------------------------------------------------------------------------------

    def plan(self, report: PassReport, *, everyone: bool, dry_run: bool, progress: Progress) -> None:
        keys = self.store.dirty_customer_keys(all_customers=everyone)
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            new: list[NewAction] = []
            supersede: list[int] = []
            need_identity: list[tuple[str, str]] = []
            still_dirty: list[str] = []
            linked: dict[str, tuple[int, int, str | None]] = {}
            for customer in self.store.plan_inputs(chunk):
                points, waiting, total = self.content.plan_points(customer.key, customer.identities, dry_run)
                new.extend(points)
                need_identity.extend(waiting)
                wanted = desired_grants(self.config.rules, customer.paid_orders)
                self._add_tiers(wanted, total)
                if self.linked.enabled and self.linked.community:
                    identity = customer.identities.get(self.linked.community)
                    linked[customer.key] = (
                        len(customer.paid_orders),
                        total,
                        identity.remote_user_id if identity and identity.status == "matched" else None,
                    )
                for name in self.communities:
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
                        still_dirty.append(customer.key)
                    decision = decide(desired, applied, open_actions)
                    supersede.extend(decision.supersede)
                    for key, op in decision.new:
                        who = username if op == "grant" else (ledger[key].remote_username if key in ledger else None)
                        if who is None:
                            need_identity.append((name, customer.key))
                            continue
                        new.append(NewAction(name, customer.key, key, op, who))
                        if dry_run:  # only a dry run prints the plan; a real pass keeps no list of it
                            report.plan.append(
                                PlannedAction(name, customer.key, customer.email, key.kind, key.target, op)
                            )
            new.extend(self.linked.plan(chunk, linked))
            report.customers_planned += len(chunk)
            report.actions_planned += len(new)
            if not dry_run:
                self.store.apply_plan(chunk, new, supersede, sorted(set(need_identity)), still_dirty)
            elif need_identity:
                self.store.apply_plan([], [], [], sorted(set(need_identity)))
            progress("plan", min(start + CHUNK, len(keys)), len(keys))

    def _add_tiers(self, wanted: dict[str, set[GrantKey]], total: int) -> None:
        """Points tiers are roles like any other grant: held while the total reaches the tier, revoked below it."""
        for community, target in self.config.points.communities.items() if self.config.points else ():
            role = tier_role(total, target.tier_roles()) if target.mode == "tiers" else None
            if role is not None:
                wanted.setdefault(community, set()).add(GrantKey("role", role))

    # ---- identities ----------------------------------------------------------------------------------------------

    def resolve_identities(self, report: PassReport) -> None:
        now = utcnow()
        for name, community in self.communities.items():
            due = self.store.identities_due(name, now)
            if not due:
                continue
            emails = {key: email for key, email in due if email}
            try:
                matches = community.match_users(emails)
            except (RemoteError, httpx.HTTPError) as error:
                report.errors.append(f"{name}: identity look-up failed: {error}")
                log.error("identity look-up failed", community=name, error=str(error))
                continue
            unmatched = [key for key, _ in due if key not in matches]
            retry = timedelta(seconds=self.config.communities[name].unmatched_retry_seconds)
            self.store.record_matches(name, {k: (m.user_id, m.username) for k, m in matches.items()}, unmatched, retry)
            report.matched += len(matches)
            report.unmatched += len(unmatched)
            log.info("identities resolved", community=name, matched=len(matches), unmatched=len(unmatched))

    # ---- reconcile -----------------------------------------------------------------------------------------------

    def reconcile(self, report: PassReport) -> list[str]:
        """Read who really holds each badge and group; a grant removed by hand is recorded per ``[policy]``.

        Returns one line per drift found (also logged), so the operator sees every manual removal.
        """
        found: list[str] = []
        respect = self.config.policy.respect_manual_removal
        for name, community in self.communities.items():
            holders_of = getattr(community, "holders", None)
            who_holds = getattr(community, "who_holds", None)
            if holders_of is None and who_holds is None:
                continue
            try:
                granted = self.store.granted(name)
                # A community that cannot list holders (Discord) is asked about the members CardBridge granted to.
                answers = who_holds({t: [user for _, user in rows] for t, rows in granted.items()}) if who_holds else {}
                for (kind, target), rows in granted.items():
                    if who_holds is not None:
                        if (kind, target) not in answers:
                            continue  # the community cannot tell: no drift claimed
                        holders, absent = answers[(kind, target)]
                    else:
                        holders, absent = holders_of(kind, target), set()
                    left = [(key, user) for key, user in rows if user in absent]
                    if left:
                        # Not a moderator's doing: the member left. Forget the grant, so it is made again (and waits
                        # until they are back).
                        self.store.set_ledger_state(name, [(key, kind, target) for key, _ in left], "revoked")
                        self.store.mark_dirty([key for key, _ in left])
                        report.members_left += len(left)
                        for key, user in left:
                            found.append(f"{name}: {user} left; {kind} {target!r} is granted again when they return")
                    missing = [(key, user) for key, user in rows if user.lower() not in holders and user not in absent]
                    if not missing:
                        continue
                    self.store.set_ledger_state(
                        name, [(key, kind, target) for key, _ in missing], "override" if respect else "revoked"
                    )
                    for key, user in missing:
                        line = f"{name}: {kind} {target!r} was removed from {user} by hand; " + (
                            "recorded as an override, not granted again" if respect else "granting it again"
                        )
                        found.append(line)
                        log.warning(
                            "manual removal",
                            community=name,
                            kind=kind,
                            target=target,
                            user=user,
                            policy="respect" if respect else "re-grant",
                        )
            except (RemoteError, httpx.HTTPError) as error:
                report.errors.append(f"{name}: reconcile failed: {error}")
        return found

    # ---- deliver -------------------------------------------------------------------------------------------------

    def deliver(self, report: PassReport, pass_started: datetime, progress: Progress = _quiet) -> None:
        for name, community in self.communities.items():
            try:
                self._recover(name, community, report)
                total = self.store.outbox_counts()["pending"]
                done = 0
                while rows := self.store.due(name, utcnow(), limit=GROUP_BATCH, not_since=pass_started):
                    for batch in _batches(rows):
                        if self.stop_requested.is_set():
                            return  # the action in flight has finished; the rest waits in the outbox
                        claimed = self.store.claim(batch)
                        if claimed:
                            self._send(name, community, claimed, report)
                        done += len(batch)
                        progress("deliver", done, max(total, done))
            except CommunityStopped as error:
                report.errors.append(str(error))
                log.error("community stopped", community=name, reason=str(error))
            except (RemoteError, httpx.HTTPError) as error:
                report.errors.append(f"{name}: {error}")
                log.error("delivery failed", community=name, error=str(error))

    def _actions(self, rows: Sequence[OutboxRow]) -> list[Action]:
        return [
            Action(
                id=row.id or 0,
                kind=row.kind,
                target=row.target,
                op=row.op,
                username=row.remote_username or "",
                remote_ref=self.store.ledger_ref(row.community, row.customer_key, row.kind, row.target)
                if row.op == "revoke"
                else None,
                payload=self._payload(row),
            )
            for row in rows
        ]

    def _payload(self, row: OutboxRow) -> dict[str, object]:
        if row.kind in GRANT_KINDS:
            return {}
        if row.kind == ROLE_CONNECTION:
            return self.linked.payload(row)
        return self.content.payload(row)

    def _send(self, name: str, community: CommunityAdapter, rows: Sequence[OutboxRow], report: PassReport) -> None:
        try:
            outcomes = {o.action_id: o for o in community.apply(self._actions(rows))}
        except CommunityStopped:
            # Not these actions' fault (a bad key, a forum that is down): they go back to pending, no attempt counted,
            # so an outage never parks good actions as dead.
            self.store.release(rows)
            raise
        succeeded = [row for row in rows if outcomes.get(row.id or 0) and outcomes[row.id or 0].ok]
        self.store.complete(succeeded, {row.id or 0: outcomes[row.id or 0].ref for row in succeeded})
        self.content.record(succeeded, outcomes, report)
        self.linked.record(rows, outcomes)
        report.delivered += len(succeeded)
        for row in rows:
            outcome = outcomes.get(row.id or 0)
            if outcome is not None and outcome.wait:
                self.store.release([row])
                report.waiting += 1
            elif outcome is None or not outcome.ok:
                reason = outcome.error if outcome and outcome.error else "no outcome reported"
                self._failed([row], reason, report, permanent=bool(outcome and outcome.permanent))

    def _failed(self, rows: Sequence[OutboxRow], reason: str, report: PassReport, permanent: bool = False) -> None:
        attempts = 1 if permanent else self.config.delivery.max_attempts
        died = self.store.fail(rows, reason, attempts, self.config.delivery.retry_base_seconds)
        report.failed += len(rows) - died
        report.died += died
        for row in rows:
            report.failures.append(
                f"{row.community}: {row.op} {row.kind} {row.target!r} for {row.remote_username}: {reason}"
            )
            log.warning(
                "action failed", community=row.community, op=row.op, kind=row.kind, target=row.target, reason=reason
            )

    def _recover(self, name: str, community: CommunityAdapter, report: PassReport) -> None:
        """Rows a crashed process left in ``sending``: verified against the forum before anything is re-sent."""
        orphans = self.store.orphaned(name)
        if not orphans:
            return
        resend: list[OutboxRow] = []
        for row, action in zip(orphans, self._actions(orphans)):
            outcome = community.verify(action)
            if outcome is not None and outcome.ok:
                self.store.complete([row], {row.id or 0: outcome.ref})
                self.content.record([row], {row.id or 0: outcome}, report)
                self.linked.record([row], {row.id or 0: outcome})
                report.recovered += 1
                log.info(
                    "interrupted action found applied", community=name, op=row.op, kind=row.kind, target=row.target
                )
            else:
                resend.append(row)
        for batch in _batches(resend):
            self._send(name, community, batch, report)


def _batches(rows: Sequence[OutboxRow]) -> list[list[OutboxRow]]:
    """Group rows the community can apply in one call (same kind, target and op), keeping badge grants single."""
    batches: dict[tuple[str, str, str], list[OutboxRow]] = {}
    singles: list[list[OutboxRow]] = []
    for row in rows:
        if row.kind == "group":
            batches.setdefault((row.kind, row.target, row.op), []).append(row)
        else:
            singles.append([row])
    return singles + list(batches.values())


class _StoreCache:
    """Remote object ids (badge/group ids) remembered in the state store, per community."""

    def __init__(self, store: StateStore, community: str) -> None:
        self.store, self.community = store, community

    def get(self, kind: str, name: str) -> str | None:
        return self.store.remote_id(self.community, kind, name)

    def set(self, kind: str, name: str, remote_id: str | None) -> None:
        self.store.set_remote_id(self.community, kind, name, remote_id)


def describe_customer(key: str, email: str | None) -> str:
    """How the CLI names a customer: the shop id, or a masked email for guests."""
    if key.startswith("c:"):
        return f"customer #{key[2:]}"
    return mask_email(email or key[2:])
