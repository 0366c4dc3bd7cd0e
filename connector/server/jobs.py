"""The daemon's passes: scheduled (sync, reconcile, outbox retry) or asked for (a webhook, a member who linked).

One pass at a time, whatever started it: a thread lock inside the daemon, and the state store's pass lock across
processes (a ``cardbridge backfill`` run by hand, another replica): a scheduled job that finds it held skips its
round, logged at info, and the next round tries again; a pass a webhook or a member asked for waits for it (up to
``[server] lease_seconds``), since someone waits for its result. APScheduler jobs never overlap (``max_instances=1``,
``coalesce=True``). With several replicas on one store, the scheduled jobs run on the leader only
(:mod:`connector.server.leadership`); webhook, link and redeem passes run on whichever replica has the work.
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
    """``leads`` says whether this replica runs the scheduled jobs now (always, for a lone daemon)."""

    def __init__(
        self, connector: Connector, metrics: Metrics, health: Health, leads: Callable[[], bool] = lambda: True
    ) -> None:
        self.connector = connector
        self.metrics = metrics
        self.health = health
        self.leads = leads
        #: How long a pass someone waits for (a webhook's, a member's) waits for another process's pass to end.
        self.wait = connector.config.server.lease_seconds
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

    def run(self, job: str, work: Callable[[], PassReport], wait: float = 0.0) -> PassReport | None:
        """Run one pass under the locks and record what it did; None when the daemon is stopping or another process
        runs a pass for longer than ``wait`` seconds (webhook events then stay stored for a later round)."""
        if self.stopping.is_set():
            return None
        with self.lock:
            try:
                with self.connector.exclusive(job, wait=wait):
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
            if not self.leads():
                self.health.refresh()  # the facts are the leader's too: add this pass to them, not to stale ones
            self.health.observe(job, report)
            self.metrics.observe(job, report, self.connector.store.status.outbox_counts())
            return report

    def sync(self) -> PassReport | None:
        if not self.leads():
            return None
        return self.run("sync", self.connector.run_pass)

    def reconcile(self) -> PassReport | None:
        if not self.leads():
            return None

        def work() -> PassReport:
            report = PassReport()
            self.drift = self.connector.reconcile(report)
            after = self.connector.run_pass()
            after.errors[:0] = report.errors
            return after

        return self.run("reconcile", work)

    def retry(self) -> PassReport | None:
        if not self.leads():
            return None

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

        return self.run("redeem", work, wait=self.wait)

    def orders(self, order_ids: list[str]) -> PassReport | None:
        """A pass for the orders webhooks named (re-read at once), and whatever else is due."""
        return self.run("webhook", lambda: self.connector.run_pass(order_ids=order_ids), wait=self.wait)

    def linked(self) -> PassReport | None:
        """No shop read: the member's customer is marked for planning; plan and deliver now."""
        return self.run("link", lambda: self.connector.run_pass(order_ids=[]), wait=self.wait)

    def elected(self) -> None:
        """This replica now leads: a sync at once (the old leader's schedule died with it), then every
        ``sync_every``."""
        if self.scheduler.running and not self.stopping.is_set():
            self.scheduler.modify_job("sync", next_run_time=datetime.now().astimezone())

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
