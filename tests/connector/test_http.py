"""The shared client: retries on 5xx and transport errors, honours 429 hints, budget keeps under the limit."""

import httpx
import pytest
import respx

from connector.core.budget import RequestBudget
from connector.core.http import (
    Deferred,
    RateLimited,
    RemoteClient,
    RemoteError,
    UnsureStatus,
    UnsureTransport,
    outcome_unknown,
)

BASE = "https://forum.example.com"


def client(sleeps, **kwargs):
    return RemoteClient("forum", BASE, sleep=sleeps.append, **kwargs)


@respx.mock
def test_retries_5xx_then_succeeds():
    sleeps = []
    route = respx.get(f"{BASE}/x.json").mock(side_effect=[httpx.Response(502), httpx.Response(200, json={"ok": 1})])
    assert client(sleeps).request("GET", "/x.json").json() == {"ok": 1}
    assert route.call_count == 2 and len(sleeps) == 1


@respx.mock
def test_4xx_is_not_retried_and_carries_the_reason():
    sleeps = []
    respx.post(f"{BASE}/user_badges.json").mock(
        return_value=httpx.Response(
            403,
            json={"errors": ["You are not permitted to view the requested resource."], "error_type": "invalid_access"},
        )
    )
    with pytest.raises(RemoteError) as info:
        client(sleeps).request("POST", "/user_badges.json", json={})
    assert info.value.status == 403
    assert "not permitted" in str(info.value)
    assert sleeps == []


@respx.mock
def test_429_waits_retry_after_header():
    sleeps = []
    respx.get(f"{BASE}/x.json").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}, json={}), httpx.Response(200, json={})]
    )
    c = client(sleeps)
    c.request("GET", "/x.json")
    assert sleeps == [7.0]
    assert c.stats.rate_limited == 1


@respx.mock
def test_429_waits_discourse_extras_wait_seconds_without_header():
    sleeps = []
    body = {
        "errors": ["You’ve performed this action too many times. Please wait 12 seconds before trying again."],
        "error_type": "rate_limit",
        "extras": {"wait_seconds": 12, "time_left": "12 seconds"},
    }
    respx.get(f"{BASE}/x.json").mock(side_effect=[httpx.Response(429, json=body), httpx.Response(200, json={})])
    client(sleeps).request("GET", "/x.json")
    assert sleeps == [12.0]


@respx.mock
def test_429_plain_text_body_is_understood():
    sleeps = []
    text = "Slow down, too many requests from this IP address. Please retry again in 9 seconds. Error code: ip_10_secs_limit."
    respx.get(f"{BASE}/x.json").mock(
        side_effect=[
            httpx.Response(429, text=text, headers={"content-type": "text/plain"}),
            httpx.Response(200, json={}),
        ]
    )
    client(sleeps).request("GET", "/x.json")
    assert sleeps == [9.0]


@respx.mock
def test_gives_up_after_attempts_with_the_last_error():
    sleeps = []
    respx.get(f"{BASE}/x.json").mock(return_value=httpx.Response(429, headers={"Retry-After": "1"}, json={}))
    with pytest.raises(RateLimited):
        client(sleeps, attempts=3).request("GET", "/x.json")
    assert sleeps == [1.0, 1.0]


@respx.mock
def test_connect_error_is_retried():
    sleeps = []
    respx.get(f"{BASE}/x.json").mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={})])
    client(sleeps).request("GET", "/x.json")
    assert len(sleeps) == 1


def test_budget_never_exceeds_the_limit_in_any_window():
    now = [0.0]
    sent = []

    def sleep(seconds):
        now[0] += seconds

    budget = RequestBudget(5, clock=lambda: now[0], sleep=sleep)
    for _ in range(23):
        budget.acquire()
        sent.append(now[0])
        now[0] += 0.5
    for i, t in enumerate(sent):
        in_window = [s for s in sent if t <= s < t + 60]
        assert len(in_window) <= 5, (i, in_window)
    # and it does not wait longer than needed: 23 requests at 5/min take a bit over 4 minutes
    assert 240 <= sent[-1] <= 242


@respx.mock
def test_a_wait_longer_than_max_wait_is_not_slept_and_later_requests_are_held_locally():
    """A Discord ``shared`` 429 (rate-limits.mdx:84-102) asks for 1337 s: no sleep, a Deferred with the time."""
    sleeps = []
    route = respx.post(f"{BASE}/channels/1/messages").mock(
        return_value=httpx.Response(
            429,
            headers={"Retry-After": "1337", "X-RateLimit-Scope": "shared"},
            json={"message": "The resource is being rate limited.", "retry_after": 1336.57, "global": False},
        )
    )
    c = client(sleeps, max_wait=60.0, budget=RequestBudget(60))
    with pytest.raises(Deferred) as info:
        c.request("POST", "/channels/1/messages", json={})
    assert sleeps == [] and route.call_count == 1
    assert info.value.retry_after == 1337.0 and info.value.scope == "shared" and info.value.sent
    with pytest.raises(Deferred) as again:  # the budget remembers: not sent again
        c.request("POST", "/channels/1/messages", json={})
    assert route.call_count == 1 and not again.value.sent and 1330 < again.value.retry_after <= 1337


@respx.mock
def test_a_wait_within_max_wait_is_obeyed():
    sleeps = []
    respx.get(f"{BASE}/x.json").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "60"}, json={}), httpx.Response(200, json={})]
    )
    client(sleeps, max_wait=60.0).request("GET", "/x.json")
    assert sleeps == [60.0]


@respx.mock
def test_a_post_answered_5xx_is_not_sent_again():
    """The server may have applied it (a gateway's 502 after the app committed): only a read-back can tell."""
    sleeps = []
    route = respx.post(f"{BASE}/posts.json").mock(return_value=httpx.Response(502, json={}))
    with pytest.raises(UnsureStatus) as info:
        client(sleeps).request("POST", "/posts.json", json={})
    assert route.call_count == 1 and sleeps == []
    assert isinstance(info.value, RemoteError) and info.value.status == 502 and outcome_unknown(info.value)


@respx.mock
def test_a_post_whose_answer_timed_out_is_not_sent_again_but_one_never_sent_is():
    sleeps = []
    route = respx.patch(f"{BASE}/m/1").mock(side_effect=httpx.ReadTimeout("no answer"))
    with pytest.raises(UnsureTransport) as info:
        client(sleeps).request("PATCH", "/m/1", json={})
    assert route.call_count == 1 and isinstance(info.value, httpx.TransportError)
    refused = respx.post(f"{BASE}/n").mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json={})])
    client(sleeps).request("POST", "/n", json={})  # never reached the server: safe to send again
    assert refused.call_count == 2


@respx.mock
def test_put_and_delete_are_still_retried_on_5xx():
    sleeps = []
    route = respx.put(f"{BASE}/r").mock(side_effect=[httpx.Response(503), httpx.Response(204)])
    client(sleeps).request("PUT", "/r")
    assert route.call_count == 2
    forced = respx.post(f"{BASE}/search").mock(side_effect=[httpx.Response(503), httpx.Response(200, json={})])
    client(sleeps).request("POST", "/search", idempotent=True)
    assert forced.call_count == 2
