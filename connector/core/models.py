"""Canonical shop records: what every shop adapter produces and the rest of the connector reads.

Only allow-listed fields exist here. There is deliberately no place for card secrets (卡密), payment data, addresses
or phone numbers: an adapter cannot leak what the model cannot hold.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, field_validator


class OrderStatus(str, enum.Enum):
    """Canonical order status. Only ``paid`` orders support grants."""

    PAID = "paid"
    UNPAID = "unpaid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    DISPUTED = "disputed"


def normalise_email(email: str) -> str:
    """Emails match identities case-insensitively and without surrounding blanks."""
    return email.strip().lower()


def customer_key_for(customer_id: int | None, email: str | None) -> str | None:
    """Registered customers are keyed by shop id; guests by their normalised email."""
    if customer_id:
        return f"c:{customer_id}"
    if email and email.strip():
        return f"e:{normalise_email(email)}"
    return None


class _Record(BaseModel):
    # Shops number products with integers (WooCommerce, 发卡 databases) or strings (Sellix uniqids): ids are strings.
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


class OrderLine(_Record):
    product_id: str
    name: str
    quantity: int = 1


class Order(_Record):
    id: str
    customer_key: str
    #: Normalised email used to match the buyer on the community (never shown anywhere).
    email: str | None
    status: OrderStatus
    total: str
    currency: str
    created_at: datetime
    modified_at: datetime
    lines: tuple[OrderLine, ...]
    #: The order number the buyer sees when it is not ``id`` (dujiaoka ``order_sn``, acg-faka ``trade_no``). With it
    #: and the email a buyer can look the order up on such shops, so it is never stored: only its keyed hash, for the
    #: member link page.
    number: str | None = None

    @field_validator("created_at", "modified_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)

    @property
    def product_ids(self) -> frozenset[str]:
        return frozenset(line.product_id for line in self.lines)


class Customer(_Record):
    key: str
    email: str | None
    username: str | None = None
    display_name: str | None = None


class Quarantined(_Record):
    """A shop record the adapter could not turn into a canonical record, with the reason (and no payload)."""

    stream: str
    record_id: str
    reason: str


class Review(_Record):
    """A product review. ``text`` is plain text (the shop's HTML stripped); it is untrusted member text."""

    id: str
    product_id: str
    email: str | None
    reviewer: str
    rating: int
    text: str
    #: The shop's moderation state: ``approved`` reviews are published; ``hold``, ``spam``, ``trash`` are not.
    status: str
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)


class Product(_Record):
    id: str
    name: str
    permalink: str | None = None
