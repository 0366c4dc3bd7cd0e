"""The state store's tables (SQLModel). Portable SQL only: the same tables run on SQLite and PostgreSQL.

Timestamps are aware UTC (``connector.core.clock.utcnow``). Nothing here can hold a card secret, payment data or an address.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, UniqueConstraint, false
from sqlmodel import Field, SQLModel


class Cursor(SQLModel, table=True):
    """How far a shop stream has been read. Committed in the same transaction as the page it follows."""

    __tablename__ = "cursors"
    stream: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)
    updated_at: datetime


class OrderRow(SQLModel, table=True):
    """Snapshot of one shop order (allow-listed fields only)."""

    __tablename__ = "orders"
    __table_args__ = (Index("ix_orders_customer_status", "customer_key", "status"),)
    id: str = Field(primary_key=True, max_length=64)
    customer_key: str = Field(max_length=320)
    status: str = Field(max_length=16)
    total: str = Field(max_length=32)
    currency: str = Field(max_length=8)
    #: Comma-separated shop product ids, e.g. ``",12,40,"`` (leading/trailing comma so ``LIKE '%,12,%'`` works).
    product_ids: str
    created_at: datetime
    modified_at: datetime
    #: HMAC-SHA256 of the buyer-visible order number (key: ``[link] secret``), for the member link page; None without
    #: a ``[link]`` section. The number itself is never stored.
    number_hash: str | None = Field(default=None, max_length=64, index=True)


class CustomerRow(SQLModel, table=True):
    """A shop customer: registered (``c:<id>``) or guest (``e:<email>``). ``dirty`` = needs planning."""

    __tablename__ = "customers"
    __table_args__ = (Index("ix_customers_dirty", "dirty"),)
    key: str = Field(primary_key=True, max_length=320)
    email: str | None = Field(default=None, max_length=320)
    #: True once the shop's own customer record (account email) was read, not just an order's billing email.
    profile_loaded: bool = False
    dirty: bool = True
    updated_at: datetime


class IdentityRow(SQLModel, table=True):
    """Link between a shop customer and a community account (or the fact that none was found yet)."""

    __tablename__ = "identities"
    __table_args__ = (Index("ix_identities_status", "community", "status"),)
    community: str = Field(primary_key=True, max_length=40)
    customer_key: str = Field(primary_key=True, max_length=320)
    #: ``matched`` or ``unmatched``.
    status: str = Field(max_length=16)
    remote_user_id: str | None = Field(default=None, max_length=64)
    remote_username: str | None = Field(default=None, max_length=255)
    #: How a ``matched`` link was proven (``connector.state.identities.Proof``): ``order-number``, ``forum-email``,
    #: ``verified-email``, ``signed-link`` or ``admin``. None on links made before proofs were recorded (weakest).
    proof: str | None = Field(default=None, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    updated_at: datetime


class LedgerRow(SQLModel, table=True):
    """What the connector has applied on a community (the ``A`` in desired − applied)."""

    __tablename__ = "ledger"
    community: str = Field(primary_key=True, max_length=40)
    customer_key: str = Field(primary_key=True, max_length=320)
    kind: str = Field(primary_key=True, max_length=16)
    target: str = Field(primary_key=True, max_length=255)
    #: ``granted`` or ``revoked``.
    state: str = Field(max_length=16)
    remote_username: str | None = Field(default=None, max_length=255)
    #: Remote id needed to undo the grant (Discourse: the UserBadge id).
    remote_ref: str | None = Field(default=None, max_length=64)
    updated_at: datetime


class OutboxRow(SQLModel, table=True):
    """An action to apply on a community, written before any remote call.

    Lifecycle: pending → sending → done | failed (retried later) → … → dead (parked, listed, never dropped).
    ``superseded`` rows were cancelled by a later plan before they were sent (e.g. a refund before the grant went out).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("key", name="uq_outbox_key"),
        Index("ix_outbox_status", "community", "status"),
        Index("ix_outbox_target", "community", "customer_key", "kind", "target"),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=512)
    community: str = Field(max_length=40)
    customer_key: str = Field(max_length=320)
    kind: str = Field(max_length=16)
    target: str = Field(max_length=255)
    op: str = Field(max_length=16)
    remote_username: str | None = Field(default=None, max_length=255)
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    #: ``host:pid:start`` of the process sending it (:mod:`connector.state.process`); a row left in ``sending`` by a dead owner is verified, then re-sent.
    claimed_by: str | None = Field(default=None, max_length=255)
    claimed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


class QuarantineRow(SQLModel, table=True):
    """A shop record that could not be read, with the reason. The payload is not kept (it may hold secrets)."""

    __tablename__ = "quarantine"
    stream: str = Field(primary_key=True, max_length=64)
    record_id: str = Field(primary_key=True, max_length=64)
    reason: str
    seen_at: datetime


