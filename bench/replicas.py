"""Issue 18: ``cardbridge run`` as 1 and as 3 replicas on one PostgreSQL, behind a round-robin "load balancer".

    .venv/bin/python bench/run.py --replicas-only      # prints the figures (a few minutes)

For each replica count, a fresh PostgreSQL database (on the local server, ``CARDBRIDGE_TEST_PG`` as the tests use),
fresh in-process sandboxes (a WooCommerce shop and a Discourse forum, no rate limit, as ``bench_latency`` in
``bench/run.py``), and N ``cardbridge run`` subprocesses started from **one** config file: only the listen port
differs, read from ``${CARDBRIDGE_PORT}`` as a systemd template unit would set it (``deploy/systemd``).

1. **Webhook → badge latency.** One order at a time: its webhook goes to the next replica in turn (as a round-robin
   load balancer sends it), and the clock stops when the buyer holds the badge on the forum (polled every 2 ms).
2. **Backlog drain.** ``orders`` order webhooks posted as fast as 12 client threads can, spread round-robin over the
   replicas; the clock runs from the first post until every buyer holds the badge. Then, once no webhook event and
   no outbox action is left, every buyer must hold the badge exactly once (a mass award does not check for an
   existing grant, so a double send shows as a second row), and the forum's request log says what it cost.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from adapters.shops.woocommerce_webhook import WOOCOMMERCE
from connector.state import State
from connector.state.db import make_engine
from connector.state.locks import Locks
from sandbox.discourse import DiscourseSandbox
from sandbox.discourse.mass_award import csv_entries
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox

CARDBRIDGE = [sys.executable, "-m", "connector.cli"]
PG_ADMIN = os.environ.get("CARDBRIDGE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BADGE = "Verified Buyer"
WEBHOOK_SECRET = "bench-webhook-secret"
#: The figure that must hold: ``--replicas-only`` exits non-zero when it does not.
EXACTLY_ONCE = "buyers not holding the badge exactly once after the drains"
#: Client threads posting the backlog: enough to keep three replicas busy, well under ``[server] max_connections``.
POSTERS = 12

#: The forum's budget: 150 requests a second, which these runs never reach. With ``[state] shared_rate_limits`` (the
#: default on PostgreSQL) it is a ring of that many rows in the store; above 10,000 a minute it is paced per process
#: instead, so it stays below that to measure the shared budget.
REQUESTS_PER_MINUTE = 9_000

#: One file for every replica; ``${CARDBRIDGE_PORT}`` is the only thing that differs between them.
CONFIG = """
[state]
url = "{state_url}"
[shop]
kind = "woocommerce"
base_url = "{shop_url}"
consumer_key = "{consumer_key}"
consumer_secret = "{consumer_secret}"
lookback_seconds = 0
[communities.forum]
kind = "discourse"
base_url = "{forum_url}"
api_key = "{api_key}"
api_username = "system"
requests_per_minute = {rpm}
unmatched_retry_seconds = 0
[[rules]]
name = "verified-buyer"
products = "*"
grant.forum = {{ badge = "{badge}", group = "verified-buyers" }}
[schedule]
sync_every = 3600
[server]
listen = "127.0.0.1:${{CARDBRIDGE_PORT}}"
woocommerce_webhook_secret = "{secret}"
"""


@contextmanager
def fresh_database() -> Iterator[str]:
    """A throw-away database on the local PostgreSQL (as ``tests/conftest.py`` ``_postgres_database``), dropped after."""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"cardbridge_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], bool], seconds: float, what: str, every: float = 0.01) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {seconds:.0f} s")
        time.sleep(every)


class World:
    """The shop and the forum, in this process, on loopback; buyers are made one order each."""

    def __init__(self) -> None:
        self.shop, self.forum = WooCommerceSandbox(), DiscourseSandbox()
        self.card = self.shop.add_product("Steam 钱包充值卡 $20", "145.00")
        self.servers = [SandboxServer(self.shop.app).start(), SandboxServer(self.forum.app).start()]
        self.buyers: list[str] = []

    def info(self) -> dict[str, str]:
        shop_server, forum_server = self.servers
        return {
            "shop_url": shop_server.url,
            "consumer_key": self.shop.consumer_key,
            "consumer_secret": self.shop.consumer_secret,
            "forum_url": forum_server.url,
            "api_key": self.forum.api_key,
        }

    def buyer(self, tag: str) -> tuple[str, bytes]:
        """A forum member who just paid: their username and the order webhook's body."""
        username, email = f"{tag}{len(self.buyers)}", f"{tag}{len(self.buyers)}@example.com"
        self.forum.add_user(username, email)
        order = self.shop.add_order(email=email, items=[(self.card, 1)], status="processing")
        self.buyers.append(username)
        return username, json.dumps(self.shop.order(order)).encode()

    def holders(self) -> int:
        return self.forum.user_badge_count(BADGE)

    def close(self) -> None:
        for server in self.servers:
            server.stop()


