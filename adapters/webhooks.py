"""Webhook formats: how a shop or a community signs its webhooks and names what changed.

Each format lives beside the adapter whose sender it describes (``adapters/shops/woocommerce_webhook.py``, …) and is
one small object behind :class:`WebhookFormat`. The daemon owns what every webhook needs whatever its format: the
body limit while reading, the constant-time signature comparison, deduplication by delivery id, and storing the
event before the 200. A format only says where the signature is, how it is computed, and what the body names.

:func:`webhook_format` picks the format for a configured ``kind`` from the table below.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Literal, Protocol, runtime_checkable

#: What a webhook event tells the daemon to do: re-read an order, match a new user, check a post we wrote, read a
#: member's private message to CardBridge.
EventKind = Literal["order", "user", "post", "message"]


@dataclass(frozen=True)
class WebhookEvent:
    """One delivery worth storing. ``resource`` names the thing to re-read (an order id, a user's email, a post id)."""

    source: str
    delivery_id: str
    kind: EventKind
    #: The sender's own name for the event (``order.updated``, ``order:paid``, ``post_edited``), stored with it.
    topic: str
    resource: str


@dataclass(frozen=True)
class Ignored:
    """A delivery answered 200 and not stored: a ping, or an event CardBridge does not act on."""

    ping: bool = False
    #: The sender's name for the event, under the sender's own word for it, echoed in the answer
    #: (``{"topic": "product.created"}``).
    echo: Mapping[str, str] = field(default_factory=dict)


class MalformedWebhook(ValueError):
    """A signed body that does not say what the format promises; the message says what was expected (the 400)."""


#: The largest id a stored event names (a signed 64-bit integer, as shops and forums keep them).
MAX_ID = 2**63 - 1


def read_json(body: bytes) -> Any:
    """The body as JSON; anything else (bad UTF-8, bad JSON, nesting too deep to parse) is malformed."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedWebhook("expected JSON") from None


def positive_id(value: object, what: str) -> str:
    """An id as the sender writes it (a JSON integer, or a string of digits) → its decimal text.

    ``true``, ``12.5``, ``1e400``, ``NaN``, negative or past 64 bits: malformed.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise MalformedWebhook(f"expected {what} to be a positive integer")
    return str(value)


def short_text(value: object, what: str, limit: int) -> str:
    """A text field of at most ``limit`` characters that can be stored (valid UTF-8, no control characters)."""
    if not isinstance(value, str) or len(value) > limit or not value.isprintable():
        raise MalformedWebhook(f"expected {what} to be a text of at most {limit} characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise MalformedWebhook(f"expected {what} to be valid text") from None
    return value


@runtime_checkable
class WebhookFormat(Protocol):
    """How one sender signs and shapes its webhooks.

    ``headers`` are looked up by lower-case name (Starlette's ``Headers``, or a dict with lower-case keys).
    """

    #: The sender's name: the path segment (``/webhooks/<source>``) and the ``source`` of stored events and metrics.
    source: str

    def sign(self, secret: str, body: bytes) -> str:
        """The signature header's value a sender holding ``secret`` computes over the raw ``body``."""
        ...

    def signature(self, headers: Mapping[str, str]) -> str | None:
        """The signature the request presents (None: unsigned)."""
        ...

    def unsigned_ping(self, headers: Mapping[str, str], body: bytes) -> bool:
        """An unsigned hello the sender posts when a webhook is created, answered 200 before any signature check."""
        ...

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent | Ignored:
        """What a signed delivery names; raises :class:`MalformedWebhook` when the body is not what it should be."""
        ...

    def kind_of(self, topic: str) -> EventKind | None:
        """The kind of a stored event, from its topic (None: nothing to do)."""
        ...


#: ``kind`` of a configured shop or community → the module and attribute of its webhook format. Named, not imported:
#: the formats import the types above, and only the daemon's configured kinds are loaded.
FORMATS: Mapping[str, tuple[str, str]] = {
    "woocommerce": ("adapters.shops.woocommerce_webhook", "WOOCOMMERCE"),
    "sellix": ("adapters.shops.sellix_webhook", "SELLIX"),
    "discourse": ("adapters.communities.discourse_webhook", "DISCOURSE"),
}


def webhook_format(kind: str) -> WebhookFormat | None:
    """The webhook format of an adapter kind; None when that kind sends no webhooks CardBridge reads."""
    if kind not in FORMATS:
        return None
    module, name = FORMATS[kind]
    found = getattr(import_module(module), name)
    if not isinstance(found, WebhookFormat):
        raise TypeError(f"{module}.{name} is not a WebhookFormat")
    return found
