"""The rate limiters in front of the forum: the site-wide admin-API key limiter (JSON 429 after routing and auth) or,
when ``plain_text_429`` is set, the per-IP middleware's text/plain 429 (before routing and auth)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.discourse.errors import MSG_TOO_MANY, Answer, error_body
from sandbox.discourse.rails import time_left

ADMIN_WINDOW_SECONDS = 60


@dataclass(eq=False)
class RateLimiter:
    """A ring of the last N accepted requests; rejections are not recorded. ``per_minute=None`` (or 0): no limit."""

    per_minute: int | None = None
    #: Answer the per-IP middleware's text/plain 429 instead of the admin-API JSON one.
    plain_text_429: bool = False
    #: How many requests were answered 429.
    rejected: int = 0
    window: deque[float] = field(default_factory=deque)

    def check(self, clock: Callable[[], float]) -> None:
        """The site-wide admin key limiter: a ring of the last N accepted requests; rejections are not recorded."""
        limit = self.per_minute
        if not limit:
            return
        now = clock()
        window = self.window
        if len(window) < limit or now - window[0] >= ADMIN_WINDOW_SECONDS:
            window.append(now)
            while len(window) > limit:
                window.popleft()
            return
        wait = max(1, math.ceil(ADMIN_WINDOW_SECONDS - (now - window[0])))
        self.rejected += 1
        if self.plain_text_429:
            text = (
                "Slow down, too many requests from this IP address.\n"
                f"Please retry again in {wait} seconds.\n"
                "Error code: ip_10_secs_limit.\n"
            )
            raise Answer(429, text, {"Retry-After": str(wait), "Discourse-Rate-Limit-Error-Code": "ip_10_secs_limit"},
                         media_type="text/plain; charset=utf-8")  # fmt: skip
        left = time_left(wait)
        raise Answer(
            429,
            error_body([MSG_TOO_MANY.format(left)], "rate_limit", {"wait_seconds": wait, "time_left": left}),
            {"Retry-After": str(wait), "Discourse-Rate-Limit-Error-Code": "admin_api_key_rate_limit"},
        )
