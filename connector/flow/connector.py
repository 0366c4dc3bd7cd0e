"""The connector: the configured shop, communities, state store and features, assembled once; the CLI and the daemon
run passes on it.

Adapters are found by ``kind`` through entry points; the capabilities a configuration relies on are checked here, at
load time, so a missing one is a clear error before any pass runs.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from adapters.base import (
    Catalogue,
    CommunityAdapter,
    MemberAuthorization,
    ReviewSource,
    SharesRateLimits,
    ShopAdapter,
)
from adapters.contributions import ContributionSource
from adapters.coupons import CouponIssuer
from adapters.registry import open_community, open_shop
from connector.core.clock import utcnow
from connector.core.config import Config, ConfigError
from connector.core.logs import log
from connector.features.base import Feature, PassOptions, PassReport, Progress, Run, quiet
from connector.features.grants import GrantsFeature
from connector.features.linked_roles import LinkedRolesFeature
from connector.features.points import PointsFeature
from connector.features.products import CARD_CONFLICT, ProductsFeature
from connector.features.reviews import ReviewsFeature
from connector.flow.deliver import DeliverStage
from connector.flow.earn import EarnStage
from connector.flow.heat import HeatStage
from connector.flow.reconcile import ReconcileStage, VanishedOrdersStage
from connector.flow.redeem import RedeemDesk, RedeemStage
from connector.flow.run import Stage, run_pass, stages
from connector.state import State
from connector.state.errors import StoreError
from connector.state.snapshot import throwaway_copy


class _Guarded:
    """A stage whose database errors become a :class:`StoreError` naming it (the traceback is logged at debug)."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.name = stage.name

    def run(self, run: Run) -> None:
        try:
            self.stage.run(run)
        except SQLAlchemyError as error:
            log.debug("state store error", stage=self.name, exc_info=error)
            raise StoreError(self.name, type(error).__name__) from error


def _open_state(config: Config) -> State:
    """The configured store; a database that cannot be reached or migrated is a :class:`StoreError` naming the URL
    without its password (the traceback is logged at debug)."""
    try:
        return State.open(
            config.state_url,
            order_number_key=config.link.secret.encode() if config.link else None,
            token_key=config.link.token_key if config.link and config.link.token_key else None,
        )
    except SQLAlchemyError as error:
        log.debug("state store error", stage="open", exc_info=error)
        url = make_url(config.state_url).render_as_string(hide_password=True)
        raise StoreError(f"open ([state] url {url})", type(error).__name__) from error


@contextmanager
def _throwaway_state(config: Config) -> Iterator[State]:
    """A throw-away copy of the configured store; one that cannot be read is a :class:`StoreError`, as in
    :func:`_open_state`."""
    link = config.link
    copying = True
    try:
        with throwaway_copy(
            config.state_url,
            order_number_key=link.secret.encode() if link else None,
            token_key=link.token_key if link and link.token_key else None,
        ) as state:
            copying = False
            yield state
    except (SQLAlchemyError, sqlite3.Error) as error:
        if not copying:
            raise  # the pass's own (its stages name themselves)
        log.debug("state store error", stage="copy", exc_info=error)
        url = make_url(config.state_url).render_as_string(hide_password=True)
        raise StoreError(f"copy for the dry run ([state] url {url})", type(error).__name__) from error


def dry_run(config: Config, *, since: datetime | None = None, progress: Progress = quiet) -> PassReport:
    """``cardbridge backfill --dry-run``: the whole backfill on a throw-away copy of the state store, with no remote
    write; ``report.plan`` lists every action the real backfill would send (see ``connector.flow.preview``). The store
    itself is only read (not even created when it does not exist yet)."""
    with _throwaway_state(config) as state:
        connector = Connector(config, state=state)
        try:
            return connector.run_pass(full=True, since=since, dry_run=True, progress=progress)
        finally:
            connector.close()


