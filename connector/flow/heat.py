"""Heat: the community's recent posts become weekly counts of terms and product mentions (``[insights]``).

A stage of the pass, after delivery and out of the per-customer plan: it reads no customer and plans nothing. Per
configured community whose adapter is a ``PostTextSource`` it reads the posts after the stored cursor (at most
``max_posts``), counts them with ``mappings.heat`` and commits the counts with the new cursor in one transaction
(``connector.state.insights``). The posts' text is dropped as soon as it is counted. Product names come from the state
store; products that paid orders name and the store has no name for are read from the shop first (shops that can
name products: ``ReviewSource.products``), so a product's name is in the tokenizer's dictionary before members'
posts about it are cut.
"""

from __future__ import annotations

from adapters.base import ReviewSource
from adapters.insights import PostTextSource
from connector.core.logs import log
from connector.features.base import Run
from connector.state import State
from connector.state.insights import CursorMoved
from mappings.heat import count_posts, tokenizer_for


class HeatStage:
    name = "heat"

    def __init__(self, state: State) -> None:
        self.state = state

    def run(self, run: Run) -> None:
        insights = run.config.insights
        if insights is None or run.dry_run:
            return

        sources = {
            name: adapter
            for name, adapter in run.communities.items()
            if name in insights.communities and isinstance(adapter, PostTextSource)
        }
        if not sources:
            return
        missing = self.state.insights.products_missing()
        # Shops that name products (``ReviewSource.products``); others are matched by the names already stored.
        if missing and isinstance(run.shop, ReviewSource):
            self.state.reviews.save_products(run.shop.products(missing))
        tokenizer = tokenizer_for(self.state.insights.products())
        for name, source in sources.items():
            if run.stop.is_set():
                return
            read_from = self.state.insights.cursor(name)
            posts, cursor = source.posts_since(read_from, insights.max_posts)
            counts = count_posts(((p.created_at, p.text) for p in posts), tokenizer)
            del posts  # member text goes no further than the counts
            try:
                self.state.insights.record(name, counts.terms, counts.products, read_from, cursor, counts.posts)
            except CursorMoved:
                log.info("another process counted these posts first; this batch is dropped", community=name)
                continue
            log.info("community posts counted for insights", community=name, posts=counts.posts)
