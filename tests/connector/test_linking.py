"""The client address the link page's brute-force brake counts against (X-Forwarded-For only from trusted proxies).
The brake itself is in the state store: tests/connector/test_link_attempts.py."""

from __future__ import annotations

import ipaddress

from connector.server.linking import client_address

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
