"""The link page's brute-force brake lives in the state store (SQLite and PostgreSQL): failures per key in a sliding
hour, shared by replicas, kept across restarts, pruned after the hour, and stored as keyed hashes only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from adapters.registry import open_community
from connector.core.config import Config, parse_config
from connector.server.linking import LinkError, LinkService, TooManyAttempts
from connector.state import State
from connector.state.db import open_engine
from connector.state.link_attempts import LinkAttempts, link_attempts_t

SECRET = b"s" * 40
START = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def stored_keys(store: State) -> list[str]:
    with store.engine.connect() as conn:
        return [row.key for row in conn.execute(select(link_attempts_t.c.key))]


def test_failures_block_each_key_for_the_rest_of_the_hour(store):
    clock = Clock()
    brake = LinkAttempts(store.engine, clock).brake(SECRET, per_hour=3)
    for _ in range(3):
        assert brake.blocked_for("ip:a", "order:1") == 0
        brake.failed("ip:a", "order:1")
        clock.advance(60)
    assert brake.blocked_for("ip:a", "order:2") == 3600 - 180  # the address is blocked until its first failure ages
    assert brake.blocked_for("ip:b", "order:1") > 0  # so is the order number, from any address
    assert brake.blocked_for("ip:b", "order:2") == 0
    clock.now = START + timedelta(seconds=3600)
    assert brake.blocked_for("ip:a", "order:1") == 0  # the first failure left the window


def test_asking_never_stores_a_key(store):
    brake = LinkAttempts(store.engine).brake(SECRET, per_hour=3)
    for i in range(200):
        assert brake.blocked_for(f"ip:{i}", f"order:{i}") == 0
    assert store.link_attempts.count() == 0


def test_rows_past_the_window_are_pruned_on_a_failure_at_most_once_a_minute(store):
    clock = Clock()
    attempts = LinkAttempts(store.engine, clock)
    brake = attempts.brake(SECRET, per_hour=3)
    for i in range(50):
        brake.failed(f"ip:{i}", f"order:{i}")
        clock.advance(10)
    assert attempts.count() == 100
    clock.now = START + timedelta(seconds=3600 + 1000)  # the first 50 failed more than an hour ago
    brake.failed("ip:late", "order:late")
    assert attempts.count() == 2
    # Another replica's failure from two hours ago stays until this process prunes again, a minute after the last.
    with store.engine.begin() as conn:
        conn.execute(insert(link_attempts_t).values(key="x" * 64, failed_at=clock.now - timedelta(hours=2)))
    clock.advance(30)
    brake.failed("ip:later")
    assert attempts.count() == 4
    clock.advance(31)
    brake.failed("ip:latest")
    with store.engine.connect() as conn:
        kept = conn.execute(select(link_attempts_t.c.failed_at)).scalars().all()
    assert len(kept) == 4 and min(kept) == START + timedelta(seconds=3600 + 1000)


def test_stored_keys_are_keyed_hashes_not_the_address_or_order_number(store):
    brake = store.link_attempts.brake(SECRET, per_hour=3)
    brake.failed("ip:203.0.113.9", "order:WC-1001")
    keys = stored_keys(store)
    assert len(keys) == 2
    assert all(len(key) == 64 and "203.0.113.9" not in key and "WC-1001" not in key for key in keys)
    # Keyed: the same address under another secret is another row (a copy of the database cannot be enumerated).
    other = store.link_attempts.brake(b"t" * 40, per_hour=3)
    assert other.digest("ip:203.0.113.9") not in keys
    assert brake.digest("ip:203.0.113.9") in keys


def test_a_failure_stamped_ahead_of_this_clock_never_blocks_past_the_window(store):
    with store.engine.begin() as conn:
        brake = store.link_attempts.brake(SECRET, per_hour=1)
        ahead = datetime.now(UTC) + timedelta(hours=5)  # another replica's clock, badly ahead
        conn.execute(insert(link_attempts_t).values(key=brake.digest("ip:a"), failed_at=ahead))
    assert 0 < brake.blocked_for("ip:a") <= 3600


# ---- LinkService: replicas and restarts ----------------------------------------------------------------------------


def config(per_hour: int = 3) -> Config:
    return parse_config(
        {
            "state": {"url": "sqlite:///unused.db"},
            "shop": {
                "kind": "woocommerce",
                "base_url": "https://shop.example.com",
                "consumer_key": "ck",
                "consumer_secret": "cs",
            },
            "communities": {
                "discord": {
                    "kind": "discord",
                    "bot_token": "t",
                    "guild_id": "1",
                    "application_id": "2",
                    "client_secret": "s",
                }
            },
            "rules": [{"name": "buyers", "products": "*", "grant": {"discord": {"role": "3"}}}],
            "link": {
                "community": "discord",
                "public_url": "https://bridge.example.com",
                "secret": SECRET.decode(),
                "attempts_per_hour": per_hour,
            },
        }
    )


def replica(store: State) -> tuple[LinkService, State]:
    """A LinkService on its own engine over ``store``'s database, as another process would have."""
    cfg = config()
    state = State(open_engine(store.engine.url.render_as_string(hide_password=False)), SECRET)
    return LinkService(cfg, state, open_community("discord", cfg)), state


def guess(service: LinkService, client: str, order: str = "WC-1") -> type[LinkError]:
    with pytest.raises(LinkError) as refused:
        service.prove(order, "nobody@example.com", client)
    return type(refused.value)


def test_failures_on_one_replica_block_the_other(store):
    one, one_state = replica(store)
    two, two_state = replica(store)
    try:
        assert [guess(one, "203.0.113.9", f"WC-{i}") for i in range(3)] == [LinkError] * 3
        # The address is blocked on the other replica too, whatever order it tries; so is an order guessed at.
        assert guess(two, "203.0.113.9", "WC-99") is TooManyAttempts
        for i in range(3):
            guess(one, f"198.51.100.{i}", "WC-7")
        assert guess(two, "192.0.2.1", "wc-7 ") is TooManyAttempts
        assert guess(two, "192.0.2.1", "WC-8") is LinkError  # another address and order: only refused
    finally:
        one_state.close()
        two_state.close()


def test_a_restarted_service_still_blocks(store):
    before, before_state = replica(store)
    for i in range(3):
        guess(before, "203.0.113.9", f"WC-{i}")
    before_state.close()
    after, after_state = replica(store)
    try:
        with pytest.raises(TooManyAttempts) as blocked:
            after.prove("WC-50", "nobody@example.com", "203.0.113.9")
        assert "Try again in 60 minutes" in str(blocked.value) or "Try again in 59 minutes" in str(blocked.value)
    finally:
        after_state.close()
