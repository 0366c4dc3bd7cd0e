"""``[products]``: product cards in the community and announcements of what happens to products (商家入驻).

``cards`` names the communities where each product's page carries a card (Discourse: the first post of the product's
review topic, in the ``[reviews.<name>]`` category; Discord: the starter message of the product's thread in the
``[reviews.<name>]`` forum channel). ``[products.announce]`` has one entry per community that announces, opt-in.
Cross-checked against ``[communities]`` by :class:`connector.core.config.Config`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from connector.core.settings import KeyedError, StrictModel

#: What can be announced: a product new in the shop, back in stock, or cheaper by ``price_drop_percent`` or more.
AnnounceEvent = Literal["new", "restock", "price_drop"]
ALL_EVENTS: tuple[AnnounceEvent, ...] = ("new", "restock", "price_drop")


class AnnounceTarget(StrictModel):
    """Where one community announces: a Discourse ``category`` (by name, created if missing) or a Discord
    ``channel`` (id); ``max_per_day`` announcements a UTC day at most (the rest are dropped with a log line)."""

    category: str | None = None
    channel: str | None = None
    events: list[AnnounceEvent] = Field(default_factory=lambda: list(ALL_EVENTS))
    price_drop_percent: Annotated[Decimal, Field(gt=0, le=100)] = Decimal(10)
    max_per_day: Annotated[int, Field(ge=0, le=1000)] = 3

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and not value.isdigit():
            raise ValueError("channel is the channel's id (a number: right-click the channel > Copy Channel ID)")
        return value

    @model_validator(mode="after")
    def _where(self) -> AnnounceTarget:
        if (self.category is None) == (self.channel is None):
            raise KeyedError("category", "name one place: category (Discourse) or channel (Discord)")
        return self


class ProductsConfig(StrictModel):
    """``[products]``: where product cards go, how often a card may be edited, and announcements."""

    #: Communities whose product pages carry a product card.
    cards: list[str] = Field(default_factory=list)
    #: A card is edited at most once in this many seconds; the last value wins (a price changed twenty times in an
    #: hour edits the card once in that hour, then once more with the last price).
    card_edit_every: Annotated[int, Field(ge=0, le=7 * 86400)] = 3600
    announce: dict[str, AnnounceTarget] = Field(default_factory=dict)
