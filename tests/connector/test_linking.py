"""The link page's brute-force brake: failures per key in a sliding hour, bounded memory."""

from __future__ import annotations

from connector.server.linking import Attempts


def test_failures_block_each_key_for_the_rest_of_the_hour():
    now = [0.0]
    attempts = Attempts(per_hour=3, clock=lambda: now[0])
    for _ in range(3):
        assert attempts.blocked_for("ip:a", "order:1") == 0
        attempts.failed("ip:a", "order:1")
        now[0] += 60
    assert attempts.blocked_for("ip:a", "order:2") == 3600 - 180  # the address is blocked until its first failure ages
    assert attempts.blocked_for("ip:b", "order:1") > 0  # so is the order number, from any address
    assert attempts.blocked_for("ip:b", "order:2") == 0
    now[0] = 3600.0
    assert attempts.blocked_for("ip:a", "order:1") == 0  # the first failure left the window


def test_old_keys_are_swept_when_there_are_many():
    now = [0.0]
    attempts = Attempts(per_hour=3, clock=lambda: now[0])
    attempts.MAX_KEYS = 10
    for i in range(10):
        attempts.failed(f"order:{i}")
    now[0] = 4000.0
    attempts.failed("order:new")
    assert set(attempts._failures) == {"order:new"}
