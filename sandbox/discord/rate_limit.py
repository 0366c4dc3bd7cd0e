"""Discord's rate limits: per-route buckets keyed by the bucket and the top-level resource (guild or channel id),
with ``X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket`` on every answer, 429 ``{"message", "retry_after",
"global"}`` with ``Retry-After`` and ``X-RateLimit-Scope``, and a 50/s global gate per bot (or per user's Bearer
tokens).

Source: discord/discord-api-docs developers/topics/rate-limits.mdx. Lines 14-16: buckets are per route and per
top-level resource (channel, guild, webhook). Line 45: ``X-RateLimit-Scope`` is ``user``, ``global`` or ``shared``
(a per-resource limit). Lines 49-59: a 429 has a JSON body ``message``, ``retry_after`` (float seconds) and
``global``; clients rely on ``Retry-After`` or ``retry_after``. Lines 84-102: a ``shared`` 429 ("The resource is being
rate limited.") carries the route's normal headers with ``Remaining`` *not* at zero, ``Retry-After: 1337`` and
``retry_after: 1336.57``: the resource is limited for everyone, whatever the caller's own bucket says. Line 138:
``shared`` 429s do not count towards the invalid-request limit. :meth:`RateLimiter.hold_resource` arms one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from starlette.responses import JSONResponse, Response

from sandbox.discord.common import API


@dataclass
class Bucket:
    limit: int
    window: float
    remaining: int
    reset_at: float


@dataclass
class Held:
    """A ``shared`` limit on one top-level resource: every request to it is refused until ``until``."""

    until: float
    method: str | None = None
    #: How many requests it refused.
    refused: int = 0


@dataclass(eq=False)
class RateLimiter:
    route_limit: int = 10
    route_window: float = 10.0
    global_per_second: int = 50
    buckets: dict[tuple[str, str], Bucket] = field(default_factory=dict)
    gates: dict[str, list[float]] = field(default_factory=dict)
    #: Top-level resource id (a channel, a guild) → its ``shared`` limit, armed by :meth:`hold_resource`.
    held: dict[str, Held] = field(default_factory=dict)

    def hold_resource(self, resource_id: str, seconds: float, now: float, method: str | None = None) -> Held:
        """Discord limits the resource ``resource_id`` itself (``X-RateLimit-Scope: shared``) for ``seconds`` from
        ``now`` (the sandbox's clock), for requests with ``method`` (None: every method)."""
        held = self.held[resource_id] = Held(now + seconds, method.upper() if method else None)
        return held

    def limit(
        self, bucket_name: str, major: str, now: float, gate: str = "bot", method: str = ""
    ) -> tuple[Response | None, dict[str, str]]:
        """``gate`` is who the global 50/s limit counts for: the bot, or one user's Bearer tokens."""
        stamps = self.gates[gate] = [t for t in self.gates.get(gate, []) if now - t < 1.0]
        if len(stamps) >= self.global_per_second:
            retry = round(1.0 - (now - stamps[0]), 3)
            headers = {
                "Retry-After": str(max(1, int(retry + 0.999))),
                "X-RateLimit-Global": "true",
                "X-RateLimit-Scope": "global",
            }
            return JSONResponse(
                {"message": "You are being rate limited.", "retry_after": retry, "global": True},
                status_code=429,
                headers=headers,
            ), headers
        bucket = self.buckets.get((bucket_name, major))
        if bucket is None or now >= bucket.reset_at:
            bucket = Bucket(self.route_limit, self.route_window, self.route_limit, now + self.route_window)
            self.buckets[(bucket_name, major)] = bucket
        reset_after = max(0.0, bucket.reset_at - now)
        headers = {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Bucket": bucket_name,
            "X-RateLimit-Reset": f"{bucket.reset_at:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        }
        held = self.held.get(major)
        method = (method or bucket_name.split(":", 1)[0]).upper()  # the sandbox's bucket names start with it
        if held is not None and now < held.until and held.method in (None, method):
            # rate-limits.mdx:84-102: the route's own headers (Remaining untouched, not zero), Scope shared, and the
            # resource's wait: Retry-After in whole seconds, retry_after with its decimals.
            retry = round(held.until - now, 2)
            held.refused += 1
            headers.update(
                {
                    "X-RateLimit-Remaining": str(bucket.remaining),
                    "X-RateLimit-Scope": "shared",
                    "Retry-After": str(max(1, math.ceil(retry))),
                }
            )
            return JSONResponse(
                {"message": "The resource is being rate limited.", "retry_after": retry, "global": False},
                status_code=429,
                headers=headers,
            ), headers
        if bucket.remaining <= 0:
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Scope": "user",
                    "Retry-After": str(max(1, int(reset_after + 0.999))),
                }
            )
            return JSONResponse(
                {"message": "You are being rate limited.", "retry_after": round(reset_after, 3), "global": False},
                status_code=429,
                headers=headers,
            ), headers
        bucket.remaining -= 1
        stamps.append(now)
        headers["X-RateLimit-Remaining"] = str(bucket.remaining)
        return None, headers


def bucket_of(method: str, path: str) -> tuple[str, str]:
    """Discord's bucket ids are opaque hashes; the sandbox derives one per route template and method."""
    parts = path.removeprefix(API).strip("/").split("/")
    major = parts[1] if len(parts) > 1 else ""
    template = "/".join(p if not p.isdigit() else ":id" for p in parts)
    return f"{method}:{template}"[:64].replace("/", "."), major
