"""End-to-end harness: the sandbox shop and forum on loopback, the CLI run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from sandbox.discourse import DiscourseSandbox
from sandbox.discourse.rate_limit import ADMIN_API_DEFAULT
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox
from tests.conftest import PG_ADMIN_URL, _postgres_database

CONFIG = """
[state]
url = "sqlite:///state.db"
[shop]
kind = "woocommerce"
base_url = "{shop_url}"
consumer_key = "${{WC_CONSUMER_KEY}}"
consumer_secret = "${{WC_CONSUMER_SECRET}}"
page_size = {page_size}
[communities.forum]
kind = "discourse"
base_url = "{forum_url}"
api_key = "${{DISCOURSE_API_KEY}}"
api_username = "system"
requests_per_minute = {rpm}
unmatched_retry_seconds = 0
bulk_lookup_threshold = {bulk}
[[rules]]
name = "verified-buyer"
products = "*"
grant.forum = {{ badge = "Verified Buyer", group = "verified-buyers", group_title = "Verified Buyer" }}
[delivery]
max_attempts = {max_attempts}
retry_base_seconds = 0
"""

#: The shop key with Read/Write permission that makes redeemed coupons (``World.add_coupon_key``).
COUPON_KEY = ("ck_coupon000000000000000000000000000000000", "cs_coupon000000000000000000000000000000000")

ENV = {
    "WC_CONSUMER_KEY": "ck_e2e0000000000000000000000000000000000000",
    "WC_CONSUMER_SECRET": "cs_e2e0000000000000000000000000000000000000",
    "DISCOURSE_API_KEY": "e2e-forum-key",
}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self):  # type: ignore[no-untyped-def]
        return json.loads(self.stdout)


class World:
    """A shop, a forum and a config folder; ``cli(...)`` runs ``cardbridge --config … <args>`` in a subprocess.

    The forum enforces the real admin-API limit (60 requests a minute per site, answered 429 with ``Retry-After``), and
    the config gives CardBridge the same budget, so its own pacing keeps it under the limit and the limit costs a test
    nothing unless the test makes more than 60 forum requests in a minute. Such a test raises both, as an operator
    raises ``DISCOURSE_MAX_ADMIN_API_REQS_PER_MINUTE`` for an import: ``forum.rate_limit_per_minute = N`` (``None``:
    no limit) before ``write_config()``, whose ``rpm`` follows the forum's limit unless given.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path
        self.shop = WooCommerceSandbox(consumer_key=ENV["WC_CONSUMER_KEY"], consumer_secret=ENV["WC_CONSUMER_SECRET"])
        self.forum = DiscourseSandbox(
            api_key=ENV["DISCOURSE_API_KEY"], api_username="system", rate_limit_per_minute=ADMIN_API_DEFAULT
        )
        self.shop_server = SandboxServer(self.shop.app).start()
        self.forum_server = SandboxServer(self.forum.app).start()
        self.config_path = tmp_path / "cardbridge.toml"
        self.write_config()

    def write_config(
        self, *, rpm: int | None = None, page_size: int = 100, bulk: int = 20, max_attempts: int = 3, extra: str = ""
    ) -> None:
        """``rpm``: CardBridge's request budget for the forum; by default the forum's own limit (or 6000 without)."""
        self.config_path.write_text(
            CONFIG.format(
                shop_url=self.shop_server.url,
                forum_url=self.forum_server.url,
                rpm=rpm or self.forum.rate_limit_per_minute or 6000,
                page_size=page_size,
                bulk=bulk,
                max_attempts=max_attempts,
            )
            + extra,
            encoding="utf-8",
        )

    def set_shop(self, table: str) -> None:
        """Replace the whole ``[shop]`` table (each shop adapter accepts only its own keys)."""
        text = self.config_path.read_text()
        start, end = text.index("[shop]\n"), text.index("[communities.forum]")
        self.config_path.write_text(
            text[:start] + "[shop]\n" + table.rstrip("\n") + "\n" + text[end:], encoding="utf-8"
        )

    def add_coupon_key(self) -> tuple[str, str]:
        """A second shop key with Read/Write permission, written into ``[shop]`` as the coupon key
        (``coupon_consumer_key``/``_secret``); call it after ``write_config``."""
        self.shop.add_key(*COUPON_KEY, "read_write")
        text = self.config_path.read_text()
        self.config_path.write_text(
            text.replace(
                'consumer_secret = "${WC_CONSUMER_SECRET}"\n',
                'consumer_secret = "${WC_CONSUMER_SECRET}"\n'
                f'coupon_consumer_key = "{COUPON_KEY[0]}"\ncoupon_consumer_secret = "{COUPON_KEY[1]}"\n',
            ),
            encoding="utf-8",
        )
        return COUPON_KEY

    @property
    def db_path(self) -> Path:
        return self.dir / "state.db"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARDBRIDGE_")}
        env.update(ENV)
        env["COLUMNS"] = "200"  # rich tables wrap at the terminal width; keep rows on one line for assertions
        env.update(extra)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "connector.cli", "--config", str(self.config_path), "--log-level", "info", *args]

    def cli(self, *args: str, **env: str) -> Run:
        done = subprocess.run(self.command(*args), capture_output=True, text=True, env=self.env(**env), timeout=120)
        return Run(done.returncode, done.stdout, done.stderr)

    def spawn(self, *args: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(**env)
        )

    def hold_pass(self, *args: str, seconds: float = 5) -> subprocess.Popen[str]:
        """Spawn a command that holds the pass lock for about ``seconds``: its first order read is delayed that long;
        returns once that read has reached the shop (the lock is held from then on)."""
        fault = self.shop.knobs.add_fault(r"/orders", kind="delay", seconds=seconds, times=1)
        process = self.spawn(*args)
        deadline = time.monotonic() + 60
        while fault.hits < 1:
            assert time.monotonic() < deadline, f"{' '.join(args)} never reached the shop"
            time.sleep(0.1)
        return process

    def close(self) -> None:
        self.shop_server.stop()
        self.forum_server.stop()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


@pytest.fixture
def pg_world(world):
    """The world with its state store in a throw-away PostgreSQL database (``world.pg_url``), dropped afterwards."""
    admin, name = _postgres_database()
    world.pg_url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    world.config_path.write_text(
        world.config_path.read_text().replace('url = "sqlite:///state.db"', f'url = "{world.pg_url}"'),
        encoding="utf-8",
    )
    yield world
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
