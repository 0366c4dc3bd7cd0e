"""The daemon's passes: scheduled (sync, reconcile, outbox retry) or asked for (a webhook, a member who linked).

One pass at a time, whatever started it: a thread lock inside the daemon, and the state store's pass lock across
processes (a ``cardbridge backfill`` run by hand, a second daemon): a job that finds it held skips its round, logged
at info, and the next round tries again. APScheduler jobs never overlap (``max_instances=1``, ``coalesce=True``).
:meth:`Jobs.stop` is the stop signal: no new pass starts, and the pass in flight stops after its
current remote call (``Connector.stop_requested``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.background import BackgroundScheduler

from connector.core.clock import utcnow
from connector.core.logs import log
from connector.flow import Connector, PassReport
from connector.server.health import Health
from connector.server.metrics import Metrics
from connector.state.errors import StoreError
from connector.state.locks import PassLocked


class Jobs:
    def __init__(self, connector: Connector, metrics: Metrics, health: Health) -> None:
        self.connector = connector
        self.metrics = metrics
        self.health = health
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        #: What the last reconcile found removed by hand (shown on the status page).
        self.drift: list[str] = []
        self.scheduler = BackgroundScheduler(
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": connector.config.schedule.misfire_grace_seconds,
            },
            timezone="UTC",
        )

    def run(self, job: str, work: Callable[[], PassReport]) -> PassReport | None:
        """Run one pass under the locks and record what it did; None when the daemon is stopping or another process
        runs a pass (webhook events then stay stored for a later round)."""
        if self.stopping.is_set():
            return None
        with self.lock:
            try:
                with self.connector.exclusive(job):
                    report = work()
            except PassLocked as held:
                holder = held.holder
                log.info("pass skipped: another pass is running", job=job, by=holder.job, pid=holder.pid)
                return None
            except StoreError as error:  # expected (a database down or locked): one line; the traceback is at debug
                log.error("job failed", job=job, error=str(error))
                self.metrics.passes.labels(job, "error").inc()
                report = PassReport(errors=[str(error)])
            except Exception as error:
                log.exception("job failed", job=job)
                self.metrics.passes.labels(job, "error").inc()
                report = PassReport(errors=[f"{job}: {type(error).__name__}: {error}"])
            self.health.observe(job, report)
            self.metrics.observe(job, report, self.connector.store.status.outbox_counts())
            return report

    def sync(self) -> PassReport | None:
        return self.run("sync", self.connector.run_pass)

    def reconcile(self) -> PassReport | None:
        def work() -> PassReport:
            report = PassReport()
            self.drift = self.connector.reconcile(report)
            after = self.connector.run_pass()
            after.errors[:0] = report.errors
            return after

        return self.run("reconcile", work)

    def retry(self) -> PassReport | None:
        def work() -> PassReport:
            report = PassReport()
            self.connector.deliver(report, utcnow())
            self.connector.redeem(report)
            return report

        return self.run("retry", work)

    def redeem(self) -> PassReport | None:
        """Members' requests now (a slash command waits for its coupon), without a shop read."""

        def work() -> PassReport:
            report = PassReport()
            self.connector.redeem(report)
            return report

        return self.run("redeem", work)

    def orders(self, order_ids: list[str]) -> PassReport | None:
        """A pass for the orders webhooks named (re-read at once), and whatever else is due."""
        return self.run("webhook", lambda: self.connector.run_pass(order_ids=order_ids))

    def linked(self) -> PassReport | None:
        """No shop read: the member's customer is marked for planning; plan and deliver now."""
        return self.run("link", lambda: self.connector.run_pass(order_ids=[]))

    def start(self) -> None:
        schedule = self.connector.config.schedule
        now = datetime.now().astimezone()
        self.scheduler.add_job(self.sync, "interval", seconds=schedule.sync_every, id="sync", next_run_time=now)
        self.scheduler.add_job(self.reconcile, "interval", seconds=schedule.reconcile_every, id="reconcile")
        self.scheduler.add_job(self.retry, "interval", seconds=schedule.retry_every, id="retry")
        self.scheduler.start()

    def stop(self) -> None:
        """The stop signal: no new pass starts, and the pass in flight stops after its current remote call."""
        self.stopping.set()
        self.connector.stop_requested.set()

    def shutdown(self) -> None:
        """After :meth:`stop`: wait for the scheduled job in flight to return."""
        self.scheduler.shutdown(wait=True)