class RemoteObjectRow(SQLModel, table=True):
    """Ids of objects the connector created or found on a community (a badge's id, a group's id)."""

    __tablename__ = "remote_objects"
    community: str = Field(primary_key=True, max_length=40)
    kind: str = Field(primary_key=True, max_length=16)
    name: str = Field(primary_key=True, max_length=255)
    remote_id: str = Field(max_length=64)


class ProductRow(SQLModel, table=True):
    """A shop product: its name and link, and the facts a product card shows (None: the shop does not say)."""

    __tablename__ = "products"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=255)
    permalink: str | None = Field(default=None, max_length=1000)
    price: str | None = Field(default=None, max_length=32)
    currency: str | None = Field(default=None, max_length=8)
    in_stock: bool | None = None
    stock_count: int | None = None
    #: In the shop's catalogue at its last read (products known only from a review are not).
    listed: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class ProductEventRow(SQLModel, table=True):
    """Something to announce that happened to a product in the shop: ``new``, ``restock`` or ``price_drop``
    (with the prices before and after). Each event is announced at most once per community: its id is the key."""

    __tablename__ = "product_events"
    id: int | None = Field(default=None, primary_key=True)
    product_id: str = Field(max_length=64)
    kind: str = Field(max_length=16)
    old_price: str | None = Field(default=None, max_length=32)
    new_price: str | None = Field(default=None, max_length=32)
    created_at: datetime


class ProductCardRow(SQLModel, table=True):
    """A product card on a community (the first post of the product's topic, or the starter message of its
    thread): what the connector last wrote there and when, for coalescing edits."""

    __tablename__ = "product_cards"
    community: str = Field(primary_key=True, max_length=40)
    product_id: str = Field(primary_key=True, max_length=64)
    topic_id: str | None = Field(default=None, max_length=64)
    post_id: str | None = Field(default=None, max_length=64)
    #: sha256 of the raw text last written.
    content_hash: str | None = Field(default=None, max_length=64)
    written_at: datetime
    #: ``posted``, or ``forum`` once an admin kept a moderator's edit of the card (CardBridge leaves it alone then).
    state: str = Field(default="posted", max_length=16)


class ReviewRow(SQLModel, table=True):
    """A shop review (member text, untrusted). ``dirty`` = re-plan its posts; ``approved`` = released from hold."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_dirty", "dirty"),)
    id: str = Field(primary_key=True, max_length=64)
    product_id: str = Field(max_length=64)
    email: str | None = Field(default=None, max_length=320)
    reviewer: str = Field(max_length=100)
    rating: int
    text: str
    status: str = Field(max_length=16)
    #: False once a full read of the shop no longer lists it (deleted in the shop).
    present: bool = True
    approved: bool = False
    dirty: bool = True
    created_at: datetime


class TopicRow(SQLModel, table=True):
    """The forum topic that holds a product's reviews, found again by its ``external_id``."""

    __tablename__ = "topics"
    community: str = Field(primary_key=True, max_length=40)
    product_id: str = Field(primary_key=True, max_length=64)
    external_id: str = Field(max_length=50)
    #: "" while the product's next topic is still to be opened (after an admin kept the shop's side of a deleted one).
    topic_id: str = Field(max_length=64)
    #: Which topic of the product this is: a moderator's deletion keeps a Discourse topic's external id taken for good,
    #: so each new topic gets the next generation, and an external id of its own.
    generation: int = Field(default=1, sa_column_kwargs={"server_default": "1"})


class PostRow(SQLModel, table=True):
    """A review's post on a community: its id (posts have no external id), what was written, the version after."""

    __tablename__ = "posts"
    community: str = Field(primary_key=True, max_length=40)
    review_id: str = Field(primary_key=True, max_length=64)
    topic_id: str | None = Field(default=None, max_length=64)
    post_id: str | None = Field(default=None, max_length=64)
    #: sha256 of the raw text the connector last wrote; ``posted`` or ``deleted``.
    content_hash: str | None = Field(default=None, max_length=64)
    remote_version: int | None = None
    state: str = Field(max_length=16)
    updated_at: datetime


class ConflictRow(SQLModel, table=True):
    """Somebody changed on the community what the connector wrote; an admin decides (keep shop or keep forum)."""

    __tablename__ = "conflicts"
    __table_args__ = (Index("ix_conflicts_open", "status"),)
    id: int | None = Field(default=None, primary_key=True)
    community: str = Field(max_length=40)
    kind: str = Field(max_length=16)
    target: str = Field(max_length=255)
    reason: str
    #: ``open``, ``kept-shop`` or ``kept-forum``.
    status: str = Field(default="open", max_length=16)
    created_at: datetime
    resolved_at: datetime | None = None