class Replicas:
    """``count`` ``cardbridge run`` processes from one config file, each on its own port (``$CARDBRIDGE_PORT``)."""

    def __init__(self, folder: Path, count: int) -> None:
        self.ports = [free_port() for _ in range(count)]
        self.logs = [folder / f"replica-{i}.log" for i in range(count)]
        self.processes = []
        for port, log in zip(self.ports, self.logs, strict=True):
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        [*CARDBRIDGE, "--config", str(folder / "cardbridge.toml"), "run"],
                        cwd=folder,
                        env={**os.environ, "CARDBRIDGE_PORT": str(port)},
                        stdout=subprocess.DEVNULL,
                        stderr=out,
                    )
                )
        self._next = 0
        self._turn = threading.Lock()

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def next_url(self) -> str:
        """Round robin, as the load balancer in ``deploy/`` does (no sticky sessions)."""
        with self._turn:
            index, self._next = self._next, (self._next + 1) % len(self.ports)
        return self.url(index)

    def health(self, index: int) -> dict[str, Any] | None:
        try:
            return httpx.get(self.url(index) + "/healthz", timeout=2).json()  # type: ignore[no-any-return]
        except (httpx.HTTPError, ValueError):
            return None

    def roles(self) -> list[str]:
        """Each replica's role as ``/healthz`` reports it (``"-"`` when it does not say: before issue 18 landed)."""
        roles = []
        for index in range(len(self.ports)):
            replica = (self.health(index) or {}).get("replica") or {}
            roles.append(str(replica.get("role", "-")))
        return roles

    def check_alive(self) -> None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"a replica exited with {process.returncode}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM, as a service manager stops them; SIGKILL for one still running after 90 s (the units' limit)."""
        for process in self.processes:
            process.terminate()
        stuck = []
        for process in self.processes:
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
                stuck.append(process.pid)
        if stuck:
            raise RuntimeError(f"replicas {stuck} did not stop within 90 s of SIGTERM")


def post_webhook(client: httpx.Client, url: str, body: bytes, delivery: str) -> int:
    response = client.post(
        url + "/webhooks/woocommerce",
        content=body,
        headers={
            "X-WC-Webhook-Signature": WOOCOMMERCE.sign(WEBHOOK_SECRET, body),
            "X-WC-Webhook-Topic": "order.created",
            "X-WC-Webhook-Delivery-ID": delivery,
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    return response.status_code


@dataclass
class Run:
    """What one replica count measured."""

    replicas: int
    latencies: list[float] = field(default_factory=list)
    orders: int = 0
    drain_seconds: float = 0.0
    refused: int = 0
    badge_rows_per_buyer: Counter[int] = field(default_factory=Counter)
    grant_requests: Counter[str] = field(default_factory=Counter)
    forum_requests: int = 0
    by_route: Counter[str] = field(default_factory=Counter)
    roles: list[str] = field(default_factory=list)
    #: Every repeat's drain time (the figure is the median's) and forum requests.
    drains: list[float] = field(default_factory=list)
    requests_per_drain: list[int] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, round(q * len(ordered)) - 1)]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def rate(self) -> float:
        return self.orders / self.drain_seconds

    @property
    def doubled(self) -> int:
        """Buyers holding the badge more than once."""
        return sum(n for rows, n in self.badge_rows_per_buyer.items() if rows > 1)

    @property
    def missing(self) -> int:
        return self.badge_rows_per_buyer[0]

    def summary(self) -> str:
        worst = max(self.grant_requests.values(), default=0)
        return (
            f"{self.replicas} replica(s) [{', '.join(self.roles)}]: latency p50 {self.p50 * 1000:.0f} ms, "
            f"p95 {self.percentile(0.95) * 1000:.0f} ms over {len(self.latencies)}; drain {self.orders} orders in "
            f"{self.drain_seconds:.2f} s = {self.rate:.0f} orders/s; {self.forum_requests} forum requests "
            f"{dict(self.by_route.most_common())}; badge rows per buyer {dict(self.badge_rows_per_buyer)}; "
            f"grant requests naming one buyer at most {worst}; webhooks refused {self.refused}"
        )


