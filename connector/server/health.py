"""Health: one verdict, computed by :func:`assess`, for ``GET /healthz``, the status page headline and ``status``.

- ``healthy``: every remote answered the last pass that asked it, and the passes succeed;
- ``degraded``: a remote (the shop or a community) is failing, or a scheduled job's last pass failed: which one and
  since when is said, nothing is lost yet (the outbox and the shop keep what waits);
- ``unhealthy`` once

  - a community has been failing for longer than ``unhealthy_after_seconds``;
  - a scheduled job (sync, reconcile, retry) has failed ``unhealthy_after_failed_passes`` passes in a row: the pass
    crashed, the shop could not be read, or every record it read was quarantined;
  - the shop has not been read successfully for longer than ``unhealthy_after_seconds`` while passes tried to (or, if
    no pass got that far, for longer than that plus ``sync_every``: the passes are stuck).

``/healthz`` answers 200 while healthy or degraded and 503 when unhealthy; its body says which (``health``). The
answer is public (monitors ask it without a token): reasons name a job, a remote and a time, never an error's text
(which can hold a URL or an address); the status page shows the errors.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from connector.core.clock import parse_iso
from connector.core.logs import log
from connector.flow import PassReport
from connector.state.health_snapshots import Snapshot

#: The jobs whose failures in a row make the daemon unhealthy (webhook and link passes follow single events, which
#: have their own retries and dead state).
SCHEDULED = ("sync", "reconcile", "retry")
#: The jobs whose passes read the shop's order stream.
READS_SHOP = ("sync", "backfill", "reconcile", "webhook")
#: The name the shop goes by among the failing remotes.
SHOP = "shop"
#: Under which name the passes' facts are kept in the state store (one document, whichever process ran the pass).
PASSES = "passes"


class Level(str, enum.Enum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    @property
    def legacy(self) -> str:
        """``/healthz``'s ``status`` before the three levels: ``ok`` only when healthy (``failing`` with the 503)."""
        return {Level.HEALTHY: "ok", Level.DEGRADED: "degraded", Level.UNHEALTHY: "failing"}[self]


