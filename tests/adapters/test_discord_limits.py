"""Discord's limiter and long waits (respx): a ``shared`` 429 of 1337 s holds that bucket on that channel only, and
is never slept (discord/discord-api-docs developers/topics/rate-limits.mdx:14-16, 45, 84-102)."""

from __future__ import annotations

import httpx
import pytest
import respx

from adapters.communities.discord_client import API, DiscordClient
from connector.core.http import Deferred

SHARED = httpx.Response(
    429,
    headers={
        "Retry-After": "1337",
        "X-RateLimit-Limit": "10",
        "X-RateLimit-Remaining": "9",
        "X-RateLimit-Reset-After": "64.57",
        "X-RateLimit-Bucket": "abcd1234",
        "X-RateLimit-Scope": "shared",
    },
    json={"message": "The resource is being rate limited.", "retry_after": 1336.57, "global": False},
)
OK = httpx.Response(
    200,
    headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9", "X-RateLimit-Bucket": "abcd1234"},
    json={"id": "5"},
)


@respx.mock
def test_a_shared_429_holds_that_channel_only_and_is_never_slept():
    sleeps: list[float] = []
    client = DiscordClient("t", API, sleep=sleeps.append, max_wait=60.0)
    held = respx.post(f"{API}/channels/111/messages").mock(return_value=SHARED)
    other = respx.post(f"{API}/channels/222/messages").mock(return_value=OK)
    role = respx.put(f"{API}/guilds/9/members/1/roles/2").mock(return_value=httpx.Response(204))
    with pytest.raises(Deferred) as info:
        client.send_message("111", {"content": "x"})
    assert info.value.scope == "shared" and info.value.retry_after == 1337.0
    with pytest.raises(Deferred) as again:
        client.send_message("111", {"content": "y"})
    assert not again.value.sent and held.call_count == 1  # held locally: not sent to a limited resource
    client.send_message("222", {"content": "z"})  # the same bucket on another channel goes on
    client.add_role("9", "1", "2", "r")  # and another bucket
    assert other.call_count == 1 and role.call_count == 1
    assert sleeps == []


@respx.mock
def test_a_short_user_429_is_waited_for():
    sleeps: list[float] = []
    client = DiscordClient("t", API, sleep=sleeps.append, max_wait=60.0)
    user = httpx.Response(
        429,
        headers={
            "Retry-After": "2",
            "X-RateLimit-Bucket": "b",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Scope": "user",
        },
        json={"message": "You are being rate limited.", "retry_after": 1.5, "global": False},
    )
    route = respx.post(f"{API}/channels/111/messages").mock(side_effect=[user, OK])
    client.send_message("111", {"content": "x"})
    assert route.call_count == 2 and sleeps and sleeps[0] == 2.0
