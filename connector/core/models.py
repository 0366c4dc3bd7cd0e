"""Canonical shop records: what every shop adapter produces and the rest of the connector reads.

Only allow-listed fields exist here. There is deliberately no place for card secrets (卡密), payment data, addresses
or phone numbers: an adapter cannot leak what the model cannot hold.

The models also hold the bounds a record must keep to be stored, so one broken record is refused here (and
quarantined by its adapter, see :mod:`adapters.shops.quarantine`) instead of failing the state store's page:

- **Lengths** are the state store's column lengths (ids 64, customer keys and emails 320, …): PostgreSQL refuses a
  longer value and would take the whole page's transaction with it.
- **Timestamps** lie between 1970-01-01 and one day past this machine's clock (:func:`bounded_time`). Outside is not
  a date but a placeholder (``0000-00-00 00:00:00``, ``9999-12-31``) or a typo. Such a record is quarantined, not
  clamped: a clamped date would be a lie, and a date in the future would carry the sync cursor past every order still
  to come.
- **Amounts** are finite decimals below 10^12 in magnitude, kept to 8 decimals (:func:`bounded_amount`): ``NaN``,
  infinity, ``1e30`` or a non-number make the record quarantined.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from connector.core.clock import utcnow


class OrderStatus(str, enum.Enum):
    """Canonical order status. Only ``paid`` orders support grants."""

    PAID = "paid"
    UNPAID = "unpaid"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    DISPUTED = "disputed"
    #: The shop no longer has the order: in the trash (WooCommerce), soft-deleted (dujiaoka ``deleted_at``) or its row
    #: deleted (acg-faka has no other way to take a sale back). Restored, it reads as its own status again.
    DELETED = "deleted"


#: The earliest timestamp a shop record may carry; before it is a placeholder for "no date" (0000-00-00, 0001-01-01).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
#: How far past this machine's clock a shop timestamp may be (clock skew, a shop zone set wrong by hours).
FUTURE_SLACK = timedelta(days=1)
#: Amounts are below this in magnitude; 12 integer digits is more than any card shop's order.
MAX_AMOUNT = Decimal(10) ** 12
#: Decimals kept (crypto shops price in fractions of a coin); more are rounded half-even.
AMOUNT_QUANTUM = Decimal("1e-8")
#: The longest amount text read (a number of more characters is not an amount).
_AMOUNT_TEXT = 64


def bounded_time(value: datetime, field: str = "timestamp") -> datetime:
    """``value`` in UTC when it is a plausible shop timestamp (aware, from 1970 to a day ahead); ValueError if not."""
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    try:
        moment = value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset: no calendar date in UTC
        raise ValueError(f"{field} is out of the calendar's range") from None
    if moment < EARLIEST:
        raise ValueError(f"{field} is before 1970 (a placeholder, not a date)")
    if moment > utcnow() + FUTURE_SLACK:
        raise ValueError(f"{field} is more than a day in the future")
    return moment


def bounded_amount(value: object) -> Decimal:
    """An amount as a finite :class:`~decimal.Decimal` below :data:`MAX_AMOUNT`, at most 8 decimals; ValueError for
    anything else (NaN, infinity, 1e30, a boolean, text that is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise ValueError("an amount is a number or a numeric text")
    if isinstance(value, str) and len(value) > _AMOUNT_TEXT:
        raise ValueError("the amount is not a number (too long)")
    try:
        # a float through its shortest text: 9.99, not 9.9900000000000002131628…
        amount = Decimal(
            repr(value) if isinstance(value, float) else value.strip() if isinstance(value, str) else value
        )
    except InvalidOperation:
        raise ValueError("the amount is not a number") from None
    if not amount.is_finite():
        raise ValueError("the amount is not a finite number")
    if abs(amount) >= MAX_AMOUNT:
        raise ValueError("the amount is absurdly large (10^12 or more)")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        amount = amount.quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_EVEN)
    return amount if amount else abs(amount)  # no "-0.00"


