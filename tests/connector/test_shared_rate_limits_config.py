"""``[state] shared_rate_limits``: on by default for PostgreSQL, off for SQLite; when on, the connector has its
communities count their limits in the state store, so two ``[communities.*]`` tables on one forum (and every process on
the store) share the forum's window: a 429 one drew holds the other back without a request."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from adapters.base import UserLookup
from connector.core.config import parse_config
from connector.core.http import Deferred
from connector.flow.connector import Connector
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer


def config(state: str, forum: str = "https://forum.example.com", shared: bool | None = None):  # type: ignore[no-untyped-def]
    table = {"url": state} | ({} if shared is None else {"shared_rate_limits": shared})
    community = {"kind": "discourse", "api_key": "k", "api_username": "system", "max_retry_wait_seconds": 1}
    return parse_config(
        {
            "state": table,
            "shop": {
                "kind": "woocommerce",
                "base_url": "https://shop.example.com",
                "consumer_key": "ck",
                "consumer_secret": "cs",
            },
            # The same forum twice, spelt two ways.
            "communities": {"one": community | {"base_url": forum}, "two": community | {"base_url": forum + "/"}},
            "rules": [{"name": "buyer", "products": "*", "grant": {"one": {"badge": "B"}, "two": {"badge": "B"}}}],
        }
    )


@pytest.mark.parametrize(
    ("url", "shared", "expected"),
    [
        ("sqlite:///state.db", None, False),
        ("postgresql+psycopg://cb@db/cardbridge", None, True),
        ("postgresql://cb@db/cardbridge", None, True),
        ("postgresql+psycopg://cb@db/cardbridge", False, False),
        ("sqlite:///state.db", True, True),
    ],
)
def test_the_default_follows_the_store(url, shared, expected):
    assert config(url, shared=shared).state.shares_rate_limits is expected


@pytest.fixture
def forum():
    sandbox = DiscourseSandbox(api_key="k", api_username="system", rate_limit_per_minute=60)
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url  # type: ignore[attr-defined]
        yield sandbox


@pytest.mark.parametrize("shared", [True, False])
def test_two_communities_on_one_forum_share_its_window(tmp_path: Path, forum, shared):
    connector = Connector(config(f"sqlite:///{tmp_path / 'state.db'}", forum.url, shared))
    try:
        one, two = connector.communities["one"], connector.communities["two"]
        assert isinstance(one, UserLookup) and isinstance(two, UserLookup)
        # Another integration has used the forum's whole minute 10 seconds ago: it will ask for about 50 seconds.
        forum.limiter.window.extend([math.floor(forum.clock()) - 10] * 60)
        with pytest.raises(Deferred):
            one.find_user("amy")
        with pytest.raises(Deferred) as second:
            two.find_user("amy")
        assert second.value.sent is not shared
        assert len(forum.requests) == (1 if shared else 2)
    finally:
        connector.close()


def test_a_budget_above_any_real_limit_is_paced_per_process_not_stored_row_by_row(tmp_path: Path):
    """The store keeps one row per request a window allows: a "no limit" budget (an import's 10,000,000 a minute) would
    fill it with millions of rows at the first request. It stays in-process (and says so once)."""
    from sqlalchemy import func, select

    from connector.core.budget import MAX_SHARED_LIMIT, RequestBudget, SharedRequestBudget
    from connector.state.rate_limits import slots_t

    raw = config(f"sqlite:///{tmp_path / 'state.db'}", shared=True)
    limits = {"one": MAX_SHARED_LIMIT + 1, "two": MAX_SHARED_LIMIT}
    communities = {
        name: settings.model_copy(update={"requests_per_minute": limits[name]})
        for name, settings in raw.communities.items()
    }
    connector = Connector(raw.model_copy(update={"communities": communities}))
    try:
        budgets = {name: c._client.http.budget for name, c in connector.communities.items()}  # type: ignore[attr-defined]
        assert isinstance(budgets["one"], RequestBudget) and isinstance(budgets["two"], SharedRequestBudget)
        budgets["one"].acquire()
        with connector.store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(slots_t)).scalar_one() == 0
    finally:
        connector.close()