class PointEventRow(SQLModel, table=True):
    """One award or reversal of points, keyed deterministically (``order:<id>``, ``review:<id>``, ``…:reversal``)."""

    __tablename__ = "point_events"
    __table_args__ = (Index("ix_point_events_customer", "customer_key"),)
    key: str = Field(primary_key=True, max_length=128)
    customer_key: str = Field(max_length=320)
    points: int
    reason: str = Field(max_length=255)
    created_at: datetime


class WebhookEventRow(SQLModel, table=True):
    """A webhook delivery, stored before it is answered 200 (so an accepted event is never lost) and deduplicated.

    Each event is handled on its own: a failed try sets ``next_attempt_at`` (backing off); after
    ``[server] webhook_max_attempts`` tries it is parked, ``result = "dead"``. Handled and dead events are deleted
    ``webhook_retention_days`` after ``processed_at``.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id", name="uq_webhook_delivery"),
        Index("ix_webhook_events_pending", "processed_at"),
        Index("ix_webhook_events_content", "source", "content_hash"),
    )
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    delivery_id: str = Field(max_length=128)
    topic: str = Field(max_length=64)
    #: The shop order id, the forum user's email (kept until processed, then cleared), or a post id.
    resource: str = Field(max_length=320)
    received_at: datetime
    processed_at: datetime | None = None
    #: ``processed``, ``processed with problems``, ``ignored``, or ``dead`` (tried too many times).
    result: str | None = Field(default=None, max_length=255)
    #: Tries that failed so far.
    attempts: int = 0
    #: Not tried again before this (None: at once).
    next_attempt_at: datetime | None = None
    #: Why the last try failed (no email: masked).
    last_error: str | None = Field(default=None, max_length=255)
    #: SHA-256 of source, topic and body: the same content again within ``webhook_dedup_seconds`` is a duplicate.
    content_hash: str | None = Field(default=None, max_length=64)
    #: The replica (``host:pid:start``) working on the event now, until ``claimed_until`` (moved by its heartbeat): a
    #: replica that dies leaves its events to the others once the claim runs out.
    claimed_by: str | None = Field(default=None, max_length=300)
    claimed_until: datetime | None = None


class MemberTokenRow(SQLModel, table=True):
    """A member's OAuth2 grant from the link page, kept to update their Linked Roles metadata.

    The tokens are stored encrypted (Fernet, key ``[link] token_key`` from the environment); a state file or a database
    dump alone does not give access to anyone's Discord account.
    """

    __tablename__ = "member_tokens"
    community: str = Field(primary_key=True, max_length=40)
    customer_key: str = Field(primary_key=True, max_length=320)
    user_id: str = Field(max_length=64)
    #: Space-separated OAuth2 scopes granted.
    scopes: str = Field(max_length=255)
    access_token: str
    refresh_token: str
    expires_at: datetime
    #: sha256 of the metadata last written to Discord (no write when it would not change).
    metadata_hash: str | None = Field(default=None, max_length=64)
    #: Why the tokens stopped working (the member removed the app), or None while they work.
    revoked: str | None = Field(default=None, max_length=255)
    updated_at: datetime


class SpentTokenRow(SQLModel, table=True):
    """A single-use token that was used (a signed link, an OAuth2 ``state`` nonce), kept until it would have expired
    anyway so it cannot be used again, across restarts and replicas. Only a hash of the token is kept."""

    __tablename__ = "spent_tokens"
    __table_args__ = (Index("ix_spent_tokens_expires", "expires_at"),)
    #: ``<kind>:<sha256 of the token>``.
    key: str = Field(primary_key=True, max_length=96)
    expires_at: datetime


class PassLockRow(SQLModel, table=True):
    """Who runs a pass now (``connector.state.locks``): one row per lock name while it is held, deleted on release.

    ``heartbeat_at`` moves while the holder lives; a row whose heartbeat is older than the lease is a crashed holder's
    and may be taken over.
    """

    __tablename__ = "pass_locks"
    name: str = Field(primary_key=True, max_length=40)
    #: A random token per acquisition: release and heartbeat touch the row only while it is still ours.
    owner: str = Field(max_length=64)
    pid: int
    host: str = Field(max_length=255)
    #: What holds it: ``sync``, ``backfill``, ``reconcile``, or a daemon job.
    job: str = Field(max_length=40)
    since: datetime
    heartbeat_at: datetime
    #: The holder's lease in seconds: it beats four times a lease, and is taken to have crashed after one without a
    #: beat (each holder says its own, so a daemon with a short lease never takes over from a CLI pass with a long one).
    lease_seconds: float = 60.0
    #: The holder as claims name it (``host:pid:start``, :mod:`connector.state.process`): a holder restarted under
    #: the same host and pid (a container's PID 1) is still told apart from the one that crashed.
    process: str = Field(default="", max_length=300)