def _route(record: dict[str, Any]) -> str:
    path = "/".join("{id}" if part.isdigit() else part for part in record["path"].split("/"))
    return f"{record['method']} {path}"


def _grant_requests(requests: list[dict[str, Any]]) -> Counter[str]:
    """Grant requests per buyer: one ``POST /user_badges.json`` names one, a mass award's CSV names many."""
    named: Counter[str] = Counter()
    for record in requests:
        if record["method"] != "POST":
            continue
        if record["path"].startswith("/user_badges"):
            named[str(record["body"].get("username", "")).lower()] += 1
        elif record["path"].startswith("/admin/badges/award/"):
            named.update(entry.split("@")[0] for entry in csv_entries(str(record["body"].get("file", ""))))
    return named


def measure(replicas: int, samples: int, orders: int) -> Run:
    """Both measurements for one replica count, on a fresh database and fresh sandboxes."""
    run = Run(replicas)
    world = World()
    try:
        with fresh_database() as state_url, tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = CONFIG.format(
                state_url=state_url, badge=BADGE, secret=WEBHOOK_SECRET, rpm=REQUESTS_PER_MINUTE, **world.info()
            )
            (folder / "cardbridge.toml").write_text(config, encoding="utf-8")
            engine = make_engine(state_url)
            daemons = Replicas(folder, replicas)
            try:
                _ready(daemons, engine)
                with httpx.Client() as client:
                    for index in range(replicas):  # warm up: one order through each replica, not measured
                        _one(world, client, daemons.url(index), f"warm{index}")
                    for index in range(samples):
                        daemons.check_alive()
                        run.latencies.append(_one(world, client, daemons.next_url(), f"lat{index}"))
                _drain(run, world, daemons, orders)
                _settle(State(engine), world)
                run.roles = daemons.roles()
            finally:
                daemons.stop()
                engine.dispose()
    finally:
        world.close()
    run.badge_rows_per_buyer = Counter(world.forum.badges_of(name).count(BADGE) for name in world.buyers)
    drained = world.forum.requests.snapshot()  # the log was reset when the backlog was posted
    run.grant_requests = _grant_requests(drained)
    run.forum_requests = len(drained)
    run.by_route = Counter(_route(r) for r in drained)
    return run


def _ready(daemons: Replicas, engine: Any) -> None:
    """Every replica answers ``/healthz``, the first pass ran, and no pass holds the store's lock."""
    for index in range(len(daemons.ports)):
        wait_until(partial(_answers, daemons, index), 60, f"/healthz of replica {index}")
    wait_until(
        lambda: any((daemons.health(i) or {}).get("last_pass") for i in range(len(daemons.ports))), 60, "first pass"
    )
    locks = Locks(engine)
    wait_until(lambda: locks.holder() is None, 60, "the first passes to end")


def _answers(daemons: Replicas, index: int) -> bool:
    daemons.check_alive()
    return daemons.health(index) is not None


def _one(world: World, client: httpx.Client, url: str, tag: str) -> float:
    """One buyer: webhook to ``url``, seconds until the forum shows their badge."""
    username, body = world.buyer(tag)
    start = time.perf_counter()
    status = post_webhook(client, url, body, tag)
    if status != 200:
        raise RuntimeError(f"webhook answered {status}")
    wait_until(lambda: bool(world.forum.badges_of(username)), 30, f"badge for {username}", every=0.002)
    return time.perf_counter() - start


def _drain(run: Run, world: World, daemons: Replicas, orders: int) -> None:
    """``orders`` webhooks as fast as the posters go, round robin; seconds until every buyer holds the badge."""
    bodies = [world.buyer("drain")[1] for _ in range(orders)]
    before = world.holders()
    world.forum.reset_log()
    local = threading.local()

    def post(item: tuple[int, bytes]) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client()
        index, body = item
        return post_webhook(local.client, daemons.next_url(), body, f"drain{index}")

    start = time.perf_counter()
    with ThreadPoolExecutor(POSTERS) as pool:
        statuses = list(pool.map(post, enumerate(bodies)))
    run.refused = sum(1 for status in statuses if status != 200)
    wait_until(lambda: _alive(daemons) and world.holders() - before >= orders, 300, "backlog drained")
    run.drain_seconds = time.perf_counter() - start
    run.orders = orders


