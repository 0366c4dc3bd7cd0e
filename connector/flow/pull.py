"""Pull: orders changed since the cursor (or the ones a webhook named), then the profiles of new customers.

Each page is stored with its cursor in one transaction; the next page is read while this one is written
(``read_ahead``). A record the adapter cannot read arrives quarantined with its reason and never stops the page.

Orders can also vanish: a shop that deletes (acg-faka's only way to take a sale back, a dujiaoka row deleted by hand,
a WooCommerce order deleted for good) leaves nothing a changed-since read can find. :func:`revoke_vanished` asks a
shop with :class:`~adapters.base.OrderPresence` about every stored paid order, a chunk of ids at a time; the backfill,
the reconcile and a webhook's re-read use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet

from adapters.base import PRESENCE_CHUNK, OrderLookup, OrderPage, OrderPresence
from connector.core.http import describe_error
from connector.core.logs import log
from connector.core.prefetch import read_ahead
from connector.features.base import Run

ORDERS_STREAM = "orders"
#: Customer profiles asked for per call.
PROFILES_PER_CALL = 100
#: A shop that answers none of the stored paid orders, when there are at least this many, is not believed (a wrong
#: database, a key that sees another shop): nothing is revoked and the pass reports an error instead.
IMPLAUSIBLE_ALL_GONE = 20
#: Gone ids held back while the shop has answered none of the orders asked about yet (bounded memory: past this many,
#: the shop is not believed either).
PENDING_LIMIT = 100_000
#: A backfill that walks the whole shop remembers at most this many order ids, and asks the shop only about the stored
#: paid orders its walk did not see (past the limit it forgets them and asks about every one: memory stays bounded).
SEEN_LIMIT = 500_000


class ShopAnswerImplausible(Exception):
    """The shop's answer to a presence check cannot be right; revoking on it would take every grant away."""


def revoke_vanished(run: Run, seen: AbstractSet[str] = frozenset()) -> int:
    """Store the paid orders the shop no longer has as ``deleted`` (their customers are planned again); the number of
    such orders. Orders the shop answers are stored as they are now (a trashed one is ``deleted`` too). ``seen``: ids
    the shop has just answered (a backfill's walk), not asked about again.

    Deletions are believed once the shop has answered any order at all (an admin may delete thousands, e.g.
    acg-faka's export-and-delete); until then they are held back, and a shop that answers none of at least
    :data:`IMPLAUSIBLE_ALL_GONE` paid orders raises :class:`ShopAnswerImplausible` with nothing revoked."""
    shop, records = run.shop, run.state.records
    if not isinstance(shop, OrderPresence):
        return 0
    vanished, after, believed, pending = 0, None, bool(seen), list[str]()
    while ids := records.paid_order_ids(after, PRESENCE_CHUNK):
        if run.stop.is_set():
            return vanished
        after = ids[-1]
        unseen = [order_id for order_id in ids if order_id not in seen]
        if not unseen:
            continue
        page = shop.orders_present(unseen)
        answered = {order.id for order in page.orders} | {record.record_id for record in page.quarantined}
        records.save_orders_page(ORDERS_STREAM, page.orders, page.quarantined, None)
        pending += [order_id for order_id in unseen if order_id not in answered]
        believed = believed or bool(answered)
        if believed:
            vanished += records.mark_orders_deleted(pending)
            pending = []
        elif len(pending) > PENDING_LIMIT:
            raise _implausible(len(pending))
    if pending and len(pending) >= IMPLAUSIBLE_ALL_GONE:
        raise _implausible(len(pending))
    vanished += records.mark_orders_deleted(pending)
    if vanished:
        log.warning("orders gone from the shop", count=vanished)
    return vanished


def _implausible(count: int) -> ShopAnswerImplausible:
    return ShopAnswerImplausible(
        f"the shop has none of the {count} paid orders the state store holds (is it the right shop?); nothing was "
        "revoked"
    )


class PullStage:
    name = "pull"

    def run(self, run: Run) -> None:
        try:
            if run.options.order_ids is not None:
                self._orders_by_id(run)
            else:
                self._orders(run)
        except Exception as error:  # any adapter, any driver: the pass goes on to deliver what is stored
            reason = describe_error(error)
            run.report.errors.append(f"shop: {reason}")
            log.error("pull failed", error=reason)

    def _orders_by_id(self, run: Run) -> None:
        shop = run.shop
        wanted = list(run.options.order_ids or ())
        if not wanted or not isinstance(shop, OrderLookup | OrderPresence):
            return
        if isinstance(shop, OrderPresence):  # a webhook for a deleted order: absence is the news
            for start in range(0, len(wanted), PRESENCE_CHUNK):
                self._named(run, wanted[start : start + PRESENCE_CHUNK], shop.orders_present, gone_too=True)
        else:
            self._named(run, wanted, shop.orders_by_id, gone_too=False)
        self._profiles(run)

    @staticmethod
    def _named(run: Run, ids: Sequence[str], read: Callable[[Sequence[str]], OrderPage], gone_too: bool) -> None:
        records = run.state.records
        page = read(ids)
        result = records.save_orders_page(ORDERS_STREAM, page.orders, page.quarantined, None)
        run.report.orders_read += len(page.orders)
        run.report.orders_changed += result.inserted + result.updated
        if gone_too:
            answered = {order.id for order in page.orders} | {record.record_id for record in page.quarantined}
            run.report.orders_changed += records.mark_orders_deleted([i for i in ids if i not in answered])

    def _orders(self, run: Run) -> None:
        records, report = run.state.records, run.report
        cursor = None if run.options.full else records.get_cursor(ORDERS_STREAM)
        # A backfill from the beginning reads every order the shop has: what it saw needs no presence check.
        seen: set[str] | None = set() if run.options.full and run.options.since is None else None
        # A walk by modified date re-reads the orders that share the last second of a page (the next page starts "at
        # or after" it): count each order once, so "orders read" is the number of orders, not of records fetched.
        read: set[str] | None = set()
        for page in read_ahead(run.shop.order_pages(cursor, since=run.options.since)):
            if run.stop.is_set():
                return
            ids = [order.id for order in page.orders] + [record.record_id for record in page.quarantined]
            if read is not None:
                fresh = [i for i in ids if i not in read]
                read.update(fresh)
                if len(read) > SEEN_LIMIT:  # bounded memory: past the limit every record counts
                    read = None
            else:
                fresh = ids
            if seen is not None:
                seen.update(order.id for order in page.orders)
                seen.update(record.record_id for record in page.quarantined)
                if len(seen) > SEEN_LIMIT:
                    seen = None
            result = records.save_orders_page(ORDERS_STREAM, page.orders, page.quarantined, page.cursor)
            report.orders_read += len(fresh)
            report.orders_changed += result.inserted + result.updated
            report.quarantined += len(page.quarantined)
            for record in page.quarantined:
                log.warning(
                    "record quarantined", stream=record.stream, record_id=record.record_id, reason=record.reason
                )
            run.options.progress("pull", report.orders_read, None)
        if run.options.full:
            report.orders_changed += revoke_vanished(run, seen or frozenset())
            for customer_page in run.shop.customer_pages():
                records.save_customer_profiles(customer_page.customers)
        self._profiles(run)

    def _profiles(self, run: Run) -> None:
        records = run.state.records
        while keys := records.customers_without_profile(limit=PROFILES_PER_CALL):
            found, missing = run.shop.customer_profiles(keys)
            records.save_customer_profiles(found)
            records.mark_profiles_missing(missing)
