"""Coupon codes for redemptions: derived, never stored.

A code is a keyed hash of the redemption's key (where the request came from: ``forum:pm:1234``) under
``[redeem] secret``: the same request always names the same coupon, so a retry, another replica or a second state
store asks the shop for the code first and finds the coupon an earlier try made; without the secret nobody can
compute a member's code from the (guessable) key. 12 base-32 characters: 60 bits, and no 0/O 1/I confusion for a
member typing it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

#: Every code starts with it, so the shop's admin sees which coupons CardBridge made.
PREFIX = "CB-"


def coupon_code(secret: str, key: str) -> str:
    digest = hmac.new(secret.encode(), f"coupon:{key}".encode(), hashlib.sha256).digest()
    return PREFIX + base64.b32encode(digest).decode()[:12]


def reference(key: str, status: str) -> str:
    """The line that finds an answer again after a crash (one per answer: the waiting notice and the code differ).

    Made from the request's key, not from a row id, so a second state store that reads the same message again finds
    the answer the first one sent instead of sending another."""
    return f"CardBridge ref {hashlib.sha256(key.encode()).hexdigest()[:10]}-{status}"
