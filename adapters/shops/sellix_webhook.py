"""Sellix's webhooks (Settings > Security; ``X-Sellix-Signature``).

The signature is hex HMAC-SHA512 over the raw body, keyed with the shop's webhook secret. The body is
``{"event": "order:paid", "data": {...the order...}}``; only ``data.uniqid`` is read (the order is re-read through the
API). Sellix sends no delivery id, so the same body twice is the same delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from adapters.webhooks import EventKind, Ignored, MalformedWebhook, WebhookEvent


class SellixWebhook:
    source = "sellix"

    def sign(self, secret: str, body: bytes) -> str:
        return hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()

    def signature(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-sellix-signature")

    def unsigned_ping(self, headers: Mapping[str, str], body: bytes) -> bool:
        return False

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent | Ignored:
        try:
            payload = json.loads(body)
            uniqid = str(payload["data"]["uniqid"])
        except (ValueError, KeyError, TypeError):
            raise MalformedWebhook('expected {"event": …, "data": {"uniqid": …}}') from None
        event = str(headers.get("x-sellix-event") or payload.get("event") or "")
        if self.kind_of(event) is None:
            return Ignored(echo={"event": event})
        return WebhookEvent(self.source, hashlib.sha256(body).hexdigest(), "order", event, uniqid)

    def kind_of(self, topic: str) -> EventKind | None:
        return "order" if topic.startswith("order:") else None


SELLIX = SellixWebhook()
