"""``GET /healthz``: what the daemon learned from its passes (communities failing since when, streams read when).

200 with per-stream cursor and lag; 503 once a community has been failing longer than ``unhealthy_after_seconds``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connector.core.clock import parse_iso
from connector.flow import PassReport


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


class Health:
    """Facts the passes leave behind, read by ``/healthz``, ``/metrics`` and the status page."""

    def __init__(self, communities: Iterable[str], unhealthy_after: timedelta, clock: Callable[[], datetime]) -> None:
        self.communities = list(communities)
        self.unhealthy_after = unhealthy_after
        self.clock = clock
        self.failing_since: dict[str, datetime] = {}
        self.last_success: dict[str, datetime] = {}
        self.last_pass: datetime | None = None
        self._lock = threading.Lock()  # observed from the pass thread, read from request threads

    def observe(self, job: str, report: PassReport) -> None:
        now = self.clock()
        with self._lock:
            self.last_pass = now
            for name in self.communities:
                prefix = f"{name}:"
                if any(line.startswith(prefix) for line in (*report.errors, *report.failures)):
                    self.failing_since.setdefault(name, now)
                else:
                    self.failing_since.pop(name, None)
            if not any(line.startswith("shop:") for line in report.errors) and job in ("sync", "reconcile"):
                self.last_success["orders"] = now

    def check(self, cursors: Mapping[str, Mapping[str, str]]) -> HealthReport:
        """The health answer, given the stored cursors (stream → ``{"value", "updated_at"}``)."""
        now = self.clock()
        with self._lock:
            streams = {}
            for stream, cursor in cursors.items():
                seen = self.last_success.get(stream) or parse_iso(cursor["updated_at"])
                streams[stream] = {"cursor": cursor["value"], "lag_seconds": round((now - seen).total_seconds(), 1)}
            failing = {name: since.isoformat() for name, since in self.failing_since.items()}
            unhealthy = [name for name, since in self.failing_since.items() if now - since > self.unhealthy_after]
            body = {
                "status": "failing" if unhealthy else "ok",
                "last_pass": self.last_pass.isoformat() if self.last_pass else None,
                "streams": streams,
                "failing_since": failing,
            }
        return HealthReport(503 if unhealthy else 200, body)