class Connector:
    def __init__(
        self,
        config: Config,
        state: State | None = None,
        shop: ShopAdapter | None = None,
        communities: dict[str, CommunityAdapter] | None = None,
    ) -> None:
        self.config = config
        self.store = state or _open_state(config)
        self.shop = shop or open_shop(config)
        self.communities = (
            communities
            if communities is not None
            else {name: open_community(name, config, self.store.remote_ids) for name in config.communities}
        )
        self._check_capabilities()
        if config.state.shares_rate_limits:
            # One budget per remote for every process on the store (replicas), not one per process.
            for community in self.communities.values():
                if isinstance(community, SharesRateLimits):
                    community.share_rate_limits(self.store.rate_limits)
        self.reviews = ReviewsFeature(self.store, config, self.communities)
        if self.reviews.wanted and not isinstance(self.shop, ReviewSource):
            log.warning("shop has no reviews", kind=self.shop.kind)  # said once here, not on every pass
        #: The plug-ins of a pass, in the order they plan: points decide tier roles before grants diff them, and
        #: Linked Roles shows the points total. A new feature is a module and one line here.
        self.products = ProductsFeature(self.store, config, self.communities)
        if config.products and not isinstance(self.shop, Catalogue):
            log.warning("shop lists no catalogue: product cards show what reviews named", kind=self.shop.kind)
        self.features: list[Feature] = [
            self.reviews,
            # after the reviews: a topic their pass opened is the one the card goes into
            self.products,
            PointsFeature(self.store, config),
            GrantsFeature(),
            LinkedRolesFeature(self.store, config, self.communities),
        ]
        #: Members' requests (balance, redemptions for coupons), worked at the end of each pass.
        self.desk = RedeemDesk(self.store, config, self.shop, self.communities)
        #: Set by the daemon on SIGTERM: the pass stops between pages and between remote calls.
        self.stop_requested = threading.Event()
        #: Paid orders the last :meth:`reconcile` found gone from the shop.
        self.orders_vanished = 0

    def _check_capabilities(self) -> None:
        link = self.config.link
        if link and not isinstance(self.communities.get(link.community), MemberAuthorization):
            raise ConfigError(f"link.community: {link.community!r} cannot authorise members (it needs Discord OAuth2)")
        for name in self.config.earn.communities if self.config.earn else {}:
            if not isinstance(self.communities.get(name), ContributionSource):
                raise ConfigError(f"earn.{name}: this community cannot list posts and their likes")
        if self.config.redeem is not None:
            if not isinstance(self.shop, CouponIssuer):
                raise ConfigError(f"redeem: the {self.shop.kind!r} shop cannot make coupons")
            why = self.shop.coupons_ready()
            if why is not None:
                raise ConfigError(f"redeem: the shop cannot make coupons: {why}")

    def _run(self, report: PassReport, options: PassOptions, started: datetime | None = None) -> Run:
        return Run(
            state=self.store,
            config=self.config,
            shop=self.shop,
            communities=self.communities,
            options=options,
            report=report,
            started=started or utcnow(),
            stop=self.stop_requested,
        )

    def run_pass(
        self,
        *,
        full: bool = False,
        since: datetime | None = None,
        dry_run: bool = False,
        progress: Progress = quiet,
        order_ids: Sequence[str] | None = None,
    ) -> PassReport:
        """One pass (``cardbridge sync``/``backfill``, the daemon's jobs); see :class:`PassOptions`. A dry run plans
        into the store, so it runs only on a throw-away copy (:func:`dry_run`)."""
        if dry_run and not self.store.throwaway:
            raise ValueError("a dry run plans into its store: run it on a throw-away copy (connector.flow.dry_run)")
        options = PassOptions(full=full, since=since, dry_run=dry_run, order_ids=order_ids, progress=progress)
        run = self._run(PassReport(), options)
        steps = stages(
            self.features,
            self.communities,
            dry_run=dry_run,
            matched=[EarnStage(self.store, self.config)],
            after=[RedeemStage(self.desk), HeatStage(self.store)],
        )
        return run_pass(run, [_Guarded(stage) for stage in steps])

    @contextmanager
    def exclusive(self, job: str, wait: float = 0.0) -> Iterator[None]:
        """Hold the store's pass lock for the ``with`` block: one pass at a time across processes and hosts.

        Raises ``connector.state.locks.PassLocked`` naming the holder when another process runs a pass, at once or
        after ``wait`` seconds. The CLI's pass commands and the daemon's jobs take it around each pass.
        """
        with self.store.locks.hold(job, wait=wait):
            yield

    def reconcile(self, report: PassReport) -> list[str]:
        """Ask the shop which paid orders it still has, then read who really holds each grant; returns one line per
        drift found (see ``connector.flow.reconcile``). ``orders_vanished`` keeps how many orders were gone."""
        vanished, stage = VanishedOrdersStage(), ReconcileStage()
        run = self._run(report, PassOptions())
        _Guarded(vanished).run(run)
        _Guarded(stage).run(run)
        self.orders_vanished = vanished.count
        return vanished.found + stage.found

    def deliver(self, report: PassReport, started: datetime) -> None:
        """Send what is due in the outbox (the daemon's retry job), leaving rows planned after ``started``."""
        _Guarded(DeliverStage(self.features)).run(self._run(report, PassOptions(), started))

    def redeem(self, report: PassReport) -> None:
        """Read members' private messages and work their requests (the daemon's retry and redeem jobs)."""
        _Guarded(RedeemStage(self.desk)).run(self._run(report, PassOptions()))

    def resolve_conflict(self, conflict_id: int, keep: str) -> str:
        """``cardbridge conflicts resolve``: see :meth:`ReviewsFeature.resolve` and :meth:`ProductsFeature.resolve`."""
        conflict = next((c for c in self.store.reviews.conflicts() if c.id == conflict_id), None)
        if conflict is not None and conflict.kind == CARD_CONFLICT:
            self.store.reviews.resolve_conflict(conflict_id, keep)
            return f"conflict {conflict_id}: " + self.products.resolve(conflict.community, conflict.target, keep)
        return self.reviews.resolve(conflict_id, keep)

    def points_total(self, customer_key: str) -> int:
        return self.store.reviews.point_total(customer_key)

    def close(self) -> None:
        self.shop.close()
        for community in self.communities.values():
            community.close()
        self.store.engine.dispose()
