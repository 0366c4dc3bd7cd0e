"""A thin, typed httpx client for the Discord REST v10 endpoints CardBridge uses (member roles), and its limiter.

Reference: ``shared/specs/discord`` (CONNECTOR-NOTES.md, docs-excerpts/rate-limits.mdx). Rate limits are read from
the headers, never hard-coded: each answer tells its bucket (``X-RateLimit-Bucket``), how many requests remain and
when the bucket resets; the limit applies per bucket *and* per top-level resource (the guild). A request whose bucket
is empty waits for the reset before it is sent, and every request passes a 50-per-second global gate. A 429 says how
long to wait (``retry_after``, ``global``).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from typing import Any, Callable
from urllib.parse import quote

import httpx

from connector import __version__
from connector.http import RemoteClient

API = "https://discord.com/api/v10"
_MAJOR = re.compile(r"^/(guilds|channels|webhooks)/(\d+)")


def route_key(method: str, path: str) -> str:
    """The route a bucket is learned for: method + path with ids replaced, except the top-level (major) id."""
    major = _MAJOR.match(path)
    rest = path[major.end():] if major else path
    template = re.sub(r"/\d+", "/{id}", rest)
    return f"{method} {major.group(1) if major else ''}/{major.group(2) if major else ''}{template}"


class DiscordLimits:
    """Per-(bucket, major id) pacing from ``X-RateLimit-*`` headers plus the global 50/s gate. Thread-safe."""

    def __init__(self, per_second: int = 50, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.per_second = per_second
        self.clock, self.sleep = clock, sleep
        self._lock = threading.Lock()
        self._route_bucket: dict[str, str] = {}
        self._buckets: dict[str, tuple[int, float]] = {}  # bucket → (remaining, resets at)
        self._sent: deque[float] = deque()
        self._global_until = 0.0
        self.waited = 0.0

    def _bucket(self, method: str, path: str) -> str | None:
        key = route_key(method, path)
        bucket = self._route_bucket.get(key)
        major = _MAJOR.match(path)
        return f"{bucket}:{major.group(2) if major else ''}" if bucket else None

    def acquire(self, method: str, path: str) -> None:
        while True:
            with self._lock:
                now = self.clock()
                wait = max(0.0, self._global_until - now)
                bucket = self._bucket(method, path)
                if bucket and bucket in self._buckets:
                    remaining, reset_at = self._buckets[bucket]
                    if remaining <= 0 and reset_at > now:
                        wait = max(wait, reset_at - now)
                while self._sent and now - self._sent[0] >= 1.0:
                    self._sent.popleft()
                if len(self._sent) >= self.per_second:
                    wait = max(wait, 1.0 - (now - self._sent[0]))
                if wait <= 0:
                    self._sent.append(now)
                    if bucket and bucket in self._buckets:
                        remaining, reset_at = self._buckets[bucket]
                        self._buckets[bucket] = (remaining - 1, reset_at)
                    return
            self.waited += wait
            self.sleep(wait)

    def observe(self, method: str, path: str, response: httpx.Response) -> None:
        name = response.headers.get("x-ratelimit-bucket")
        if not name:
            return
        with self._lock:
            self._route_bucket[route_key(method, path)] = name
            try:
                remaining = int(response.headers.get("x-ratelimit-remaining", "1"))
                reset_after = float(response.headers.get("x-ratelimit-reset-after", "0"))
            except ValueError:
                return
            major = _MAJOR.match(path)
            self._buckets[f"{name}:{major.group(2) if major else ''}"] = (remaining, self.clock() + reset_after)

    def penalise(self, seconds: float, response: httpx.Response | None = None) -> None:
        with self._lock:
            is_global = response is not None and (
                response.headers.get("x-ratelimit-global") == "true"
                or (response.headers.get("content-type", "").startswith("application/json")
                    and bool(_json(response).get("global"))))
            if is_global:
                self._global_until = self.clock() + seconds


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class DiscordClient:
    def __init__(self, bot_token: str, api_base: str = API, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 30.0, sleep: Any = None) -> None:
        kwargs: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
        self.limits = DiscordLimits(**kwargs)
        self.http = RemoteClient(
            "discord",
            api_base.rstrip("/"),
            headers={
                "Authorization": f"Bot {bot_token}",
                # Discord requires this form; requests without it may be blocked.
                "User-Agent": f"DiscordBot (https://github.com/cardbridge/cardbridge, {__version__})",
            },
            budget=self.limits,
            timeout=timeout,
            transport=transport,
            **kwargs,
        )

    def member(self, guild_id: str, user_id: str) -> dict[str, Any]:
        return dict(self.http.request("GET", f"/guilds/{guild_id}/members/{user_id}").json())

    def add_role(self, guild_id: str, user_id: str, role_id: str, reason: str) -> None:
        self.http.request("PUT", f"/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
                          headers={"X-Audit-Log-Reason": quote(reason[:512], safe=" ")})

    def remove_role(self, guild_id: str, user_id: str, role_id: str, reason: str) -> None:
        self.http.request("DELETE", f"/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
                          headers={"X-Audit-Log-Reason": quote(reason[:512], safe=" ")})

    def close(self) -> None:
        self.http.close()
