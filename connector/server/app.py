"""The daemon's HTTP app: which routes it serves, and the read-only ones (health, metrics, the status page).

| route | module |
|---|---|
| ``POST /webhooks/<source>`` | :mod:`connector.server.webhooks`, one per configured webhook format |
| ``GET /healthz`` | :mod:`connector.server.health` |
| ``GET /metrics`` | :mod:`connector.server.metrics`, behind :mod:`connector.server.operator` |
| ``GET /`` | :mod:`connector.server.status_page`, fed a :class:`StatusView` built here, behind the same gate |
| ``/link`` … | :mod:`connector.server.link_page`, with ``[link]`` |
| ``POST /interactions/<community>`` | :mod:`connector.server.interactions`, with ``[redeem]`` on Discord |

With ``[server] operator_listen``, ``/`` and ``/metrics`` are served only on that listener
(:func:`create_operator_app`), and ``/healthz`` on both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.webhooks import WebhookFormat
from connector.core.logs import log, mask_email
from connector.flow import Connector
from connector.flow.insights import demand_report, heat_report
from connector.server.health import SHOP, Health, HealthReport
from connector.server.interactions import interaction_routes
from connector.server.leadership import Leadership
from connector.server.link_page import LinkPages
from connector.server.linking import LinkService
from connector.server.metrics import CONTENT_TYPE_LATEST, Metrics
from connector.server.operator import OperatorGate
from connector.server.status_page import Conflict, DeadEvent, Problem, StatusView, Stream, render_status_page
from connector.server.webhooks import webhook_routes
from connector.state.webhooks import WebhookStore


class ReadOnlyPages:
    """``/healthz``, ``/metrics`` and ``/``: what the operator and the monitoring read."""

    def __init__(
        self,
        connector: Connector,
        health: Health,
        metrics: Metrics,
        drift: Callable[[], Sequence[str]],
        clock: Callable[[], datetime],
        leadership: Leadership | None = None,
    ) -> None:
        self.store = connector.store
        #: ``[insights]`` and the communities the ``/insights`` page reads demand posts from.
        self.insights = connector.config.insights
        self.communities = connector.communities
        self.health = health
        #: This replica's place among the daemons on the store (None: a lone app, as in tests of the pages).
        self.leadership = leadership
        # The daemon's health facts outlive each pass (and a restart) in the store, for `cardbridge status`.
        health.attach(self.store.status.health)
        self.metrics = metrics
        self.drift = drift
        self.clock = clock

    def health_routes(self) -> list[Route]:
        """``/healthz``: on every listener, without a token (load balancers and monitors ask it)."""
        return [Route("/healthz", self.healthz, methods=["GET"])]

    def operator_routes(self, gate: OperatorGate) -> list[Route]:
        """``/metrics`` and ``/``, behind the operator token when one is set."""
        return [
            Route("/metrics", gate.guard(self.metrics_endpoint), methods=["GET"]),
            Route("/", gate.guard(self.status_page), methods=["GET"]),
            Route("/insights", gate.guard(self.insights_page), methods=["GET"]),
        ]

    def check(self) -> HealthReport:
        """The health answer; refreshes the lag and health gauges on the way."""
        if self.leadership is not None and not self.leadership.is_leader:
            self.health.refresh()
        report = self.health.check(self.store.records.cursors())
        self.metrics.lags(report.lags)
        self.metrics.health(report.level.value, report.verdict.failing, [SHOP, *self.health.communities])
        return report

    def refresh_gauges(self) -> None:
        """The lag and webhook backlog gauges, before ``/metrics`` answers."""
        self.check()
        self.metrics.webhook_backlog(self.store.webhooks.counts())
        self.metrics.points_figures(self.store.earnings.total(), self.store.redemptions.counts())
        if self.leadership is not None:
            self.metrics.replica(self.leadership.is_leader, len(self.store.replicas.live()))

    def status_view(self) -> StatusView:
        health = self.check()
        return StatusView(
            health=health.level.value,
            health_problems=health.problems,
            streams=[Stream(name, s["cursor"], s["lag_seconds"]) for name, s in health.body["streams"].items()],
            outbox=self.store.status.outbox_counts(),
            unmatched=self.store.status.unmatched_with_email(),
            waiting_for_lookup=self.store.status.waiting_for_lookup(),
            failing_since={name: since.isoformat() for name, since in health.verdict.failing.items()},
            conflicts=[
                Conflict(c.id or 0, c.community, f"{c.kind} #{c.target}", c.reason)
                for c in self.store.reviews.conflicts()
            ],
            drift=list(self.drift()),
            problems=[
                Problem(
                    p.id or 0,
                    p.status,
                    p.community,
                    f"{p.op} {p.kind} {p.target}",
                    str(p.remote_username),
                    p.attempts,
                    mask_email(p.last_error or ""),
                )
                for p in self.store.status.problem_actions(20)
            ],
            actions_per_hour=self.store.status.actions_per_hour(self.clock()),
            webhook_events=self.store.webhooks.counts(),
            redemptions=self.store.redemptions.counts(),
            dead_events=[
                DeadEvent(e.id or 0, e.source, e.topic, e.resource, e.attempts, mask_email(e.last_error or ""))
                for e in self.store.webhooks.dead_events(20)
            ],
        )

    def healthz_body(self) -> tuple[int, dict[str, object]]:
        try:
            report = self.check()
        except SQLAlchemyError as error:
            # Nothing can be stored or run without the store: unhealthy, said as every other verdict is (no error
            # text; the log has its kind), so a load balancer takes the replica out instead of reading a plain 500.
            log.error("health: the state store is unreachable", kind=type(error).__name__)
            down: dict[str, object] = {
                "health": "unhealthy",
                "status": "failing",
                "problems": ["state store: unreachable"],
            }
            if self.leadership is not None:
                down["replica"] = {"id": self.leadership.me, "role": "unknown"}
            return 503, down
        body: dict[str, object] = dict(report.body)
        if self.leadership is not None:
            try:
                body["replica"] = self.leadership.role().to_json()
            except Exception as error:  # the store is down: the health above says so; the role is unknown
                body["replica"] = {"id": self.leadership.me, "role": "unknown", "error": type(error).__name__}
        return report.status, body

    async def healthz(self, request: Request) -> Response:
        status, body = await run_in_threadpool(self.healthz_body)
        return JSONResponse(body, status_code=status)

    async def metrics_endpoint(self, request: Request) -> Response:
        await run_in_threadpool(self.refresh_gauges)
        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def insights_html(self) -> tuple[int, str]:
        """The insights report (``cardbridge insights --html``'s content) as a page; 404 without ``[insights]``."""
        from connector.server.insights_page import render_report

        if self.insights is None or not self.insights.communities:
            return 404, "<!DOCTYPE html><title>Insights</title><p>[insights] is not configured.</p>"
        now = self.clock()
        report = heat_report(self.store, self.insights, list(self.insights.communities), now)
        try:
            found = demand_report(self.store, self.insights, self.communities, now)
            note = None
        except Exception as error:  # a community down: the heat (from the store) is still worth showing
            found, note = [], f"Demand posts could not be read: {type(error).__name__}"
        return 200, render_report(report, found, note=note)

    async def insights_page(self, request: Request) -> Response:
        status, page = await run_in_threadpool(self.insights_html)
        return HTMLResponse(page, status_code=status)

    async def status_page(self, request: Request) -> Response:
        view = await run_in_threadpool(self.status_view)
        return HTMLResponse(render_status_page(view))


def link_routes(connector: Connector, on_linked: Callable[[], None]) -> list[Route]:
    """The member link page, when ``[link]`` is configured."""
    link = connector.config.link
    if link is None:
        return []
    service = LinkService(connector.config, connector.store, connector.communities[link.community])
    return LinkPages(service, on_linked).routes()


def create_app(
    connector: Connector,
    pages: ReadOnlyPages,
    formats: Mapping[str, WebhookFormat],
    webhooks: WebhookStore,
    on_event: Callable[[], None],
    on_linked: Callable[[], None],
    on_redeem: Callable[[], None] = lambda: None,
) -> Starlette:
    """The app of ``[server] listen``: link page, webhook receivers, health; metrics and the status page too unless
    ``operator_listen`` gives them a listener of their own."""
    server = connector.config.server
    routes: list[BaseRoute] = [
        *link_routes(connector, on_linked),
        *webhook_routes(connector.config, formats, webhooks, pages.metrics, on_event),
        *interaction_routes(connector.desk, on_redeem),
        *pages.health_routes(),
    ]
    if not server.operator_listen:
        routes += pages.operator_routes(OperatorGate(server.operator_token))
    return Starlette(routes=routes)


def create_operator_app(connector: Connector, pages: ReadOnlyPages) -> Starlette:
    """The app of ``[server] operator_listen``: the status page, metrics and health."""
    gate = OperatorGate(connector.config.server.operator_token)
    return Starlette(routes=[*pages.health_routes(), *pages.operator_routes(gate)])
