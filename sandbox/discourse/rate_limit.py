"""The rate limiters in front of the forum: the site-wide admin-API key limiter (JSON 429 after routing and auth) or,
when ``plain_text_429`` is set, the per-IP middleware's text/plain 429 (before routing and auth).

From discourse/discourse:

- ``lib/auth/default_current_user_provider.rb`` (``admin_api_key_limiter``, called by ``current_user`` right after the
  API key is looked up): ``RateLimiter.new(nil, "admin_api_min", GlobalSetting.max_admin_api_reqs_per_minute, 60,
  error_code: "admin_api_key_rate_limit")``. No user in the key: one window per site, shared by every API key.
  The limit is the ``DISCOURSE_MAX_ADMIN_API_REQS_PER_MINUTE`` global setting, 60 by default
  (``config/discourse_defaults.conf``: ``max_admin_api_reqs_per_minute = 60``); :data:`ADMIN_API_DEFAULT`.
- ``lib/rate_limiter.rb`` (``PERFORM_LUA``, ``seconds_to_wait``): a ring of the last ``max`` accepted requests stamped
  in whole seconds (``Time.now.to_i``); a request is accepted when the ring is not full or its oldest stamp is at least
  ``secs`` old, else ``LimitExceeded`` with ``secs - (now - oldest)`` seconds to wait. Rejections are not recorded.
- ``app/controllers/application_controller.rb`` (``rescue_from RateLimiter::LimitExceeded``): 429 with
  ``render_json_error(e.description, type: :rate_limit, extras: {wait_seconds:, time_left:})`` and the headers
  ``Retry-After`` (the wait, as a string) and ``Discourse-Rate-Limit-Error-Code`` (the limiter's error code).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.discourse.errors import MSG_TOO_MANY, Answer, error_body
from sandbox.discourse.rails import time_left

ADMIN_WINDOW_SECONDS = 60
#: ``max_admin_api_reqs_per_minute`` of a forum whose operator left it alone.
ADMIN_API_DEFAULT = 60


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
        now = math.floor(clock())  # Time.now.to_i: whole seconds
        window = self.window
        if len(window) < limit or now - window[0] >= ADMIN_WINDOW_SECONDS:
            window.append(now)
            while len(window) > limit:
                window.popleft()
            return
        wait = max(1, math.ceil(ADMIN_WINDOW_SECONDS - (now - window[0])))  # seconds_to_wait
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
