"""Sellix's webhooks (Settings > Security; ``X-Sellix-Signature``).

The signature is hex HMAC-SHA512 over the raw body, keyed with the shop's webhook secret. The body is
``{"event": "order:paid", "data": {...the order...}}``; only ``data.uniqid`` is read (the order is re-read through the
API). Sellix sends no delivery id, so the same body twice is the same delivery.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from adapters.webhooks import EventKind, Ignored, MalformedWebhook, WebhookEvent, read_json, short_text


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
            payload = read_json(body)
            uniqid = short_text(payload["data"]["uniqid"], "data.uniqid", 64)
            event = str(headers.get("x-sellix-event") or short_text(payload.get("event") or "", "event", 64))
        except (MalformedWebhook, KeyError, TypeError, AttributeError):
            raise MalformedWebhook('expected {"event": …, "data": {"uniqid": …}}') from None
        if not uniqid:
            raise MalformedWebhook("expected data.uniqid to name the order")
        if self.kind_of(event) is None:
            return Ignored(echo={"event": event})
        return WebhookEvent(self.source, hashlib.sha256(body).hexdigest(), "order", event, uniqid)

    def kind_of(self, topic: str) -> EventKind | None:
        return "order" if topic.startswith("order:") else None


SELLIX = SellixWebhook()