def amount_text(value: object) -> str:
    """A bounded amount as plain decimal text (``"199.00"``, ``"0.00012"``; never an exponent)."""
    return format(bounded_amount(value), "f")


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


#: The state store's column lengths (connector/state/tables.py).
RecordId = Annotated[str, Field(min_length=1, max_length=64)]
ProductId = Annotated[str, Field(max_length=64)]
Key = Annotated[str, Field(min_length=1, max_length=320)]
Email = Annotated[str, Field(max_length=320)]


class _Record(BaseModel):
    # Shops number products with integers (WooCommerce, 发卡 databases) or strings (Sellix uniqids): ids are strings.
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)


class OrderLine(_Record):
    product_id: ProductId
    name: Annotated[str, Field(max_length=255)]
    quantity: int = 1


class Order(_Record):
    id: RecordId
    customer_key: Key
    #: Normalised email used to match the buyer on the community (never shown anywhere).
    email: Email | None
    status: OrderStatus
    #: A bounded decimal as plain text (see :func:`bounded_amount`); numbers are accepted and written as text.
    total: Annotated[str, Field(max_length=32)]
    currency: Annotated[str, Field(max_length=8)]
    created_at: datetime
    modified_at: datetime
    lines: tuple[OrderLine, ...]
    #: The order number the buyer sees when it is not ``id`` (dujiaoka ``order_sn``, acg-faka ``trade_no``). With it
    #: and the email a buyer can look the order up on such shops, so it is never stored: only its keyed hash, for the
    #: member link page.
    number: Annotated[str, Field(max_length=255)] | None = None

    @field_validator("created_at", "modified_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return bounded_time(value)

    @field_validator("total", mode="before")
    @classmethod
    def _amount(cls, value: object) -> str:
        return amount_text(value)

    @property
    def product_ids(self) -> frozenset[str]:
        return frozenset(line.product_id for line in self.lines)


class Customer(_Record):
    key: Key
    email: Email | None
    username: str | None = None
    display_name: str | None = None


class Quarantined(_Record):
    """A shop record the adapter could not turn into a canonical record, with the reason (and no payload)."""

    stream: Annotated[str, Field(max_length=64)]
    #: The shop's id for the record (cut to the state store's 64 characters), or ``?`` when it has none.
    record_id: RecordId
    #: Why it was set aside, for the operator: never the record's content.
    reason: str

    @field_validator("record_id", "reason", mode="before")
    @classmethod
    def _cut(cls, value: object, info: ValidationInfo) -> object:
        limit = 64 if info.field_name == "record_id" else 500
        return value[:limit] if isinstance(value, str) else value


class Review(_Record):
    """A product review. ``text`` is plain text (the shop's HTML stripped); it is untrusted member text."""

    id: RecordId
    product_id: ProductId
    email: Email | None
    reviewer: Annotated[str, Field(max_length=100)]
    rating: Annotated[int, Field(ge=0, le=5)]
    text: str
    #: The shop's moderation state: ``approved`` reviews are published; ``hold``, ``spam``, ``trash`` are not.
    status: Annotated[str, Field(max_length=16)]
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return bounded_time(value)


class Product(_Record):
    """A product the shop sells, with the facts a product card shows. A fact the shop does not give is None
    ("unknown"), never a guess: Sellix and generic REST shops give no stock here."""

    id: RecordId
    name: Annotated[str, Field(max_length=255)]
    permalink: Annotated[str, Field(max_length=1000)] | None = None
    #: The price as the shop gives it, as a bounded decimal text (``"19.90"``); None when the shop has none.
    price: Annotated[str, Field(max_length=32)] | None = None
    #: ISO code when the shop says (acg-faka and dujiaoka do not: the shop's one currency is configured there).
    currency: Annotated[str, Field(max_length=8)] | None = None
    #: True in stock, False sold out, None unknown.
    in_stock: bool | None = None
    #: How many can be bought when the shop counts (unsold cards, WooCommerce ``stock_quantity``); None when not.
    stock_count: Annotated[int, Field(ge=0)] | None = None

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, value: object) -> str | None:
        return None if value is None or value == "" else amount_text(value)
