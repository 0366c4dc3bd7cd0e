"""The worker that handles stored webhook events the moment they are stored (and, after a restart, those left).

Orders named by the shop are re-read and delivered in one pass; a forum account created for a waiting buyer is
matched at once; an edit or deletion of a post CardBridge wrote becomes a conflict. An event is marked done only
once handled: when the shop cannot be read, the events stay stored and are tried again ``retry_every`` later (an
event answered 200 is never dropped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from adapters.base import PostReader
from adapters.webhooks import WebhookFormat
from connector.core.logs import log
from connector.flow import Connector
from connector.server.jobs import Jobs
from connector.state.tables import WebhookEventRow
from mappings.reviews import content_hash


class EventWorker:
    def __init__(
        self,
        connector: Connector,
        jobs: Jobs,
        formats: Mapping[str, WebhookFormat],
        clock: Callable[[], datetime],
    ) -> None:
        self.connector = connector
        self.jobs = jobs
        #: source → format of the webhooks this daemon receives (how a stored event's topic reads).
        self.formats = formats
        self.clock = clock
        self.webhooks = connector.store.webhooks
        self.reviews = connector.store.reviews
        self.wake = threading.Event()
        #: Set by the link page when a member linked: the worker runs a pass so their roles come at once.
        self.linked = threading.Event()
        self._retry_at: datetime | None = None
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

    def _work(self) -> None:
        stopping = self.jobs.stopping
        while not stopping.is_set():
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            if stopping.is_set():
                return
            try:
                self.process_events()
                if self.linked.is_set():
                    self.linked.clear()
                    self.jobs.linked()
            except Exception:
                log.exception("webhook processing failed")

    def _kind(self, event: WebhookEventRow) -> str | None:
        found = self.formats.get(event.source)
        return found.kind_of(event.topic) if found is not None else None

    def process_events(self) -> None:
        if self._retry_at and self.clock() < self._retry_at:
            return
        self._retry_at = None
        events = self.webhooks.pending()
        if not events:
            return
        kinds = {event.id: self._kind(event) for event in events}
        orders = [e for e in events if kinds[e.id] == "order"]
        signups = [e for e in events if kinds[e.id] == "user"]
        posts = [e for e in events if kinds[e.id] == "post"]
        others = [e for e in events if kinds[e.id] is None]
        if signups:
            self.connector.store.identities.retry_identities_now([e.resource for e in signups if e.resource])
        for event in posts:
            self._post_event(event)
        result = "processed"
        if orders or signups:
            report = self.jobs.orders(sorted({e.resource for e in orders if e.resource}))
            if report is None or any(line.startswith("shop:") for line in report.errors):
                # Stopping, or the shop could not be read: the events stay stored for the next try.
                self._retry_at = self.clock() + timedelta(seconds=self.connector.config.schedule.retry_every)
                return
            result = "processed" if report.ok else "processed with problems"
        self.webhooks.done([e.id for e in orders + signups + posts if e.id], result)
        if others:
            self.webhooks.done([e.id for e in others if e.id], "ignored")

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
