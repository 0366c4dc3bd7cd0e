"""``[insights]``: what the community says, read back as numbers for the shop (demand posts and keyword heat).

Shared keys, plus one entry per community (like ``[earn]``): where members ask for products (a Discourse category
and/or tag, a Discord forum channel and tag). Cross-checked against ``[communities]`` by
:class:`connector.core.config.Config`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator

from connector.core.settings import StrictModel, split_communities


class InsightsTarget(StrictModel):
    """Where one community's demand posts are: a Discourse ``category`` (name, slug or id) and/or ``tag``
    (``需求``, ``request``); on Discord a forum ``channel`` (id) whose threads carry ``tag``."""

    category: str | None = None
    tag: str | None = None
    channel: str | None = None

    @field_validator("channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is not None and not value.isdigit():
            raise ValueError(f"{value!r}: a channel is named by its id (a number)")
        return value

    @field_validator("category", "tag")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty (leave the key out instead)")
        return value


class InsightsConfig(StrictModel):
    """``[insights]``: shared keys, plus one entry per community (``forum = { category = "需求", tag = "request" }``)."""

    #: Weeks the report shows (trend charts, "most talked about", the cross lists).
    weeks: Annotated[int, Field(ge=2, le=52)] = 8
    #: Weeks before this one a term's trailing average is taken over.
    trailing_weeks: Annotated[int, Field(ge=1, le=26)] = 4
    #: Posts in this week below which a term is never "rising" (the significance floor).
    floor: Annotated[int, Field(ge=1, le=10_000)] = 3
    #: This week against the trailing average: at least this many times it to rise.
    ratio: Annotated[float, Field(ge=1.0, le=100.0)] = 2.0
    #: Similarity (0–100) below which a demand post means "no product".
    match_threshold: Annotated[float, Field(ge=50.0, le=100.0)] = 80.0
    #: Posts read per community and run at most (the rest on the next run).
    max_posts: Annotated[int, Field(ge=50, le=100_000)] = 2000
    #: Demand topics listed at most.
    max_demand: Annotated[int, Field(ge=1, le=1000)] = 100
    communities: dict[str, InsightsTarget] = Field(default_factory=dict)

    _split = model_validator(mode="before")(lambda data: split_communities(data, InsightsConfig))

    @model_validator(mode="after")
    def _trailing_fits(self) -> InsightsConfig:
        if self.trailing_weeks >= self.weeks:
            raise ValueError("trailing_weeks must be less than weeks (the report keeps the weeks it compares)")
        return self