@dataclass(frozen=True)
class Facts:
    """What the passes left behind, wherever it is kept (the daemon's memory, or the state store for ``status``)."""

    now: datetime
    #: When watching started (the daemon's start): with no successful shop read, the shop counts as read then.
    started: datetime
    #: community → when it started failing (failing now).
    communities_failing: Mapping[str, datetime] = field(default_factory=dict)
    #: community → when a pass last met its failure.
    communities_last_failed: Mapping[str, datetime] = field(default_factory=dict)
    #: When the shop's reads started failing (None while they succeed).
    shop_failing_since: datetime | None = None
    #: When a pass last read the shop's orders successfully.
    shop_read: datetime | None = None
    #: job → passes failed in a row (0 after a good pass).
    failed_in_a_row: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The facts as JSON (the time they were observed is ``now``)."""

        def iso(when: datetime | None) -> str | None:
            return when.isoformat() if when else None

        return {
            "observed_at": self.now.isoformat(),
            "started": self.started.isoformat(),
            "communities_failing": {name: since.isoformat() for name, since in self.communities_failing.items()},
            "communities_last_failed": {name: at.isoformat() for name, at in self.communities_last_failed.items()},
            "shop_failing_since": iso(self.shop_failing_since),
            "shop_read": iso(self.shop_read),
            "failed_in_a_row": dict(self.failed_in_a_row),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], now: datetime) -> Facts:
        """Facts recorded earlier (:meth:`to_json`), judged at ``now``."""

        def when(value: Any) -> datetime | None:
            return parse_iso(value) if isinstance(value, str) else None

        return cls(
            now=now,
            started=when(data.get("started")) or now,
            communities_failing={k: parse_iso(v) for k, v in dict(data.get("communities_failing") or {}).items()},
            communities_last_failed={
                k: parse_iso(v) for k, v in dict(data.get("communities_last_failed") or {}).items()
            },
            shop_failing_since=when(data.get("shop_failing_since")),
            shop_read=when(data.get("shop_read")),
            failed_in_a_row={k: int(v) for k, v in dict(data.get("failed_in_a_row") or {}).items()},
        )


@dataclass(frozen=True)
class Thresholds:
    unhealthy_after: timedelta
    failed_passes: int = 3
    sync_every: timedelta = timedelta(minutes=5)

    def to_json(self) -> dict[str, Any]:
        return {
            "unhealthy_after_seconds": self.unhealthy_after.total_seconds(),
            "unhealthy_after_failed_passes": self.failed_passes,
            "sync_every_seconds": self.sync_every.total_seconds(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Thresholds:
        return cls(
            timedelta(seconds=float(data["unhealthy_after_seconds"])),
            int(data["unhealthy_after_failed_passes"]),
            timedelta(seconds=float(data["sync_every_seconds"])),
        )


#: Where the daemon keeps its facts for other processes (``cardbridge status``): called after each pass with the
#: facts and thresholds as JSON (``connector.state.health_snapshots``).
Keep = Callable[[dict[str, Any]], None]


def snapshot(facts: Facts, limits: Thresholds) -> dict[str, Any]:
    """What the daemon records after a pass: its facts and the thresholds it judges them by."""
    return {"facts": facts.to_json(), "limits": limits.to_json()}


def assess_snapshot(data: Mapping[str, Any], now: datetime) -> Verdict:
    """The verdict on recorded facts, at ``now``, by the thresholds of the process that recorded them (the daemon's
    config), so ``status`` says what ``/healthz`` says."""
    return assess(Facts.from_json(data["facts"], now), Thresholds.from_json(data["limits"]))


@dataclass(frozen=True)
class Verdict:
    level: Level
    #: remote (``shop`` or a community) → when it started failing.
    failing: dict[str, datetime]
    #: Why it is unhealthy (empty unless it is).
    problems: list[str]
    #: Scheduled jobs whose last pass failed → passes failed in a row.
    jobs_failing: dict[str, int]


def assess(facts: Facts, limits: Thresholds) -> Verdict:
    """The one health verdict: the same facts give the same answer on ``/healthz``, the status page and ``status``."""
    now = facts.now
    problems = [
        f"{name}: failing since {since.isoformat()}"
        for name, since in facts.communities_failing.items()
        if now - since > limits.unhealthy_after
    ]
    jobs = {job: n for job, n in facts.failed_in_a_row.items() if job in SCHEDULED and n > 0}
    problems += [f"{job}: {n} passes failed in a row" for job, n in jobs.items() if n >= limits.failed_passes]
    shop_since = facts.shop_failing_since
    if shop_since is not None and now - shop_since > limits.unhealthy_after:
        problems.append(f"shop: not read successfully since {shop_since.isoformat()}")
    else:
        last_read = facts.shop_read or facts.started
        if now - last_read > limits.unhealthy_after + limits.sync_every:
            problems.append(f"shop: no pass has read it since {last_read.isoformat()}")
    failing = dict(facts.communities_failing)
    if shop_since is not None:
        failing[SHOP] = shop_since
    if problems:
        level = Level.UNHEALTHY
    elif failing or jobs:
        level = Level.DEGRADED
    else:
        level = Level.HEALTHY
    return Verdict(level, failing, problems, jobs)


def describe(verdict: Verdict) -> str:
    """One line for a headline: the level, and which remotes fail since when."""
    text = verdict.level.value
    if verdict.failing:
        text += ": " + ", ".join(
            f"{name} failing since {since:%Y-%m-%d %H:%M:%S} UTC" for name, since in verdict.failing.items()
        )
    return text


@dataclass(frozen=True)
class HealthReport:
    status: int
    body: dict[str, Any]
    verdict: Verdict

    @property
    def level(self) -> Level:
        return self.verdict.level

    @property
    def healthy(self) -> bool:
        return self.verdict.level is Level.HEALTHY

    @property
    def lags(self) -> dict[str, float]:
        return {stream: s["lag_seconds"] for stream, s in self.body["streams"].items()}

    @property
    def problems(self) -> list[str]:
        return list(self.verdict.problems)


def pass_failed(job: str, report: PassReport) -> bool:
    """The pass did not do its job: it crashed (``<job>: …``), could not read the shop (``shop: …``), or every record
    it read was quarantined."""
    return any(line.startswith(f"{job}:") for line in report.errors) or shop_failed(report)


def shop_failed(report: PassReport) -> bool:
    """The shop failed the pass: it could not be read (``shop: …``), or every record it gave was quarantined."""
    if any(line.startswith(f"{SHOP}:") for line in report.errors):
        return True
    return report.quarantined > 0 and report.quarantined >= report.orders_read


def communities_failed(report: PassReport, communities: Iterable[str]) -> set[str]:
    """The communities a pass reports a failure of: an error or a failed action whose line starts with the name (the
    pass writes ``<community>: …``; the text after it is never read)."""
    lines = (*report.errors, *report.failures)
    return {name for name in communities if any(line.startswith(f"{name}:") for line in lines)}


class Health:
    """Facts the passes leave behind, read by ``/healthz``, ``/metrics`` and the status page."""

    def __init__(
        self,
        communities: Iterable[str],
        unhealthy_after: timedelta,
        clock: Callable[[], datetime],
        failed_passes: int = 3,
        sync_every: timedelta = timedelta(minutes=5),
    ) -> None:
        self.communities = list(communities)
        self.limits = Thresholds(unhealthy_after, failed_passes, sync_every)
        self.clock = clock
        #: Called with :func:`snapshot` after each observed pass (the daemon keeps it in the state store).
        self.keep: Keep | None = None
        self._kept: SnapshotStore | None = None
        self.started = clock()
        self.failing_since: dict[str, datetime] = {}
        #: community → when a pass last met its failure (see :meth:`_forgotten`).
        self.last_failed: dict[str, datetime] = {}
        self.last_success: dict[str, datetime] = {}
        self.last_pass: datetime | None = None
        #: job → passes failed in a row (0 after a good pass).
        self.failed_in_a_row: dict[str, int] = {}
        #: When the shop's reads started failing (None while they succeed).
        self.shop_failing_since: datetime | None = None
        self._lock = threading.Lock()  # observed from the pass thread, read from request threads

    def observe(self, job: str, report: PassReport) -> None:
        now = self.clock()
        failed = pass_failed(job, report)
        shop = shop_failed(report)
        failing = communities_failed(report, self.communities)
        # Only a pass that asked a community clears it: a pass with nothing to send there says nothing of it, and
        # must not restart the count of a failure that goes on.
        asked = {name for name, counts in report.requests.items() if counts.get("requests")}
        with self._lock:
            self.last_pass = now
            for name in self.communities:
                if name in failing:
                    self.failing_since.setdefault(name, now)
                    self.last_failed[name] = now
                elif name in asked or self._forgotten(name, now):
                    self.failing_since.pop(name, None)
                    self.last_failed.pop(name, None)
            self.failed_in_a_row[job] = self.failed_in_a_row.get(job, 0) + 1 if failed else 0
            self._observe_shop(job, report, now, failed, shop)
        if self.keep is not None:
            try:
                self.keep(snapshot(self.facts(), self.limits))
            except Exception as error:  # the store being down must not stop the pass loop; /healthz still answers
                log.warning("health facts not stored", error=type(error).__name__)

    def _forgotten(self, name: str, now: datetime) -> bool:
        """No pass has met the community's failure for two sync intervals: nothing that needs it is left (its actions
        died, its customers were looked up), so nothing is failing that anyone waits for."""
        seen = self.last_failed.get(name) or self.failing_since.get(name)
        return seen is not None and now - seen > 2 * self.limits.sync_every

    def _observe_shop(self, job: str, report: PassReport, now: datetime, failed: bool, shop: bool) -> None:
        if job not in READS_SHOP or (job == "webhook" and not report.orders_read and not shop):
            return  # a pass that did not read the order stream says nothing of the shop
        if shop:
            if self.shop_failing_since is None:
                self.shop_failing_since = now
        elif not failed:  # a pass that crashed says nothing of the shop either (it counts in a row)
            self.shop_failing_since = None
            if job in ("sync", "backfill", "reconcile"):
                self.last_success["orders"] = now

    def refresh(self) -> None:
        """Start again from the facts the store keeps (another replica's passes wrote them): a follower, which runs
        no scheduled pass, answers ``/healthz`` by the leader's passes, not by its own silence."""
        kept = self._kept
        if kept is None:
            return
        try:
            recorded = kept.load(PASSES)
            if recorded is not None:
                self.restore(Facts.from_json(recorded.facts["facts"], self.clock()), keep_started=True)
        except Exception as error:  # the store is down or the document is another version's: keep our own facts
            log.warning("kept health facts not read", error=type(error).__name__)

    def attach(self, kept: SnapshotStore) -> None:
        """Keep the facts in ``kept`` after each pass, starting from what it holds: a failure that began before a
        restart still counts from when it began (and ``status``, another process, reads them there)."""
        recorded = kept.load(PASSES)
        if recorded is not None:
            try:
                self.restore(Facts.from_json(recorded.facts["facts"], self.clock()), keep_started=True)
            except (KeyError, TypeError, ValueError) as error:  # written by another version: start afresh
                log.warning("kept health facts not read", error=type(error).__name__)
        self.keep = lambda facts: kept.save(PASSES, facts)
        self._kept = kept

    def restore(self, facts: Facts, keep_started: bool = False) -> None:
        """Start from facts recorded earlier (by another process), as if this one had observed those passes."""
        with self._lock:
            if not keep_started:  # a daemon counts "no pass has read the shop" from its own start
                self.started = facts.started
            self.failing_since = {k: v for k, v in facts.communities_failing.items() if k in self.communities}
            self.last_failed = {k: v for k, v in facts.communities_last_failed.items() if k in self.communities}
            self.shop_failing_since = facts.shop_failing_since
            self.failed_in_a_row = dict(facts.failed_in_a_row)
            if facts.shop_read is not None:
                self.last_success["orders"] = facts.shop_read

    def facts(self) -> Facts:
        with self._lock:
            return Facts(
                now=self.clock(),
                started=self.started,
                communities_failing=dict(self.failing_since),
                communities_last_failed=dict(self.last_failed),
                shop_failing_since=self.shop_failing_since,
                shop_read=self.last_success.get("orders"),
                failed_in_a_row=dict(self.failed_in_a_row),
            )

    def check(self, cursors: Mapping[str, Mapping[str, str]]) -> HealthReport:
        """The health answer, given the stored cursors (stream → ``{"value", "updated_at"}``)."""
        facts = self.facts()
        verdict = assess(facts, self.limits)
        streams = {}
        for stream, cursor in cursors.items():
            seen = self.last_success.get(stream) or parse_iso(cursor["updated_at"])
            streams[stream] = {"cursor": cursor["value"], "lag_seconds": round((facts.now - seen).total_seconds(), 1)}
        body = {
            "health": verdict.level.value,
            # Kept for monitors written before the three levels; "ok" only when healthy.
            "status": verdict.level.legacy,
            "last_pass": self.last_pass.isoformat() if self.last_pass else None,
            "streams": streams,
            "failing": {
                name: {"kind": "shop" if name == SHOP else "community", "since": since.isoformat()}
                for name, since in verdict.failing.items()
            },
            # Kept from before ``failing``: communities only.
            "failing_since": {name: since.isoformat() for name, since in facts.communities_failing.items()},
            "failed_passes_in_a_row": {job: n for job, n in facts.failed_in_a_row.items() if n},
            "problems": verdict.problems,
        }
        return HealthReport(503 if verdict.level is Level.UNHEALTHY else 200, body, verdict)


class SnapshotStore(Protocol):
    """Where the passes' facts are kept (``State.status.health``, :mod:`connector.state.health_snapshots`)."""

    def save(self, source: str, facts: dict[str, Any]) -> None: ...

    def load(self, source: str) -> Snapshot | None: ...


def record_pass(
    kept: SnapshotStore,
    communities: Iterable[str],
    limits: Thresholds,
    job: str,
    report: PassReport,
    clock: Callable[[], datetime],
) -> None:
    """A pass run outside the daemon (``sync``, ``backfill``, ``reconcile`` from the CLI or cron) added to the facts
    the store keeps, so ``status`` knows which communities failed in it, and since when."""
    health = Health(communities, limits.unhealthy_after, clock, limits.failed_passes, limits.sync_every)
    recorded = kept.load(PASSES)
    if recorded is not None:
        health.restore(Facts.from_json(recorded.facts["facts"], clock()))
    health.keep = lambda facts: kept.save(PASSES, facts)
    health.observe(job, report)
