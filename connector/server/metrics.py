"""``GET /metrics``: the ``cardbridge_*`` Prometheus counters and gauges, in a registry of their own."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

from connector.flow import PassReport

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

#: The health levels (``connector.server.health.Level``), each a series of ``cardbridge_health``.
LEVELS = ("healthy", "degraded", "unhealthy")


class Metrics:
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
        self.level = Gauge(
            "cardbridge_health",
            "1 for the daemon's health level (healthy, degraded, unhealthy), 0 for the others",
            ["level"],
            registry=r,
        )
        self.failing = Gauge(
            "cardbridge_remote_failing", "1 while a remote (the shop, a community) is failing", ["remote"], registry=r
        )
        self.points = Gauge(
            "cardbridge_points",
            "Points: earned (from community posts, net of take-backs) and redeemed (for coupons, not cancelled)",
            ["kind"],
            registry=r,
        )
        self.redemptions = Gauge(
            "cardbridge_points_redemptions", "Redemptions of points for coupons, by status", ["status"], registry=r
        )
        self.backlog = Gauge(
            "cardbridge_webhook_backlog", "Stored webhook events: pending, retrying, dead", ["state"], registry=r
        )
        self.leader = Gauge(
            "cardbridge_replica_leader",
            "1 while this replica holds the leader lease (runs the scheduled jobs), 0 while it follows",
            registry=r,
        )
        self.replicas = Gauge(
            "cardbridge_replicas", "Daemons on this state store whose heartbeat is within their lease", registry=r
        )

    def observe(self, job: str, report: PassReport, outbox: Mapping[str, int]) -> None:
        """Count a finished pass, and set the outbox gauges from the counts read after it."""
        self.records.inc(report.orders_read)
        self.actions.labels("done").inc(report.delivered)
        self.actions.labels("failed").inc(report.failed)
        self.actions.labels("dead").inc(report.died)
        for counts in report.requests.values():
            self.rate_limited.inc(counts["rate_limited"])
            self.retries.inc(counts["retries"])
        self.passes.labels(job, "ok" if report.ok else "problems").inc()
        for status, count in outbox.items():
            self.outbox.labels(status).set(count)

    def lags(self, seconds: Mapping[str, float]) -> None:
        for stream, lag in seconds.items():
            self.lag.labels(stream).set(lag)

    def health(self, level: str, failing: Collection[str], remotes: Iterable[str]) -> None:
        """The health verdict as ``/healthz`` gives it: one level set to 1, and each known remote failing or not."""
        for name in LEVELS:
            self.level.labels(name).set(1 if name == level else 0)
        for remote in remotes:
            self.failing.labels(remote).set(1 if remote in failing else 0)

    def replica(self, leads: bool, live: int) -> None:
        self.leader.set(1 if leads else 0)
        self.replicas.set(live)

    def webhook_backlog(self, counts: Mapping[str, int]) -> None:
        for state, count in counts.items():
            self.backlog.labels(state).set(count)

    def points_figures(self, earned: int, redemptions: Mapping[str, int]) -> None:
        self.points.labels("earned").set(earned)
        self.points.labels("redeemed").set(redemptions.get("points_redeemed", 0))
        for status in ("waiting", "reserved", "issued", "refused", "cancelled", "parked"):
            self.redemptions.labels(status).set(redemptions.get(status, 0))

    def webhook(self, source: str, result: str) -> None:
        self.webhooks.labels(source, result).inc()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (served as ``CONTENT_TYPE_LATEST``)."""
        return bytes(generate_latest(self.registry))
