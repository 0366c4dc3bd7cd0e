"""The link page's brute-force brake: failures per key in a sliding hour, memory bounded by time and by size; and the
client address it counts against (X-Forwarded-For only from trusted proxies)."""

from __future__ import annotations

import ipaddress

from connector.server.linking import Attempts, client_address


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


def test_asking_never_stores_a_key():
    attempts = Attempts(per_hour=3, clock=lambda: 0.0)
    for i in range(1000):
        assert attempts.blocked_for(f"ip:{i}", f"order:{i}") == 0
    assert len(attempts._failures) == 0


def test_keys_older_than_the_hour_are_forgotten_even_when_there_are_few():
    now = [0.0]
    attempts = Attempts(per_hour=3, clock=lambda: now[0])
    for i in range(100):
        attempts.failed(f"order:{i}")
        now[0] += 10
    now[0] = 3600.0 + 1000  # the first 100 failed more than an hour ago
    attempts.failed("order:late")
    assert set(attempts._failures) == {"order:late"}


def test_past_max_keys_the_keys_that_failed_longest_ago_go_first():
    now = [0.0]
    attempts = Attempts(per_hour=3, clock=lambda: now[0])
    attempts.MAX_KEYS = 5
    for i in range(8):
        attempts.failed(f"order:{i}")
        now[0] += 1
    attempts.failed("order:0")  # failed again: now the most recent
    assert list(attempts._failures) == ["order:4", "order:5", "order:6", "order:7", "order:0"]


PROXIES = [ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("10.0.0.0/8")]


def test_the_peer_is_the_client_unless_it_is_a_trusted_proxy():
    assert client_address("203.0.113.9", ["198.51.100.1"], PROXIES) == "203.0.113.9"
    assert client_address("127.0.0.1", ["198.51.100.1"], []) == "127.0.0.1"  # no trusted proxies: the default
    assert client_address(None, [], PROXIES) == "unknown"


def test_behind_trusted_proxies_the_right_most_untrusted_forwarded_address_is_the_client():
    assert client_address("127.0.0.1", ["198.51.100.1"], PROXIES) == "198.51.100.1"
    # The client wrote the left part; the proxies appended what they saw.
    assert client_address("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.2.3"], PROXIES) == "198.51.100.1"
    assert client_address("127.0.0.1", ["6.6.6.6", "198.51.100.1:5123"], PROXIES) == "198.51.100.1"
    assert client_address("127.0.0.1", ["[2001:db8::1]:443"], PROXIES) == "2001:db8::1"
    assert client_address("127.0.0.1", ["10.0.0.5, 10.0.0.6"], PROXIES) == "10.0.0.5"  # all proxies: the farthest
    assert client_address("127.0.0.1", [], PROXIES) == "127.0.0.1"  # a proxy that sends none: its own address
    assert client_address("127.0.0.1", ["1.1.1.1, unknown"], PROXIES) == "unknown"
