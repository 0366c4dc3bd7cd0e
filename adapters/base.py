"""The two seams third parties plug into: a shop adapter and a community adapter.

Both are small Protocols. An adapter is found by ``kind`` through the entry points ``cardbridge.shops`` and
``cardbridge.communities`` (see :mod:`adapters.registry`), so a separate package can ship one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from connector.core.models import Customer, Order, Product, Quarantined, Review


class MalformedRecord(ValueError):
    """A shop record an adapter cannot read; the message is the quarantine reason (never the record itself)."""


@dataclass(frozen=True)
class OrderPage:
    """One page of a shop's order stream.

    ``cursor`` is opaque to the core: the adapter's own bookmark, committed with the page's records in one
    transaction and handed back on the next pass. ``None`` means "do not move the cursor for this page".
    """

    orders: Sequence[Order]
    quarantined: Sequence[Quarantined] = ()
    cursor: str | None = None


@dataclass(frozen=True)
class CustomerPage:
    customers: Sequence[Customer]
    quarantined: Sequence[Quarantined] = ()
    cursor: str | None = None


@dataclass(frozen=True)
class ReviewPage:
    reviews: Sequence[Review]
    quarantined: Sequence[Quarantined] = ()


@runtime_checkable
class ShopAdapter(Protocol):
    """Reads a shop. Implementations keep an allow-list: nothing secret may reach the canonical records."""

    kind: str

    def order_pages(self, cursor: str | None, since: datetime | None = None) -> Iterator[OrderPage]:
        """Orders changed after ``cursor`` (or, when ``cursor`` is None, since ``since``; None = all), oldest first."""
        ...

    def customer_profiles(self, keys: Sequence[str]) -> tuple[list[Customer], list[str]]:
        """Account records for the given customer keys: (found, keys the shop no longer knows)."""
        ...

    def customer_pages(self, cursor: str | None = None) -> Iterator[CustomerPage]:
        """Every customer, in a stable order, for a backfill."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ReviewSource(Protocol):
    """Optional: a shop adapter that also has product reviews."""

    def review_pages(self) -> Iterator[ReviewPage]:
        """Every review in every moderation state (edits and deletions have no timestamp to read them by)."""
        ...

    def products(self, ids: Sequence[str]) -> list[Product]: ...


@dataclass(frozen=True)
class Action:
    """One outbox action as the community adapter sees it."""

    id: int
    kind: str
    target: str
    op: str
    username: str
    #: What undoing needs (Discourse: the UserBadge id recorded when the badge was granted).
    remote_ref: str | None = None
    #: What the action writes (a rendered post, points), built from the state store when the action is sent. A
    #: ``role_connection`` payload also carries ``renew``: a callable giving a fresh member token (or None).
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    action_id: int
    ok: bool
    ref: str | None = None
    error: str | None = None
    #: Remote facts to remember (a post's topic id and version).
    data: Mapping[str, Any] = field(default_factory=dict)
    #: The remote was changed by a person (a moderator edited or deleted the post): record a conflict, do not retry.
    conflict: str | None = None
    #: Retrying cannot help (e.g. the role is above the bot's): park the action as dead now, with the error.
    permanent: bool = False
    #: Not an error of the action's own (e.g. the member has not joined yet): back to pending, no attempt counted.
    wait: bool = False


@dataclass(frozen=True)
class Match:
    user_id: str
    username: str


@dataclass
class CommunityStats:
    requests: int = 0
    writes: int = 0
    rate_limited: int = 0
    retries: int = 0


class CommunityStopped(Exception):
    """The community cannot be used at all this pass (bad credentials, forbidden): stop sending, say why once."""


@runtime_checkable
class CommunityAdapter(Protocol):
    """Applies actions on a community. Implementations batch where the API allows and never fight moderators."""

    kind: str

    def match_users(self, emails: Mapping[str, str]) -> dict[str, Match]:
        """Find community accounts for customers (key → normalised email). Missing keys are unmatched."""
        ...

    def apply(self, actions: Sequence[Action]) -> list[Outcome]:
        """Apply actions (may batch); one outcome per action. Raises :class:`CommunityStopped` to stop the pass."""
        ...

    def verify(self, action: Action) -> Outcome | None:
        """After a crash: is the action already in effect remotely? An ok Outcome if so, None if it must be sent."""
        ...

    def stats(self) -> CommunityStats: ...

    def close(self) -> None: ...
