"""``GET /healthz``: what the daemon learned from its passes (communities failing since when, streams read when).

200 with per-stream cursor and lag; 503, with the reasons in ``problems``, once

- a community has been failing for longer than ``unhealthy_after_seconds``;
- a scheduled job (sync, reconcile, retry) has failed ``unhealthy_after_failed_passes`` passes in a row: the pass
  crashed, the shop could not be read, or every record it read was quarantined;
- the shop has not been read successfully for longer than ``unhealthy_after_seconds`` while passes tried to (or, if
  no pass got that far, for longer than that plus ``sync_every``: the passes are stuck).

The answer is public (monitors ask it without a token): reasons name a job, a community or the shop and a time,
never an error's text (which can hold a URL or an address); the status page shows the errors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connector.core.clock import parse_iso
from connector.flow import PassReport

#: The jobs whose failures in a row make the daemon unhealthy (webhook and link passes follow single events, which
#: have their own retries and dead state).
SCHEDULED = ("sync", "reconcile", "retry")
#: The jobs whose passes read the shop's order stream.
READS_SHOP = ("sync", "reconcile", "webhook")


@dataclass(frozen=True)
class HealthReport:
    status: int
    body: dict[str, Any]

    @property
    def healthy(self) -> bool:
        return self.status == 200

    @property
    def lags(self) -> dict[str, float]:
        return {stream: s["lag_seconds"] for stream, s in self.body["streams"].items()}

    @property
    def problems(self) -> list[str]:
        return list(self.body.get("problems", []))


def pass_failed(job: str, report: PassReport) -> bool:
    """The pass did not do its job: it crashed (``<job>: …``), could not read the shop (``shop: …``), or every record
    it read was quarantined."""
    if any(line.startswith((f"{job}:", "shop:")) for line in report.errors):
        return True
    return report.quarantined > 0 and report.quarantined >= report.orders_read


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
        self.unhealthy_after = unhealthy_after
        self.failed_passes = failed_passes
        self.sync_every = sync_every
        self.clock = clock
        self.started = clock()
        self.failing_since: dict[str, datetime] = {}
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
        with self._lock:
            self.last_pass = now
            for name in self.communities:
                prefix = f"{name}:"
                if any(line.startswith(prefix) for line in (*report.errors, *report.failures)):
                    self.failing_since.setdefault(name, now)
                else:
                    self.failing_since.pop(name, None)
            self.failed_in_a_row[job] = self.failed_in_a_row.get(job, 0) + 1 if failed else 0
            if job not in READS_SHOP or (job == "webhook" and not report.orders_read and not failed):
                return  # a pass that did not read the order stream says nothing of the shop
            if failed:
                if self.shop_failing_since is None:
                    self.shop_failing_since = now
            else:
                self.shop_failing_since = None
                if job in ("sync", "reconcile"):
                    self.last_success["orders"] = now

    def _problems(self, now: datetime) -> list[str]:
        problems = [
            f"{name}: failing since {since.isoformat()}"
            for name, since in self.failing_since.items()
            if now - since > self.unhealthy_after
        ]
        problems += [
            f"{job}: {count} passes failed in a row"
            for job, count in self.failed_in_a_row.items()
            if job in SCHEDULED and count >= self.failed_passes
        ]
        if self.shop_failing_since is not None and now - self.shop_failing_since > self.unhealthy_after:
            problems.append(f"shop: not read successfully since {self.shop_failing_since.isoformat()}")
        else:
            last_read = self.last_success.get("orders") or self.started
            if now - last_read > self.unhealthy_after + self.sync_every:
                problems.append(f"shop: no pass has read it since {last_read.isoformat()}")
        return problems

    def check(self, cursors: Mapping[str, Mapping[str, str]]) -> HealthReport:
        """The health answer, given the stored cursors (stream → ``{"value", "updated_at"}``)."""
        now = self.clock()
        with self._lock:
            streams = {}
            for stream, cursor in cursors.items():
                seen = self.last_success.get(stream) or parse_iso(cursor["updated_at"])
                streams[stream] = {"cursor": cursor["value"], "lag_seconds": round((now - seen).total_seconds(), 1)}
            failing = {name: since.isoformat() for name, since in self.failing_since.items()}
            problems = self._problems(now)
            body = {
                "status": "failing" if problems else "ok",
                "last_pass": self.last_pass.isoformat() if self.last_pass else None,
                "streams": streams,
                "failing_since": failing,
                "failed_passes_in_a_row": {job: n for job, n in self.failed_in_a_row.items() if n},
                "problems": problems,
            }
        return HealthReport(503 if problems else 200, body)
