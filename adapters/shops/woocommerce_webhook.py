"""WooCommerce's webhooks (WooCommerce > Settings > Advanced > Webhooks; ``specs/shops/woocommerce/docs/wc_webhooks.md``).

``X-WC-Webhook-Signature`` is base64 of HMAC-SHA256 over the raw body, keyed with the webhook's secret. The body is
the order as the REST API shows it; only its ``id`` is read (the order is re-read through the API, which keeps the
allow-list in one place). ``X-WC-Webhook-Delivery-ID`` is the delivery log id; a redelivery keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from adapters.webhooks import EventKind, Ignored, MalformedWebhook, WebhookEvent, positive_id, read_json


class WooCommerceWebhook:
    source = "woocommerce"

    def sign(self, secret: str, body: bytes) -> str:
        return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()

    def signature(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-wc-webhook-signature")

    def unsigned_ping(self, headers: Mapping[str, str], body: bytes) -> bool:
        # WooCommerce pings a new webhook's URL with an unsigned `webhook_id=N` form body.
        return self.signature(headers) is None and body.startswith(b"webhook_id=")

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent | Ignored:
        try:
            payload = read_json(body)
            order_id = positive_id(payload["id"] if isinstance(payload, dict) else None, "id")
        except (MalformedWebhook, KeyError):
            raise MalformedWebhook("expected a JSON object with an integer id") from None
        topic = headers.get("x-wc-webhook-topic", "order.updated")
        if self.kind_of(topic) is None:
            return Ignored(echo={"topic": topic})
        delivery = headers.get("x-wc-webhook-delivery-id") or hashlib.sha256(body).hexdigest()
        return WebhookEvent(self.source, delivery, "order", topic, order_id)

    def kind_of(self, topic: str) -> EventKind | None:
        return "order" if topic.startswith("order.") else None


WOOCOMMERCE = WooCommerceWebhook()
