"""Which replica leads: several ``cardbridge run`` daemons on one state store, one of them running the scheduled jobs.

The leader holds the ``leader`` lock of :mod:`connector.state.locks` (a leased row, the same mechanism as the pass
lock); every replica beats every quarter lease from one thread: it moves its own row in ``replicas``, the claims on
the webhook events it is working on, and either renews the lease (the leader) or tries to take it (a follower). When
the leader dies, its row goes stale after ``[server] lease_seconds`` and a follower takes it at its next beat: within
1.25 leases (at once when the dead leader ran on the same host: its pid is asked). The new leader runs a sync at once.

Leadership decides who *starts* scheduled passes, which saves every replica asking for the pass lock on every tick;
it is not what makes a pass exclusive. Every pass, scheduled or not, still runs under the pass lock, so even a leader
that stalled past its lease (and has not noticed yet) never runs a pass beside the new one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from connector import __version__
from connector.core.clock import utcnow
from connector.core.logs import log
from connector.state.facade import State
from connector.state.locks import Holder, Locks
from connector.state.replicas import this_replica

#: The lock the leader holds.
LEADER = "leader"


@dataclass(frozen=True)
class Role:
    """What ``/healthz`` says of this replica."""

    id: str
    role: str
    #: The leader's ``host:pid:start`` (None while nobody leads), and when its lease runs out unless it beats again.
    leader: str | None
    lease_expires_at: datetime | None
    lease_seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "role": self.role,
            "leader": self.leader,
            "lease_expires_at": self.lease_expires_at.isoformat() if self.lease_expires_at else None,
            "lease_seconds": self.lease_seconds,
        }


class Leadership:
    """This replica's heartbeat and its hold on the leader lease. ``on_elected`` is called (from the beat thread) each
    time this replica becomes the leader."""

    def __init__(
        self,
        store: State,
        listen: str,
        lease_seconds: float,
        on_elected: Callable[[], None] = lambda: None,
        me: str | None = None,
    ) -> None:
        self.me = me or this_replica()
        self.listen = listen
        self.lease = lease_seconds
        self.locks = Locks(store.engine, lease_seconds, process=self.me)
        self.replicas = store.replicas
        self.webhooks = store.webhooks
        self.on_elected = on_elected
        self.started_at = utcnow()
        self._token: str | None = None
        #: When the lease was last renewed (monotonic): a leader that could not renew for a lease steps down.
        self._renewed = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadership", daemon=True)

    @property
    def is_leader(self) -> bool:
        return self._token is not None and time.monotonic() - self._renewed < self.lease

    def start(self) -> None:
        """Beat once (so the first scheduled jobs know who leads), then every quarter lease from a thread."""
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        """A clean stop: the lease and the replica's row go at once, so another replica leads at its next beat."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.lease)
        try:
            if self._token is not None:
                self.locks.release(LEADER, self._token)
            self.replicas.leave(self.me)
        except Exception as error:  # the store is gone: the lease runs out by itself
            log.warning("leader lease not released", error=type(error).__name__)
        self._token = None

    def beat(self) -> None:
        """One beat: the replica's row and claims, then the lease (renewed, or tried for)."""
        try:
            self.replicas.beat(self.me, self.listen, __version__, self.lease, self.started_at)
            self.webhooks.extend(self.me, utcnow() + timedelta(seconds=self.lease))
            if self._token is not None:
                if self.locks.renew(LEADER, self._token):
                    self._renewed = time.monotonic()
                else:
                    self._token = None
                    log.warning("leadership lost: another replica took the lease", replica=self.me)
                return
            token = self.locks.try_acquire(LEADER, "leader")
        except Exception as error:  # the store is down: the next beat asks again; a lease not renewed runs out
            log.warning("replica heartbeat failed", error=type(error).__name__)
            return
        if token is not None:
            self._token, self._renewed = token, time.monotonic()
            log.info("this replica leads: it runs the scheduled jobs", replica=self.me)
            try:
                self.on_elected()
            except Exception:
                log.exception("starting the leader's jobs failed")

    def _run(self) -> None:
        while not self._stop.wait(self.lease / 4):
            self.beat()

    def leader(self) -> Holder | None:
        return self.locks.holder(LEADER)

    def role(self) -> Role:
        """This replica's role and the lease as the store has it now."""
        holder = self.leader()
        return Role(
            id=self.me,
            role="leader" if self.is_leader else "follower",
            leader=holder.process if holder else None,
            lease_expires_at=holder.expires_at if holder else None,
            lease_seconds=self.lease,
        )
