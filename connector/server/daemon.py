"""``cardbridge run``: the scheduled daemon with its HTTP server (webhooks, health, metrics, status page).

One process, three kinds of work, one pass at a time (a lock): APScheduler jobs (sync, reconcile, outbox retry;
``max_instances=1``, ``coalesce=True``), and a worker that handles webhook events the moment they are stored. Outbox
rows are claimed with a conditional UPDATE, so a ``backfill`` run beside the daemon never sends an action twice.

SIGTERM/SIGINT: uvicorn stops taking requests, the pass in flight stops after its current remote call, the process
exits 0. A webhook answered 200 was stored first, so the next start processes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from connector.core.clock import parse_iso, utcnow
from connector.core.logs import log
from connector.flow.pass_ import Connector, PassReport
from connector.server.status_page import render_status_page
from connector.state.reviews import ReviewStore
from connector.state.webhooks import WebhookStore
from mappings.reviews import content_hash


class Metrics:
    """``cardbridge_*`` counters and gauges in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records = Counter("cardbridge_records_pulled", "Shop records read", registry=r)
        self.actions = Counter("cardbridge_actions", "Outbox actions settled by a pass", ["status"], registry=r)
        self.rate_limited = Counter("cardbridge_rate_limited", "429 answers from communities", registry=r)
        self.retries = Counter("cardbridge_retries", "Retried remote requests", registry=r)
        self.webhooks = Counter("cardbridge_webhook_events", "Webhook deliveries", ["source", "result"], registry=r)
        self.passes = Counter("cardbridge_passes", "Passes run", ["job", "result"], registry=r)
        self.lag = Gauge(
            "cardbridge_lag_seconds", "Seconds since a stream was last read successfully", ["stream"], registry=r
        )
        self.outbox = Gauge("cardbridge_outbox", "Outbox rows by status", ["status"], registry=r)


