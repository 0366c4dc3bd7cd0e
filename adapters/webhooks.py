"""Webhook formats: how a shop or a community signs its webhooks and names what changed.

Each format lives beside the adapter whose sender it describes (``adapters/shops/woocommerce_webhook.py``, …) and is
one small object behind :class:`WebhookFormat`. The daemon owns what every webhook needs whatever its format: the
body limit while reading, the constant-time signature comparison, deduplication by delivery id, and storing the
event before the 200. A format only says where the signature is, how it is computed, and what the body names.

:func:`webhook_format` picks the format for a configured ``kind`` from the table below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Literal, Protocol, runtime_checkable

#: What a webhook event tells the daemon to do: re-read an order, match a new user, check a post we wrote.
EventKind = Literal["order", "user", "post"]


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
