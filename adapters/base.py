"""The two seams third parties plug into: a shop adapter and a community adapter, and the optional capabilities.

Both seams are small Protocols. An adapter is found by ``kind`` through the entry points ``cardbridge.shops`` and
``cardbridge.communities`` (see :mod:`connector.core.plugins`), so a separate package can ship one. Its class declares
its settings as a class attribute, ``settings = MySettings``: a model subclassing
:class:`~connector.core.settings.ShopSettings` or :class:`~connector.core.settings.CommunitySettings` with the keys it
takes; the adapter is built with the validated instance (a shop: ``cls(settings)``; a community:
``cls(name, settings, rules=..., cache=...)``). Without the attribute, the table may hold only the base's keys.

What only some adapters can do is a capability: a runtime-checkable Protocol the caller tests with ``isinstance``
(:class:`OrderLookup`, :class:`OrderPresence`, :class:`HolderListing`, :class:`MemberCheck`, :class:`PostReader`,
:class:`ThreadCheck`, :class:`UserLookup`, :class:`MemberAuthorization`, :class:`SharesRateLimits`). Nothing outside an
adapter reaches into its clients.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from connector.core.budget import LimitStore
from connector.core.models import Customer, Order, Product, Quarantined, Review
from connector.core.payloads import Payload, Skip, Unsendable


class MalformedRecord(ValueError):
    """A shop record an adapter cannot read; the message is the quarantine reason (never the record itself).

    Adapters read records through :func:`adapters.shops.quarantine.read_records`, which quarantines a record whatever
    it raises; this exception is how a parse function says why in words."""


T = TypeVar("T")


def one_per_id(items: Sequence[T], key: Callable[[T], str]) -> Sequence[T]:
    """The last of the items sharing a key (a shop may list a record twice on one page, e.g. an order once per line):
    a page is stored in one transaction, and a twin would fail it."""
    last = {key(item): item for item in items}
    return items if len(last) == len(items) else tuple(last.values())


@dataclass(frozen=True)
class OrderPage:
    """One page of a shop's order stream: one order per id (the last, if the shop listed one twice).

    ``cursor`` is opaque to the core: the adapter's own bookmark, committed with the page's records in one
    transaction and handed back on the next pass. ``None`` means "do not move the cursor for this page".
    """

    orders: Sequence[Order]
    quarantined: Sequence[Quarantined] = ()
    cursor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "orders", one_per_id(self.orders, lambda order: order.id))


@dataclass(frozen=True)
class CustomerPage:
    customers: Sequence[Customer]
    quarantined: Sequence[Quarantined] = ()
    cursor: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "customers", one_per_id(self.customers, lambda customer: customer.key))


@dataclass(frozen=True)
class ReviewPage:
    reviews: Sequence[Review]
    quarantined: Sequence[Quarantined] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "reviews", one_per_id(self.reviews, lambda review: review.id))


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


@runtime_checkable
class Catalogue(Protocol):
    """Optional: a shop adapter that lists the products it sells, with the facts a product card shows (price, in
    stock or sold out, how many). A database shop counts unsold cards and never selects their content."""

    def catalogue(self) -> Iterator[list[Product]]:
        """Every product on sale, a page at a time, in a stable order."""
        ...


@runtime_checkable
class OrderLookup(Protocol):
    """Optional: a shop adapter that re-reads given orders (a webhook named them) without moving the cursor."""

    def orders_by_id(self, ids: Sequence[str]) -> OrderPage: ...


#: Ids one :meth:`OrderPresence.orders_present` call is given at most (callers chunk; adapters may chunk further).
PRESENCE_CHUNK = 500


@runtime_checkable
class OrderPresence(Protocol):
    """Optional: a shop whose answer for given order ids is complete, so an id it leaves out is gone from the shop.

    The reconcile and the backfill ask it about the orders the state store holds as paid (at most
    :data:`PRESENCE_CHUNK` ids a call) and store a left-out id as ``deleted``: acg-faka takes a sale back only by
    deleting its row, dujiaoka's rows can be deleted by hand, WooCommerce deletes orders for good. An order the shop
    still has but hides (WooCommerce's trash) is answered with status ``deleted``. Implement it only when absence is
    proof: a shop whose by-id read can miss an order that exists must not claim this capability.
    """

    def orders_present(self, ids: Sequence[str]) -> OrderPage:
        """The orders among ``ids`` the shop still has, as they are now (an unreadable one quarantined)."""
        ...


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
    #: What the action writes (a rendered post, points), built from the state store when the action is sent; None
    #: for grants. See :mod:`connector.core.payloads`.
    payload: Payload = None
    #: The community account's stable id when the identity store has it (``username`` may be out of date: members
    #: rename themselves). An adapter that finds the account under another name reports it in the outcome's
    #: ``data[CURRENT_USERNAME]``; the connector then stores the new name for later actions.
    user_id: str | None = None


#: The :attr:`Outcome.data` key under which an adapter reports the name an action's account has now.
CURRENT_USERNAME = "current_username"


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
    #: The request went out but its effect is not visible yet (an asynchronous job, e.g. a Discourse mass award):
    #: verified on a later pass, like a crash's orphan, before anything is sent again.
    unknown: bool = False


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
class MassGrants(Protocol):
    """Optional: a community that applies many grants of one target in one request (Discourse's mass badge award).

    Delivery hands it every due grant of one ``kind``/target together when there are more than
    :meth:`mass_threshold` of them, and verifies interrupted ones together with :meth:`verify_many`."""

    def mass_threshold(self, kind: str) -> int | None:
        """More than this many grants of one target of ``kind`` go as one batch; None: never."""
        ...

    def verify_many(self, actions: Sequence[Action]) -> dict[int, Outcome | None]:
        """Like ``verify`` for grants of one target, with one read of the target's holders."""
        ...


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


def settled_payload(action: Action) -> Outcome | None:
    """The outcome every adapter gives the payloads that write nothing: :class:`Skip` succeeds without a call (the
    next plan decides), :class:`Unsendable` fails for good with its reason. None for any other payload."""
    if isinstance(action.payload, Skip):
        return Outcome(action.id, True, data={"skipped": True})
    if isinstance(action.payload, Unsendable):
        return Outcome(action.id, False, error=action.payload.reason, permanent=True)
    return None


def wrong_payload(action: Action, expected: type) -> Outcome:
    """A payload the adapter cannot write for this kind of action: a permanent failure naming both."""
    got = type(action.payload).__name__ if action.payload is not None else "no payload"
    return Outcome(
        action.id, False, permanent=True, error=f"a {action.kind!r} action needs a {expected.__name__}, got {got}"
    )


# ---- remote ids ------------------------------------------------------------------------------------------------------


class IdCache(Protocol):
    """Where remote object ids (a badge's, a product's thread) are remembered between passes; the core backs it with
    the state store, so a crash after a remote object was created cannot make a twin."""

    def get(self, kind: str, name: str) -> str | None: ...

    def set(self, kind: str, name: str, remote_id: str | None) -> None: ...


class MemoryCache:
    """An :class:`IdCache` for one process (tests, tools)."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], str] = {}

    def get(self, kind: str, name: str) -> str | None:
        return self._ids.get((kind, name))

    def set(self, kind: str, name: str, remote_id: str | None) -> None:
        if remote_id is None:
            self._ids.pop((kind, name), None)
        else:
            self._ids[(kind, name)] = remote_id


# ---- community capabilities ------------------------------------------------------------------------------------------


@runtime_checkable
class HolderListing(Protocol):
    """A community that lists who holds a grant (Discourse: badge holders, group members), for the reconcile."""

    def holders(self, kind: str, target: str) -> set[str]:
        """Lower-cased usernames that hold the ``kind`` (badge, group) named ``target`` now."""
        ...


@runtime_checkable
class MemberCheck(Protocol):
    """A community that cannot list holders but can read the members CardBridge granted to (Discord roles)."""

    def who_holds(
        self, granted: Mapping[tuple[str, str], Sequence[str]]
    ) -> dict[tuple[str, str], tuple[set[str], set[str]]]:
        """For each granted (kind, target): (members who hold it now, members no longer in the community). A
        (kind, target) the community cannot tell about is left out of the answer."""
        ...


@dataclass(frozen=True)
class RemotePost:
    """A post as the community has it now, read back to tell a moderator's edit or deletion from our own write."""

    post_id: str
    raw: str
    version: int | None
    deleted: bool
    last_editor: str | None


@runtime_checkable
class PostReader(Protocol):
    """A community whose posts CardBridge can read back (Discourse)."""

    def read_post(self, post_id: str) -> RemotePost | None:
        """The post, or None when it is gone for good (a deleted post that can still be read says ``deleted``)."""
        ...


@runtime_checkable
class ThreadCheck(Protocol):
    """A community whose review threads CardBridge can look for (Discord forum threads)."""

    def thread_exists(self, thread_id: str) -> bool: ...


@runtime_checkable
class UserLookup(Protocol):
    """A community that finds an account by the name an admin types (``cardbridge link --forum-user``)."""

    def find_user(self, username: str) -> Match | None: ...


@runtime_checkable
class SharesRateLimits(Protocol):
    """A community whose rate limits can be counted in a store every replica sees, so several processes calling it
    stay within one budget together (Discourse: the forum's admin-API window; Discord: the bot's global gate, its
    buckets and 429 holds). Without the call, the adapter paces itself in-process."""

    def share_rate_limits(self, store: LimitStore) -> None:
        """Pace every later request through ``store`` (called once, after opening, before the first request). Keys
        name the remote as every replica configures it (a forum's URL, a hash of a bot's token), never a secret."""
        ...


# ---- members who authorise the community's application ---------------------------------------------------------------


@dataclass(frozen=True)
class Tokens:
    """A member's OAuth2 tokens, as the token endpoint answers them."""

    access_token: str
    refresh_token: str
    expires_at: float
    scopes: frozenset[str]


class OAuthError(Exception):
    """The token endpoint refused (``invalid_grant``: the code was used or expired, or the member revoked the app)."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error


class MemberOAuth(Protocol):
    """One application's OAuth2 authorization-code flow, and the calls made with a member's own token."""

    @property
    def oauth_base(self) -> str:
        """The site whose authorize page members are sent to (the link page allows it as a form target)."""
        ...

    def authorize_url(self, redirect_uri: str, scopes: Sequence[str], state: str) -> str: ...

    def exchange(self, code: str, redirect_uri: str) -> Tokens:
        """Tokens for an authorization code; :class:`OAuthError` when the code is refused."""
        ...

    def refresh(self, refresh_token: str) -> Tokens:
        """New tokens (the refresh token rotates: store both at once); :class:`OAuthError` when the grant is gone."""
        ...

    def me(self, access_token: str) -> Mapping[str, Any]:
        """The member's own account (``id``, ``username``, ``global_name``)."""
        ...

    def set_role_connection(self, access_token: str, connection: Mapping[str, Any]) -> Mapping[str, Any]:
        """Write the member's Linked Roles connection (``platform_name``, ``metadata``)."""
        ...


@runtime_checkable
class MemberAuthorization(Protocol):
    """A community whose members authorise its application themselves (Discord: the link page, Linked Roles)."""

    @property
    def oauth(self) -> MemberOAuth | None:
        """The application's OAuth2 side; None when the community is not configured for it."""
        ...

    def add_member(self, user_id: str, access_token: str) -> bool:
        """Add a member who authorised joining (``guilds.join``) to the community: True if added, False if they were
        in it already."""
        ...
