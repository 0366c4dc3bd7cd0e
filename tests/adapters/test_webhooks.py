"""Webhook formats: each sender's signature and what its body names, as the daemon reads them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from adapters.webhooks import Ignored, MalformedWebhook, WebhookEvent, WebhookFormat, webhook_format

WC = webhook_format("woocommerce")
SELLIX = webhook_format("sellix")
DISCOURSE = webhook_format("discourse")


def test_the_table_knows_the_senders_and_nothing_else():
    for kind, source in (("woocommerce", "woocommerce"), ("sellix", "sellix"), ("discourse", "discourse")):
        found = webhook_format(kind)
        assert isinstance(found, WebhookFormat) and found.source == source
    assert webhook_format("discord") is None  # Discord sends CardBridge no webhooks
    assert webhook_format("dujiaoka") is None


def test_signatures_are_what_each_sender_computes():
    body = b'{"id": 42}'
    assert WC is not None and SELLIX is not None and DISCOURSE is not None
    # WooCommerce: base64 HMAC-SHA256 (WC_Webhook::generate_signature).
    assert WC.sign("s", body) == base64.b64encode(hmac.new(b"s", body, hashlib.sha256).digest()).decode()
    # Sellix: hex HMAC-SHA512.
    assert SELLIX.sign("s", body) == hmac.new(b"s", body, hashlib.sha512).hexdigest()
    # Discourse: "sha256=" + hex HMAC-SHA256.
    assert DISCOURSE.sign("s", body) == "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest()
    assert WC.signature({"x-wc-webhook-signature": "abc"}) == "abc"
    assert SELLIX.signature({"x-sellix-signature": "abc"}) == "abc"
    assert DISCOURSE.signature({"x-discourse-event-signature": "sha256=abc"}) == "sha256=abc"
    assert WC.signature({}) is None


def test_woocommerce_order_event_uses_the_delivery_id():
    assert WC is not None
    body = json.dumps({"id": 77, "billing": {"email": "a@example.com"}}).encode()
    event = WC.parse({"x-wc-webhook-topic": "order.updated", "x-wc-webhook-delivery-id": "d-9"}, body)
    assert event == WebhookEvent("woocommerce", "d-9", "order", "order.updated", "77")


def test_woocommerce_without_a_delivery_id_dedups_by_body():
    assert WC is not None
    body = b'{"id": 5}'
    event = WC.parse({}, body)
    assert isinstance(event, WebhookEvent)
    assert event.topic == "order.updated" and event.delivery_id == hashlib.sha256(body).hexdigest()


def test_woocommerce_ping_and_other_topics():
    assert WC is not None
    assert WC.unsigned_ping({}, b"webhook_id=7")
    assert not WC.unsigned_ping({"x-wc-webhook-signature": "x"}, b"webhook_id=7")  # signed: checked as usual
    assert not WC.unsigned_ping({}, b'{"id": 1}')
    product = WC.parse({"x-wc-webhook-topic": "product.created"}, b'{"id": 3}')
    assert product == Ignored(echo={"topic": "product.created"})


@pytest.mark.parametrize("body", [b"not json", b'{"id": "x"}', b"[1]", b'{"no": 1}'])
def test_woocommerce_malformed_bodies(body):
    assert WC is not None
    with pytest.raises(MalformedWebhook, match="integer id"):
        WC.parse({"x-wc-webhook-topic": "order.updated"}, body)


def test_sellix_order_event_by_header_or_body():
    assert SELLIX is not None
    body = json.dumps({"event": "order:paid", "data": {"uniqid": "abc123"}}).encode()
    event = SELLIX.parse({}, body)
    assert event == WebhookEvent("sellix", hashlib.sha256(body).hexdigest(), "order", "order:paid", "abc123")
    by_header = SELLIX.parse({"x-sellix-event": "order:created"}, body)
    assert isinstance(by_header, WebhookEvent) and by_header.topic == "order:created"
    other = SELLIX.parse({"x-sellix-event": "product:edited"}, body)
    assert other == Ignored(echo={"event": "product:edited"})
    assert not SELLIX.unsigned_ping({}, body)
    with pytest.raises(MalformedWebhook):
        SELLIX.parse({}, b'{"event": "order:paid", "data": []}')


def test_discourse_user_and_post_events():
    assert DISCOURSE is not None
    user = json.dumps({"user": {"id": 9, "username": "late", "email": " Late@Example.com "}}).encode()
    event = DISCOURSE.parse({"x-discourse-event": "user_created", "x-discourse-event-id": "5"}, user)
    assert event == WebhookEvent("discourse", "5", "user", "user_created", "late@example.com")
    post = json.dumps({"post": {"id": 31, "raw": "edited"}}).encode()
    edited = DISCOURSE.parse({"x-discourse-event": "post_edited", "x-discourse-event-id": "6"}, post)
    assert edited == WebhookEvent("discourse", "6", "post", "post_edited", "31")
    destroyed = DISCOURSE.parse({"x-discourse-event": "post_destroyed"}, post)
    assert isinstance(destroyed, WebhookEvent) and destroyed.kind == "post"
    assert destroyed.delivery_id == hashlib.sha256(post).hexdigest()


def test_discourse_ping_other_events_and_malformed():
    assert DISCOURSE is not None
    assert DISCOURSE.parse({"x-discourse-event": "ping"}, b'{"ping": "OK"}') == Ignored(ping=True)
    liked = DISCOURSE.parse({"x-discourse-event": "post_liked"}, b'{"post": {"id": 1}}')
    assert liked == Ignored(echo={"event": "post_liked"})
    with pytest.raises(MalformedWebhook, match="JSON"):
        DISCOURSE.parse({"x-discourse-event": "user_created"}, b"{")
    with pytest.raises(MalformedWebhook):
        DISCOURSE.parse({"x-discourse-event": "user_created"}, b'{"user": "late@example.com"}')


def test_stored_topics_read_back_as_kinds():
    assert WC is not None and SELLIX is not None and DISCOURSE is not None
    assert WC.kind_of("order.created") == "order" and WC.kind_of("product.updated") is None
    assert SELLIX.kind_of("order:paid") == "order" and SELLIX.kind_of("feedback:received") is None
    assert DISCOURSE.kind_of("user_created") == "user"
    assert DISCOURSE.kind_of("post_edited") == DISCOURSE.kind_of("post_destroyed") == "post"
    assert DISCOURSE.kind_of("topic_created") is None
