"""Pull: orders changed since the cursor (or the ones a webhook named), then the profiles of new customers.

Each page is stored with its cursor in one transaction; the next page is read while this one is written
(``read_ahead``). A record the adapter cannot read arrives quarantined with its reason and never stops the page.
"""

from __future__ import annotations

from adapters.base import OrderLookup
from connector.core.http import describe_error
from connector.core.logs import log
from connector.core.prefetch import read_ahead
from connector.features.base import Run

ORDERS_STREAM = "orders"
#: Customer profiles asked for per call.
PROFILES_PER_CALL = 100


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
        if not isinstance(shop, OrderLookup) or not wanted:
            return
        page = shop.orders_by_id(wanted)
        result = run.state.records.save_orders_page(ORDERS_STREAM, page.orders, page.quarantined, None)
        run.report.orders_read += len(page.orders)
        run.report.orders_changed += result.inserted + result.updated
        self._profiles(run)

    def _orders(self, run: Run) -> None:
        records, report = run.state.records, run.report
        cursor = None if run.options.full else records.get_cursor(ORDERS_STREAM)
        for page in read_ahead(run.shop.order_pages(cursor, since=run.options.since)):
            if run.stop.is_set():
                return
            result = records.save_orders_page(ORDERS_STREAM, page.orders, page.quarantined, page.cursor)
            report.orders_read += len(page.orders) + len(page.quarantined)
            report.orders_changed += result.inserted + result.updated
            report.quarantined += len(page.quarantined)
            for record in page.quarantined:
                log.warning(
                    "record quarantined", stream=record.stream, record_id=record.record_id, reason=record.reason
                )
            run.options.progress("pull", report.orders_read, None)
        if run.options.full:
            for customer_page in run.shop.customer_pages():
                records.save_customer_profiles(customer_page.customers)
        self._profiles(run)

    def _profiles(self, run: Run) -> None:
        records = run.state.records
        while keys := records.customers_without_profile(limit=PROFILES_PER_CALL):
            found, missing = run.shop.customer_profiles(keys)
            records.save_customer_profiles(found)
            records.mark_profiles_missing(missing)
