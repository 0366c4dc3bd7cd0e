"""The worker that handles stored webhook events the moment they are stored (and, after a restart, those left).

Orders named by the shop are re-read and delivered in one pass; a forum account created for a waiting buyer is
matched at once; an edit or deletion of a post CardBridge wrote becomes a conflict.

Any replica may have stored an event; whichever is free claims it (:meth:`~connector.state.webhooks.WebhookStore.claim`),
so several daemons on one store never work the same event at once. Each event is handled on its own; one that fails
never holds the others. A post event is tried alone. Order and
user events tried for the first time share one pass; an event whose try failed is tried again alone, after a
backoff (``[server] webhook_retry_seconds``, doubling per try, at most an hour), and after
``webhook_max_attempts`` tries it is parked as dead (listed on the status page; the order is still read by the
scheduled sync, which reconciles rather than replays). When the shop could not be read, no order event is tried
before ``[schedule] retry_every`` (the shop may be down for everyone). Handled events are pruned after
``webhook_retention_days``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from adapters.base import PostReader
from adapters.webhooks import WebhookFormat
from connector.core.logs import log, mask_email
from connector.flow import Connector, PassReport
from connector.server.jobs import Jobs
from connector.state.replicas import this_replica
from connector.state.tables import WebhookEventRow
from mappings.reviews import content_hash

#: The longest wait between two tries of an event, whatever its count.
MAX_BACKOFF = timedelta(hours=1)
#: Events retried alone per round (each is a pass); the rest wait for the next round, a second later.
SOLO_PER_ROUND = 10
#: How often handled events past their retention are deleted.
PRUNE_EVERY = timedelta(hours=1)


class EventWorker:
    def __init__(
        self,
        connector: Connector,
        jobs: Jobs,
        formats: Mapping[str, WebhookFormat],
        clock: Callable[[], datetime],
        owner: str | None = None,
    ) -> None:
        self.connector = connector
        #: This replica's name on the events it claims (``host:pid:start``).
        self.owner = owner or this_replica()
        #: A claim lasts this long unless the replica's heartbeat moves it (it beats four times as often).
        self.hold = timedelta(seconds=connector.config.server.lease_seconds)
        self.jobs = jobs
        #: source → format of the webhooks this daemon receives (how a stored event's topic reads).
        self.formats = formats
        self.clock = clock
        self.webhooks = connector.store.webhooks
        self.reviews = connector.store.reviews
        server = connector.config.server
        self.max_attempts = server.webhook_max_attempts
        self.retry_base = timedelta(seconds=server.webhook_retry_seconds)
        self.retention = timedelta(days=server.webhook_retention_days)
        self.wake = threading.Event()
        #: Set by the link page when a member linked: the worker runs a pass so their roles come at once.
        self.linked = threading.Event()
        #: Set when a member's redemption waits for its coupon: the worker works the redemptions at once.
        self.redeem = threading.Event()
        self._pruned_at: datetime | None = None
        #: The shop could not be read: no order event is tried before this.
        self._shop_down_until: datetime | None = None
        self._thread = threading.Thread(target=self._work, name="webhook-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.wake.set()  # events stored before a restart are processed now

    def join(self) -> None:
        """After :meth:`Jobs.stop` and a wake-up: the worker sees the stop signal and returns."""
        self._thread.join(timeout=60)

    def member_linked(self) -> None:
        self.linked.set()
        self.wake.set()

    def redeem_now(self) -> None:
        self.redeem.set()
        self.wake.set()

    def _work(self) -> None:
        stopping = self.jobs.stopping
        while not stopping.is_set():
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            if stopping.is_set():
                return
            try:
                self.prune()
                self.process_events()
                if self.linked.is_set():
                    self.linked.clear()
                    self.jobs.linked()
                if self.redeem.is_set():
                    self.redeem.clear()
                    self.jobs.redeem()
            except Exception:
                # The store itself failed (each event's own failures are caught below): said once a round at most.
                log.exception("webhook processing failed")

    def _kind(self, event: WebhookEventRow) -> str | None:
        found = self.formats.get(event.source)
        return found.kind_of(event.topic) if found is not None else None

    def prune(self) -> None:
        """Delete events handled longer ago than the retention period (once an hour)."""
        now = self.clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        deleted = self.webhooks.prune(now - self.retention)
        if deleted:
            log.info("webhook events pruned", deleted=deleted)

    def process_events(self) -> None:
        """Claim the due events no other replica works on, and work them; what is left unsettled (stopping, the pass
        lock not had, the shop down) is given back, due for whichever replica asks next."""
        events = self.webhooks.claim(self.owner, self.clock(), self.hold)
        if not events:
            return
        try:
            self._process(events)
        finally:
            self.webhooks.release([event.id or 0 for event in events], self.owner)

    def _process(self, events: list[WebhookEventRow]) -> None:
        now = self.clock()
        kinds = {event.id: self._kind(event) for event in events}
        self.webhooks.done([e.id for e in events if kinds[e.id] is None and e.id], "ignored")
        for event in events:
            if kinds[event.id] == "post" and not self.jobs.stopping.is_set():
                self._one_post(event)
        messages = [e for e in events if kinds[e.id] == "message"]
        for event in messages:
            if not self.jobs.stopping.is_set():
                self._one_message(event)
        if messages:
            self.jobs.redeem()
        if self._shop_down_until is not None and now < self._shop_down_until:
            return
        self._shop_down_until = None
        shop = [e for e in events if kinds[e.id] in ("order", "user")]
        fresh = [e for e in shop if e.attempts == 0]
        retried = [e for e in shop if e.attempts > 0][:SOLO_PER_ROUND]
        for group in ([fresh] if fresh else []) + [[e] for e in retried]:
            if self.jobs.stopping.is_set() or not self._shop_events(group, kinds):
                return  # stopping, or the shop could not be read: the rest wait

    def _one_post(self, event: WebhookEventRow) -> None:
        try:
            self._post_event(event)
        except Exception as error:
            self._failed(event, f"{type(error).__name__}: {error}", keep_resource=True)
        else:
            self.webhooks.done([event.id or 0], "processed")

    def _one_message(self, event: WebhookEventRow) -> None:
        """A member's private message to CardBridge: read back by id from the forum, stored as their request (once
        per message: polling may find it too); the redeem job then answers it."""
        desk = self.connector.desk
        try:
            for name, inbox in desk.inboxes.items():
                message = inbox.message(event.resource)
                if message is not None:
                    desk.take_message(name, message)
                    break
        except Exception as error:
            self._failed(event, f"{type(error).__name__}", keep_resource=True)
        else:
            self.webhooks.done([event.id or 0], "processed")

    def _shop_events(self, group: list[WebhookEventRow], kinds: Mapping[int | None, str | None]) -> bool:
        """One pass for the orders (and new forum users) these events name; each event settled by its outcome.

        False when the pass did not run (stopping) or could not read the shop.
        """
        emails = [e.resource for e in group if kinds[e.id] == "user" and e.resource]
        if emails:
            self.connector.store.identities.retry_identities_now(emails)
        report = self.jobs.orders(sorted({e.resource for e in group if kinds[e.id] == "order" and e.resource}))
        if report is None:
            return False  # stopping: the events stay stored for the next start
        shop_down = [line for line in report.errors if line.startswith("shop:")]
        crashed = [line for line in report.errors if line.startswith("webhook:")]
        if shop_down or crashed:
            # A first try together failed: each is tried alone next time, so one bad event holds none of the others.
            # The shop unreadable: no shop event is tried before retry_every (it may be down for everyone).
            wait = timedelta(0)
            if shop_down:
                wait = timedelta(seconds=self.connector.config.schedule.retry_every)
                self._shop_down_until = self.clock() + wait
            for event in group:
                self._failed(event, (crashed or shop_down)[0], keep_resource=kinds[event.id] != "user", wait=wait)
            return not shop_down
        self.webhooks.done([e.id or 0 for e in group], _result(report))
        return True

    def _failed(self, event: WebhookEventRow, error: str, keep_resource: bool, wait: timedelta = timedelta(0)) -> None:
        """A try failed: back off (at least ``wait``), or park the event as dead after its last try."""
        error = mask_email(error)
        attempts = event.attempts + 1
        fields = {"id": event.id, "source": event.source, "topic": event.topic, "attempts": attempts}
        if attempts >= self.max_attempts:
            self.webhooks.dead(event.id or 0, error, keep_resource)
            log.error("webhook event given up", error=error, **fields)
            return
        retry_at = self.clock() + max(wait, min(self.retry_base * 2 ** (attempts - 1), MAX_BACKOFF))
        self.webhooks.failed(event.id or 0, error, retry_at)
        log.warning("webhook event failed", error=error, retry_at=retry_at.isoformat(), **fields)

    def _post_event(self, event: WebhookEventRow) -> None:
        """A moderator's edit or deletion of a connector post becomes a conflict.

        The post is read back from the forum (the webhook only names it): our own edits match the hash we wrote.
        """
        for name, community in self.connector.communities.items():
            if not isinstance(community, PostReader):
                continue
            row = self.reviews.post_by_id(name, event.resource)
            if row is None or row.state != "posted":
                continue
            post = community.read_post(event.resource)
            if post is None or post.deleted:
                self.reviews.add_conflict(name, "review", row.review_id, "the post was deleted on the forum")
            elif content_hash(post.raw) != row.content_hash:
                editor = post.last_editor or "someone"
                self.reviews.add_conflict(
                    name, "review", row.review_id, f"the post was edited on the forum by {editor}"
                )


def _result(report: PassReport) -> str:
    return "processed" if report.ok else "processed with problems"