def _alive(daemons: Replicas) -> bool:
    daemons.check_alive()
    return True


def _settle(store: State, world: World) -> None:
    """No webhook event, outbox action or mass-award job left: any double grant would have landed by now."""

    def idle() -> bool:
        outbox = store.status.outbox_counts()
        busy = outbox.get("pending", 0) + outbox.get("sending", 0) + outbox.get("failed", 0)
        return store.webhooks.counts()["pending"] == 0 and busy == 0 and world.forum.pending_jobs() == 0

    wait_until(idle, 120, "the replicas to go idle", every=0.05)


def merged(runs: list[Run]) -> Run:
    """Repeats of one replica count as one: latencies pooled, the median drain (with its forum requests), every
    buyer's badge rows and grant requests."""
    middle = sorted(runs, key=lambda run: run.drain_seconds)[len(runs) // 2]
    out = Run(runs[0].replicas, orders=middle.orders, drain_seconds=middle.drain_seconds, roles=middle.roles)
    out.forum_requests, out.by_route, out.refused = middle.forum_requests, middle.by_route, sum(r.refused for r in runs)
    out.drains = [run.drain_seconds for run in runs]
    out.requests_per_drain = [run.forum_requests for run in runs]
    for run in runs:
        out.latencies += run.latencies
        out.badge_rows_per_buyer += run.badge_rows_per_buyer
        out.grant_requests |= run.grant_requests  # the highest count per name (names repeat across repeats)
    return out


def bench_replicas(samples: int, orders: int, repeats: int = 3, counts: tuple[int, ...] = (1, 3)) -> list[Run]:
    """``repeats`` runs per replica count (each on a fresh database), ``samples`` latencies and ``orders`` each."""
    merged_runs = []
    for count in counts:
        runs = []
        for repeat in range(repeats):
            print(f"{count} replica(s), run {repeat + 1}/{repeats}: {samples} latency samples, {orders} orders …")
            runs.append(measure(count, samples, orders))
            print("  " + runs[-1].summary(), flush=True)
        merged_runs.append(merged(runs))
    return merged_runs


def rows(runs: list[Run]) -> list[tuple[str, str, str, bool | None, str]]:
    """The figures for RESULTS.md: (name, value, target, met, how it was measured)."""
    figures: list[tuple[str, str, str, bool | None, str]] = []
    for run in runs:
        lb = "one replica" if run.replicas == 1 else f"{run.replicas} replicas, webhooks round robin"
        p95 = run.percentile(0.95)
        figures.append(
            (
                f"webhook → badge latency, {lb} (p50, p95)",
                f"{run.p50 * 1000:.0f} ms, {p95 * 1000:.0f} ms",
                "p95 ≤ 1 s",
                p95 <= 1.0,
                f"{len(run.latencies)} orders one at a time ({len(run.drains)} runs pooled), PostgreSQL state store, badge polled every 2 ms "
                "(`bench/replicas.py`)",
            )
        )
    for run in runs:
        figures.append(
            (
                f"backlog drain, {run.orders} order webhooks, {run.replicas} replica(s)",
                f"{run.rate:.0f} orders/s ({run.drain_seconds:.2f} s)",
                "report",
                None,
                f"median of {len(run.drains)} ({', '.join(f'{d:.2f}' for d in sorted(run.drains))} s), each on a "
                f"fresh database; posted by {POSTERS} threads round robin, first post → every buyer badged; forum "
                f"requests per drain {', '.join(map(str, run.requests_per_drain))} (the median run's: "
                f"{', '.join(f'{r} {n}' for r, n in run.by_route.most_common())}); {run.refused} webhooks refused",
            )
        )
    doubled = sum(run.doubled + run.missing for run in runs)
    figures.append(
        (
            EXACTLY_ONCE,
            str(doubled),
            "0",
            doubled == 0,
            "; ".join(
                f"{run.replicas} replica(s): badge rows per buyer {dict(run.badge_rows_per_buyer)}, at most "
                f"{max(run.grant_requests.values(), default=0)} grant request(s) naming one buyer"
                for run in runs
            ),
        )
    )
    return figures
