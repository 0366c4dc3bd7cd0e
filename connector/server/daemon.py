"""``cardbridge run``: the scheduled daemon with its HTTP server (webhooks, health, metrics, status page).

One process, three kinds of work, one pass at a time: the scheduled jobs (:mod:`connector.server.jobs`), the worker
that handles webhook events the moment they are stored (:mod:`connector.server.events`), and the HTTP app
(:mod:`connector.server.app`). Outbox rows are claimed with a conditional UPDATE, so a ``backfill`` run beside the
daemon never sends an action twice. Several daemons may share one PostgreSQL store as replicas: one leads and runs
the scheduled jobs (:mod:`connector.server.leadership`), any of them takes webhooks and works stored events.

SIGTERM/SIGINT: uvicorn stops taking requests, the pass in flight stops after its current remote call, the process
exits 0. A webhook answered 200 was stored first, so the next start processes it.
"""

from __future__ import annotations

import ipaddress
import signal
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from connector.core.clock import utcnow
from connector.core.logs import log
from connector.flow import Connector
from connector.server.app import ReadOnlyPages, create_app, create_operator_app
from connector.server.events import EventWorker
from connector.server.health import Health
from connector.server.jobs import Jobs
from connector.server.leadership import Leadership
from connector.server.listeners import KEEP_ALIVE_SECONDS, ByListener, bind, h11_with_head_timeout
from connector.server.metrics import Metrics
from connector.server.webhooks import configured_formats

#: Connections the kernel queues before uvicorn accepts them (uvicorn's own default).
BACKLOG = 2048


class Daemon:
    """The parts of the daemon, wired together: jobs, the webhook worker, and the app that feeds them."""

    def __init__(self, connector: Connector, clock: Callable[[], datetime] = utcnow) -> None:
        config = connector.config
        self.connector = connector
        self.metrics = Metrics()
        self.health = Health(
            connector.communities,
            timedelta(seconds=config.server.unhealthy_after_seconds),
            clock,
            failed_passes=config.server.unhealthy_after_failed_passes,
            sync_every=timedelta(seconds=config.schedule.sync_every),
        )
        self.leadership = Leadership(
            connector.store,
            config.server.listen,
            config.server.lease_seconds,
            on_elected=lambda: self.jobs.elected(),
        )
        self.jobs = Jobs(connector, self.metrics, self.health, leads=lambda: self.leadership.is_leader)
        self.formats = configured_formats(config)
        self.worker = EventWorker(connector, self.jobs, self.formats, clock, owner=self.leadership.me)
        self.pages = ReadOnlyPages(
            connector, self.health, self.metrics, lambda: self.jobs.drift, clock, leadership=self.leadership
        )

    def app(self) -> Starlette:
        return create_app(
            self.connector,
            self.pages,
            self.formats,
            self.worker.webhooks,
            on_event=self.worker.wake.set,
            on_linked=self.worker.member_linked,
            on_redeem=self.worker.redeem_now,
        )

    def operator_app(self) -> Starlette:
        return create_operator_app(self.connector, self.pages)

    def start(self) -> None:
        for name, endpoint in self.connector.desk.endpoints.items():
            try:  # /points and /redeem: one read, and one bulk overwrite only when they differ
                endpoint.register_commands()
            except Exception as error:  # the daemon serves everything else; `check` says what is wrong
                log.warning("slash commands not registered", community=name, error=type(error).__name__)
        self.leadership.start()
        self.jobs.start()
        self.worker.start()

    def stop(self) -> None:
        self.jobs.stop()
        self.worker.wake.set()
        self.jobs.shutdown()
        self.worker.join()
        self.leadership.stop()  # last: the lease goes once this replica's passes have ended


def warn_if_operator_pages_are_open(connector: Connector) -> None:
    """The status page and metrics on the public listener without a token: said once at start."""
    server = connector.config.server
    if server.operator_listen or server.operator_token:
        return
    public = connector.config.link is not None or not _loopback(server.host)
    if public:
        log.warning(
            "the status page and /metrics are served without a token on the public listener: "
            "set [server] operator_token or operator_listen",
            listen=server.listen,
        )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class CannotListen(Exception):
    """An address of ``[server]`` that cannot be listened on; the message names the key, the address and why."""


def _listen(address: str, key: str) -> socket.socket:
    """A socket bound to ``host:port`` and already listening, so a busy port is found before anything says
    "running"; one that cannot be had is :class:`CannotListen` naming ``key`` (``[server] listen``)."""
    host, _, port = address.rpartition(":")
    try:
        sock = bind(host.strip("[]"), int(port))
        sock.listen(BACKLOG)
    except OSError as error:
        raise CannotListen(f"cannot listen on {address} ({key}): {error.strerror or error}") from None
    return sock


def serve(connector: Connector) -> None:
    """Run the daemon in the foreground until SIGTERM or SIGINT."""
    daemon = Daemon(connector)
    server_config = connector.config.server
    sockets = [_listen(server_config.listen, "[server] listen")]
    by_port: dict[int, ASGIApp] = {}
    if server_config.operator_listen:
        sockets.append(_listen(server_config.operator_listen, "[server] operator_listen"))
        by_port[sockets[1].getsockname()[1]] = daemon.operator_app()
    warn_if_operator_pages_are_open(connector)
    server = uvicorn.Server(
        uvicorn.Config(
            ByListener(daemon.app(), by_port),
            http=h11_with_head_timeout(server_config.read_timeout_seconds),
            limit_concurrency=server_config.max_connections,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # The client address is decided by [link] trusted_proxies (connector/server/linking.py), never by
            # uvicorn's own X-Forwarded-For handling (which believes any loopback peer by default).
            proxy_headers=False,
        )
    )
    # uvicorn re-raises the signal it caught once it has shut down; with these handlers in place that re-raise is
    # harmless, the daemon finishes the action in flight, and the process exits 0 as a service manager expects.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: connector.stop_requested.set())
    daemon.start()
    log.info("cardbridge running", listen=server_config.listen, operator_listen=server_config.operator_listen)
    try:
        server.run(sockets=sockets)  # handles SIGTERM/SIGINT: stops accepting, finishes requests in flight
    finally:
        daemon.stop()
        log.info("cardbridge stopped")
