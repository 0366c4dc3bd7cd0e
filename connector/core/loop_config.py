"""``[earn]`` and ``[redeem]``: points flowing back from the community to the shop (积分兑换).

``[earn]`` mixes its own keys with one entry per community (like ``[points]``); ``[redeem]`` is a catalogue of what
points buy. Both are cross-checked against ``[communities]`` by :class:`connector.core.config.Config`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from connector.core.settings import KeyedError, RequiredStr, StrictModel, split_communities

#: The most points one option may cost, one post may earn, or a day may bring (a 64-bit sum stays far away).
MAX_POINTS = 10**9
Points = Annotated[int, Field(ge=0, le=MAX_POINTS)]


class EarnTarget(StrictModel):
    """Where and how members of one community earn points.

    Discourse: ``categories`` (names, as the forum shows them), ``per_like_received``, ``accepted_solution``.
    Discord: ``channels`` (forum channel ids), ``per_reaction``. A post earns ``per_like`` for each counted like once
    it has ``min_likes`` of them, plus ``accepted_solution``, at most ``per_post_cap``; a member earns at most
    ``daily_cap`` a day (the rest follows on later days)."""

    categories: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    per_like_received: Points = 0
    per_reaction: Points = 0
    accepted_solution: Points = 0
    min_likes: Annotated[int, Field(ge=0, le=10_000)] = 1
    daily_cap: Points = 50
    per_post_cap: Points = 30
    #: Only members with a paid order earn.
    verified_buyers_only: bool = False

    @field_validator("channels")
    @classmethod
    def _channel_ids(cls, value: list[str]) -> list[str]:
        for channel in value:
            if not channel.isdigit():
                raise ValueError(f"{channel!r}: a channel is named by its id (a number)")
        return value

    @property
    def places(self) -> list[str]:
        return [*self.categories, *self.channels]

    @property
    def per_like(self) -> int:
        return self.per_like_received or self.per_reaction


class EarnConfig(StrictModel):
    """``[earn]``: shared keys, plus one entry per community (``forum = { categories = [...], ... }``)."""

    #: Posts made in the last this many days are read each pass (likes on older posts no longer count).
    window_days: Annotated[int, Field(ge=1, le=365)] = 30
    #: Likes from accounts younger than this many days are ignored.
    new_member_days: Annotated[int, Field(ge=0, le=3650)] = 7
    communities: dict[str, EarnTarget] = Field(default_factory=dict)

    _split = model_validator(mode="before")(lambda data: split_communities(data, EarnConfig))


class CouponTerms(StrictModel):
    #: The coupon's value: an amount in the shop's currency (``"5.00"``) or a percentage (``type = "percent"``).
    amount: RequiredStr
    type: Literal["fixed_cart", "percent"] = "fixed_cart"

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str) -> str:
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError(f'{value!r} is not an amount (write it as a string, e.g. "5.00")') from None
        if not amount.is_finite() or amount <= 0 or amount > 1_000_000:
            raise ValueError("must be more than 0 and at most 1000000")
        return value

    @property
    def value(self) -> Decimal:
        return Decimal(self.amount)


class RedeemOption(StrictModel):
    points: Annotated[int, Field(ge=1, le=MAX_POINTS)]
    coupon: CouponTerms


class RedeemConfig(StrictModel):
    """``[redeem]``: what points buy, and how redemptions are made."""

    options: list[RedeemOption]
    #: A secret (32+ characters, from the environment): coupon codes are derived from it and the redemption, so only
    #: CardBridge can name a member's code and a retry finds the coupon it already made.
    secret: RequiredStr
    #: Days a coupon stays valid (0: no expiry).
    expires_days: Annotated[int, Field(ge=0, le=3650)] = 30
    #: Redemptions of more points than this wait for ``cardbridge redemptions approve ID`` (None: none wait).
    approve_over: Annotated[int, Field(ge=0)] | None = None
    #: Communities members redeem on (private messages / slash commands); empty: every configured community whose
    #: adapter has a private channel.
    communities: list[str] = Field(default_factory=list)
    #: Language of answers when a message does not show one (``zh`` or ``en``).
    language: Literal["zh", "en"] = "en"

    @field_validator("options")
    @classmethod
    def _options(cls, value: list[RedeemOption]) -> list[RedeemOption]:
        if not value:
            raise ValueError('list at least one option, e.g. [{ points = 500, coupon = { amount = "5.00" } }]')
        seen = [option.points for option in value]
        for points in seen:
            if seen.count(points) > 1:
                raise ValueError(f"two options cost {points} points")
        return value

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        if len(value) < 32:
            raise ValueError("use at least 32 random characters (e.g. `openssl rand -hex 32`)")
        return value

    def option(self, points: int) -> RedeemOption | None:
        return next((option for option in self.options if option.points == points), None)


def check_communities(section: str, names: list[str], known: dict[str, Any]) -> None:
    """Every community ``section`` names must be configured (a :class:`KeyedError` naming the first that is not)."""
    for name in names:
        if name not in known:
            raise KeyedError(f"{section}.{name}", f"no community named {name!r} (known: {', '.join(sorted(known))})")