def wc_signature(secret: str, body: bytes) -> str:
    """``X-WC-Webhook-Signature``: base64 of HMAC-SHA256 over the raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def sellix_signature(secret: str, body: bytes) -> str:
    """``X-Sellix-Signature``: hex HMAC-SHA512 over the raw body."""
    return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()


def discourse_signature(secret: str, body: bytes) -> str:
    """``X-Discourse-Event-Signature``: ``sha256=`` + hex HMAC-SHA256 over the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Daemon:
    def __init__(self, connector: Connector, clock: Callable[[], datetime] = utcnow) -> None:
        self.connector = connector
        self.config = connector.config
        self.clock = clock
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.metrics = Metrics()
        self.webhooks = WebhookStore(connector.store.engine)
        self.reviews = ReviewStore(connector.store.engine)
        self.failing_since: dict[str, datetime] = {}
        self.last_success: dict[str, datetime] = {}
        self.drift: list[str] = []
        self.last_pass: datetime | None = None
        self._events_retry_at: datetime | None = None
        self.scheduler = BackgroundScheduler(
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": self.config.schedule.misfire_grace_seconds,
            },
            timezone="UTC",
        )
        self._worker = threading.Thread(target=self._work, name="webhook-worker", daemon=True)
        #: Set by the link page when a member linked: the worker runs a pass so their roles come at once.
        self.linked = threading.Event()

    # ---- jobs ----------------------------------------------------------------------------------------------------

    def _run(self, job: str, work: Callable[[], PassReport]) -> PassReport | None:
        if self.stopping.is_set():
            return None
        with self.lock:  # one pass at a time, whatever started it
            try:
                report = work()
            except Exception as error:
                log.exception("job failed", job=job)
                self.metrics.passes.labels(job, "error").inc()
                report = PassReport(errors=[f"{job}: {type(error).__name__}: {error}"])
            self._observe(job, report)
            return report

    def sync(self) -> PassReport | None:
        return self._run("sync", self.connector.run_pass)

    def reconcile(self) -> PassReport | None:
        def work() -> PassReport:
            report = PassReport()
            self.drift = self.connector.reconcile(report)
            after = self.connector.run_pass()
            after.errors[:0] = report.errors
            return after

        return self._run("reconcile", work)

    def retry(self) -> PassReport | None:
        def work() -> PassReport:
            report = PassReport()
            self.connector.deliver(report, utcnow())
            return report

        return self._run("retry", work)

    def _observe(self, job: str, report: PassReport) -> None:
        now = self.clock()
        self.last_pass = now
        m = self.metrics
        m.records.inc(report.orders_read)
        m.actions.labels("done").inc(report.delivered)
        m.actions.labels("failed").inc(report.failed)
        m.actions.labels("dead").inc(report.died)
        for counts in report.requests.values():
            m.rate_limited.inc(counts["rate_limited"])
            m.retries.inc(counts["retries"])
        m.passes.labels(job, "ok" if report.ok else "problems").inc()
        for name in self.connector.communities:
            failing = any(line.startswith(f"{name}:") for line in report.errors) or any(
                line.startswith(f"{name}:") for line in report.failures
            )
            if failing:
                self.failing_since.setdefault(name, now)
            else:
                self.failing_since.pop(name, None)
        if not any(line.startswith("shop:") for line in report.errors) and job in ("sync", "reconcile"):
            self.last_success["orders"] = now
        for status, count in self.connector.store.outbox_counts().items():
            m.outbox.labels(status).set(count)

    # ---- webhook events ------------------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(timeout=1.0)
            self.wake.clear()
            if self.stopping.is_set():
                return
            try:
                self.process_events()
                if self.linked.is_set():
                    self.linked.clear()
                    # No shop read: the member's customer is marked for planning; plan and deliver now.
                    self._run("link", lambda: self.connector.run_pass(order_ids=[]))
            except Exception:
                log.exception("webhook processing failed")

    def process_events(self) -> None:
        if self._events_retry_at and self.clock() < self._events_retry_at:
            return
        self._events_retry_at = None
        events = self.webhooks.pending()
        if not events:
            return
        orders = [e for e in events if e.source in ("woocommerce", "sellix")]
        signups = [e for e in events if e.source == "discourse" and e.topic == "user_created"]
        posts = [e for e in events if e.source == "discourse" and e.topic in ("post_edited", "post_destroyed")]
        others = [e for e in events if e not in orders and e not in signups and e not in posts]
        if signups:
            due = [e.resource for e in signups if e.resource]
            self.connector.store.retry_identities_now(due)
        for event in posts:
            self._post_event(event)
        order_ids = sorted({e.resource for e in orders if e.resource})
        result = "processed"
        if orders or signups:
            report = self._run("webhook", lambda: self.connector.run_pass(order_ids=order_ids))
            if report is None or any(line.startswith("shop:") for line in report.errors):
                # Stopping, or the shop could not be read: the events stay stored and are handled on the next try
                # (an event answered 200 is never dropped).
                self._events_retry_at = self.clock() + timedelta(seconds=self.config.schedule.retry_every)
                return
            result = "processed" if report.ok else "processed with problems"
        self.webhooks.done([e.id for e in orders + signups + posts if e.id], result)
        if others:
            self.webhooks.done([e.id for e in others if e.id], "ignored")

    def _post_event(self, event: Any) -> None:
        """A moderator's edit or deletion of a connector post becomes a conflict.

        The post is read back from the forum (the webhook only names it): our own edits match the hash we wrote.
        """
        for name, community in self.connector.communities.items():
            row = self.reviews.post_by_id(name, event.resource)
            client = getattr(community, "client", None)
            if row is None or row.state != "posted" or client is None:
                continue
            post = client.post(int(event.resource))
            if post is None or post.get("deleted_at"):
                self.reviews.add_conflict(name, "review", row.review_id, "the post was deleted on the forum")
            elif content_hash(post.get("raw") or "") != row.content_hash:
                editor = post.get("last_editor_username") or "someone"
                self.reviews.add_conflict(
                    name, "review", row.review_id, f"the post was edited on the forum by {editor}"
                )

    # ---- HTTP ----------------------------------------------------------------------------------------------------

    def _refuse(self, source: str, result: str, status: int, message: str) -> Response:
        self.metrics.webhooks.labels(source, result).inc()
        return JSONResponse({"error": message}, status_code=status)

    async def _body(self, request: Request, source: str) -> bytes | Response:
        limit = self.config.server.max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return self._refuse(source, "too_large", 400, f"body larger than {limit} bytes")
        body = await request.body()
        if len(body) > limit:
            return self._refuse(source, "too_large", 400, f"body larger than {limit} bytes")
        return body

    def _signed(
        self, source: str, secret: str, signature: str | None, expected: Callable[[str], str]
    ) -> Response | None:
        """None when the signature is the HMAC the secret gives (compared in constant time); else the 401."""
        if not secret or signature is None or not hmac.compare_digest(signature, expected(secret)):
            return self._refuse(source, "bad_signature", 401, "invalid signature")
        return None

    async def _accept(self, source: str, delivery: str, topic: str, resource: str) -> Response:
        """Store the event (before answering 200), wake the worker; a delivery id seen before is a duplicate."""
        accepted = await run_in_threadpool(self.webhooks.accept, source, delivery, topic, resource)
        self.metrics.webhooks.labels(source, "accepted" if accepted else "duplicate").inc()
        if accepted:
            self.wake.set()
        return JSONResponse({"ok": "accepted" if accepted else "duplicate"})

    async def woocommerce_webhook(self, request: Request) -> Response:
        body = await self._body(request, "woocommerce")
        if isinstance(body, Response):
            return body
        signature = request.headers.get("x-wc-webhook-signature")
        if signature is None and body.startswith(b"webhook_id="):
            # WooCommerce pings a new webhook's URL with an unsigned `webhook_id=N` form body.
            self.metrics.webhooks.labels("woocommerce", "ping").inc()
            return JSONResponse({"ok": "ping"})
        refused = self._signed(
            "woocommerce",
            self.config.server.woocommerce_webhook_secret,
            signature,
            lambda secret: wc_signature(secret, body),
        )
        if refused is not None:
            return refused
        try:
            order_id = int(json.loads(body)["id"])
        except (ValueError, KeyError, TypeError):
            return self._refuse("woocommerce", "malformed", 400, "expected a JSON object with an integer id")
        topic = request.headers.get("x-wc-webhook-topic", "order.updated")
        if not topic.startswith("order."):
            self.metrics.webhooks.labels("woocommerce", "ignored").inc()
            return JSONResponse({"ok": "ignored", "topic": topic})
        delivery = request.headers.get("x-wc-webhook-delivery-id") or hashlib.sha256(body).hexdigest()
        return await self._accept("woocommerce", delivery, topic, str(order_id))

    async def sellix_webhook(self, request: Request) -> Response:
        body = await self._body(request, "sellix")
        if isinstance(body, Response):
            return body
        refused = self._signed(
            "sellix",
            self.config.server.sellix_webhook_secret,
            request.headers.get("x-sellix-signature"),
            lambda secret: sellix_signature(secret, body),
        )
        if refused is not None:
            return refused
        try:
            payload = json.loads(body)
            uniqid = str(payload["data"]["uniqid"])
        except (ValueError, KeyError, TypeError):
            return self._refuse("sellix", "malformed", 400, 'expected {"event": …, "data": {"uniqid": …}}')
        event = str(request.headers.get("x-sellix-event") or payload.get("event") or "")
        if not event.startswith("order:"):
            self.metrics.webhooks.labels("sellix", "ignored").inc()
            return JSONResponse({"ok": "ignored", "event": event})
        # Sellix sends no delivery id: the same body twice is the same delivery.
        return await self._accept("sellix", hashlib.sha256(body).hexdigest(), event, uniqid)

    async def discourse_webhook(self, request: Request) -> Response:
        body = await self._body(request, "discourse")
        if isinstance(body, Response):
            return body
        refused = self._signed(
            "discourse",
            self.config.server.discourse_webhook_secret,
            request.headers.get("x-discourse-event-signature"),
            lambda secret: discourse_signature(secret, body),
        )
        if refused is not None:
            return refused
        event = request.headers.get("x-discourse-event", "")
        try:
            payload = json.loads(body)
        except ValueError:
            return self._refuse("discourse", "malformed", 400, "expected JSON")
        if event == "ping" or not isinstance(payload, dict):
            return JSONResponse({"ok": "ping"})
        if event == "user_created":
            resource = str((payload.get("user") or {}).get("email") or "").strip().lower()
        elif event in ("post_edited", "post_destroyed"):
            resource = str((payload.get("post") or {}).get("id") or "")
        else:
            self.metrics.webhooks.labels("discourse", "ignored").inc()
            return JSONResponse({"ok": "ignored", "event": event})
        delivery = request.headers.get("x-discourse-event-id") or hashlib.sha256(body).hexdigest()
        return await self._accept("discourse", delivery, event, resource)

    def health(self) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        streams = {}
        for stream, cursor in self.connector.store.cursors().items():
            seen = self.last_success.get(stream) or parse_iso(cursor["updated_at"])
            streams[stream] = {"cursor": cursor["value"], "lag_seconds": round((now - seen).total_seconds(), 1)}
            self.metrics.lag.labels(stream).set(streams[stream]["lag_seconds"])
        limit = timedelta(seconds=self.config.server.unhealthy_after_seconds)
        failing = {name: since.isoformat() for name, since in self.failing_since.items()}
        unhealthy = [name for name, since in self.failing_since.items() if now - since > limit]
        body = {
            "status": "failing" if unhealthy else "ok",
            "last_pass": self.last_pass.isoformat() if self.last_pass else None,
            "streams": streams,
            "failing_since": failing,
        }
        return (503 if unhealthy else 200), body

    async def healthz(self, request: Request) -> Response:
        status, body = await run_in_threadpool(self.health)
        return JSONResponse(body, status_code=status)

    async def metrics_endpoint(self, request: Request) -> Response:
        await run_in_threadpool(self.health)  # refreshes the lag gauges
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def status_page(self, request: Request) -> Response:
        html = await run_in_threadpool(render_status_page, self)
        return HTMLResponse(html)

    def _member_linked(self) -> None:
        self.linked.set()
        self.wake.set()

    def app(self) -> Starlette:
        link_routes: list[Any] = []
        if self.config.link is not None:
            from connector.server.link_page import LinkPages
            from connector.server.linking import LinkService

            service = LinkService(
                self.config, self.connector.store, self.connector.communities[self.config.link.community]
            )
            link_routes = LinkPages(service, self._member_linked).routes()
        return Starlette(
            routes=[
                *link_routes,
                Route("/webhooks/woocommerce", self.woocommerce_webhook, methods=["POST"]),
                Route("/webhooks/discourse", self.discourse_webhook, methods=["POST"]),
                Route("/webhooks/sellix", self.sellix_webhook, methods=["POST"]),
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route("/", self.status_page, methods=["GET"]),
            ]
        )

    # ---- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> None:
        schedule = self.config.schedule
        now = datetime.now().astimezone()
        self.scheduler.add_job(self.sync, "interval", seconds=schedule.sync_every, id="sync", next_run_time=now)
        self.scheduler.add_job(self.reconcile, "interval", seconds=schedule.reconcile_every, id="reconcile")
        self.scheduler.add_job(self.retry, "interval", seconds=schedule.retry_every, id="retry")
        self.scheduler.start()
        self._worker.start()
        self.wake.set()  # events stored before a restart are processed now

    def stop(self) -> None:
        self.stopping.set()
        self.connector.stop_requested.set()
        self.wake.set()
        self.scheduler.shutdown(wait=True)
        self._worker.join(timeout=60)


def serve(connector: Connector) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    daemon = Daemon(connector)
    server_config = connector.config.server
    server = uvicorn.Server(
        uvicorn.Config(
            daemon.app(),
            host=server_config.host,
            port=server_config.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    # uvicorn re-raises the signal it caught once it has shut down; with these handlers in place that re-raise is
    # harmless, the daemon finishes the action in flight, and the process exits 0 as a service manager expects.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: daemon.connector.stop_requested.set())
    daemon.start()
    log.warning("cardbridge running", listen=server_config.listen)
    try:
        server.run()  # handles SIGTERM/SIGINT: stops accepting, finishes requests in flight
    finally:
        daemon.stop()
        log.warning("cardbridge stopped")
