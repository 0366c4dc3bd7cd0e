"""Discourse's outgoing webhooks (Admin > API > Webhooks; ``specs/discourse/ERRORS_RATE_LIMITS_WEBHOOKS.md`` §5).

``X-Discourse-Event-Signature`` is ``sha256=`` + hex HMAC-SHA256 over the raw body; ``X-Discourse-Event`` names the
event and ``X-Discourse-Event-Id`` the delivery. The body is ``{"<event type>": {...}}``; a ping is
``{"ping": "OK"}``. Two kinds are read: ``user_created`` (a buyer waiting for a forum account, by email) and
``post_edited`` / ``post_destroyed`` (a post CardBridge wrote may have been changed by a moderator, by post id).
:func:`private_message_post` reads a third: ``post_created`` in a personal message (a member writing to CardBridge).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from adapters.webhooks import EventKind, Ignored, MalformedWebhook, WebhookEvent, positive_id, read_json, short_text

#: The longest email address there can be (RFC 5321: 254 octets in a path).
EMAIL_MAX = 254

_KINDS: Mapping[str, EventKind] = {
    "user_created": "user",
    "post_edited": "post",
    "post_destroyed": "post",
    "post_created": "message",
}


def _field(payload: dict[str, Any], section: str, name: str) -> object:
    """``payload[section][name]`` (None when absent); a section that is not an object is malformed."""
    part = payload.get(section) or {}
    if not isinstance(part, dict):
        raise MalformedWebhook(f"expected {section!r} to be an object")
    return part.get(name)


class DiscourseWebhook:
    source = "discourse"

    def sign(self, secret: str, body: bytes) -> str:
        return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def signature(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("x-discourse-event-signature")

    def unsigned_ping(self, headers: Mapping[str, str], body: bytes) -> bool:
        return False  # Discourse signs its pings like any other event

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent | Ignored:
        event = headers.get("x-discourse-event", "")
        payload = read_json(body)
        if event == "ping" or not isinstance(payload, dict):
            return Ignored(ping=True)
        kind = self.kind_of(event)
        if kind == "user":
            resource = short_text(_field(payload, "user", "email") or "", "user.email", EMAIL_MAX).strip().lower()
        elif kind == "post":
            resource = positive_id(_field(payload, "post", "id"), "post.id")
        elif kind == "message" and (found := private_message_post(headers, body)) is not None:
            resource = found  # a post in a personal message: read back by id before anything is done with it
        else:
            return Ignored(echo={"event": event})
        delivery = headers.get("x-discourse-event-id") or hashlib.sha256(body).hexdigest()
        return WebhookEvent(self.source, delivery, kind, event, resource)

    def kind_of(self, topic: str) -> EventKind | None:
        return _KINDS.get(topic)


DISCOURSE = DiscourseWebhook()


#: ``WebHookPostSerializer#topic_archetype`` of a personal message (discourse/discourse
#: app/serializers/web_hook_post_serializer.rb at 00ec81dd).
PRIVATE_MESSAGE = "private_message"


def private_message_post(headers: Mapping[str, str], body: bytes, api_username: str | None = None) -> str | None:
    """The post id a ``post_created`` delivery names when the post is in a personal message, else None.

    Call it on a delivery whose signature was checked. ``WebHook.enqueue_post_hooks`` sends ``post_created`` for
    every new post, PMs included; the body is ``{"post": {...}}`` with ``topic_archetype``. A post by
    ``api_username`` (CardBridge's own reply) is not a message to CardBridge: None. The post is read back by id
    (:meth:`~adapters.communities.discourse.DiscourseCommunity.message`) before anything is done with it: the body
    only says where to look. Raises :class:`MalformedWebhook` for a PM post without a usable id."""
    if headers.get("x-discourse-event") != "post_created":
        return None
    payload = read_json(body)
    if not isinstance(payload, dict):
        return None
    if _field(payload, "post", "topic_archetype") != PRIVATE_MESSAGE:
        return None
    author = _field(payload, "post", "username")
    if api_username and isinstance(author, str) and author.lower() == api_username.lower():
        return None
    return positive_id(_field(payload, "post", "id"), "post.id")
