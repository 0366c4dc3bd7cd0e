"""``State``: the one object the rest of the connector holds to reach the state store, one attribute per section.

Each section is a small class over the same engine, and each of its public methods is one transaction, except two
that were never one: ``identities.link`` (the link commits, then the replaced account's revokes) and
``outbox.orphaned`` (a read, then a conditional claim). Sections share no private names: what they share is in
``connector.state.sql``; ``identities`` is handed ``ledger`` and ``plans`` for ``link``.
"""

from __future__ import annotations

from sqlalchemy import Engine

from connector.state.db import open_engine
from connector.state.earnings import Earnings
from connector.state.identities import Identities
from connector.state.insights import InsightStore
from connector.state.ledger import Ledger
from connector.state.link_attempts import LinkAttempts
from connector.state.locks import Locks
from connector.state.outbox import Outbox
from connector.state.planning import Plans
from connector.state.products import ProductStore
from connector.state.rate_limits import RateLimits
from connector.state.records import Records
from connector.state.redemptions import Redemptions
from connector.state.remote_ids import RemoteIds
from connector.state.replicas import Replicas
from connector.state.reviews import ReviewStore
from connector.state.status import Status
from connector.state.tokens import TokenStore
from connector.state.webhooks import WebhookStore


class State:
    """The state store behind one engine (SQLite or PostgreSQL).

    ``order_number_key`` (``[link] secret``): orders' buyer-visible numbers are kept as keyed hashes for the link page.
    ``token_key`` (``[link] token_key``, a Fernet key): members' OAuth2 tokens can be stored; without it ``tokens`` is
    None.
    """

    def __init__(self, engine: Engine, order_number_key: bytes | None = None, token_key: str | None = None) -> None:
        self.engine = engine
        #: Orders and customers as pulled from the shop, and each stream's cursor.
        self.records = Records(engine, order_number_key)
        #: What the connector has applied on each community.
        self.ledger = Ledger(engine)
        #: Dirty customers, what the planner reads, and writing its decisions.
        self.plans = Plans(engine)
        #: Which community account each customer is; finding customers by order number, id or email.
        self.identities = Identities(engine, self.ledger, self.plans, order_number_key)
        #: Actions to apply on the communities, from pending to done or dead.
        self.outbox = Outbox(engine)
        #: Ids of badges, groups and threads on the communities.
        self.remote_ids = RemoteIds(engine)
        #: Read-only figures for ``status``, the status page and metrics.
        self.status = Status(engine)
        #: Reviews, their topics and posts, conflicts and points.
        self.reviews = ReviewStore(engine)
        #: The shop's catalogue (price, stock), events to announce, and product cards.
        self.products = ProductStore(engine)
        #: Webhook deliveries, stored before they are answered.
        self.webhooks = WebhookStore(engine)
        #: Points members earn in the community.
        self.earnings = Earnings(engine)
        #: Members' requests and their redemptions of points for shop coupons.
        self.redemptions = Redemptions(engine)
        #: The link page's failed proofs (keyed hashes), shared by replicas: its brute-force brake.
        self.link_attempts = LinkAttempts(engine)
        #: One pass at a time across processes and hosts (a leased row).
        self.locks = Locks(engine)
        #: The daemons sharing this store (``cardbridge run`` replicas) and their heartbeats.
        self.replicas = Replicas(engine)
        #: Remotes' rate limits counted for every process on the store (``[state] shared_rate_limits``).
        self.rate_limits = RateLimits(engine)
        #: Keyword heat's weekly counts and cursor, and the joins the insights report makes with orders.
        self.insights = InsightStore(engine)
        #: Members' OAuth2 tokens (encrypted), or None without a ``token_key``.
        self.tokens: TokenStore | None = TokenStore(engine, token_key) if token_key else None
        #: A copy made for a dry run (``connector.state.snapshot``), deleted after the pass: the only store a dry run
        #: may plan into.
        self.throwaway = False

    @classmethod
    def open(cls, url: str, order_number_key: bytes | None = None, token_key: str | None = None) -> State:
        """Open the store at ``url`` (``sqlite:///path`` or ``postgresql://…``), migrated to the newest schema."""
        return cls(open_engine(url), order_number_key, token_key)

    def close(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()
