"""Property-based: no shop record, however broken, escapes the quarantine boundary, and the points mapping never
raises on a total.

Every shop adapter's record parsing is fed records shaped like its shop's (the fields it reads, each drawn from
plausible values, hostile values and arbitrary JSON) through :func:`adapters.shops.quarantine.read_records`, the
boundary the adapters read pages through. Each record comes out read (and then within the canonical models' bounds)
or quarantined with a reason that never repeats the record's content; nothing is raised. Bounded in time: 200
examples each, the same on every run; the whole file in well under half a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.shops import acgfaka, dujiaoka, sellix, woocommerce
from adapters.shops.acgfaka import AcgFakaSettings, AcgFakaShop
from adapters.shops.dujiaoka import DujiaokaShop
from adapters.shops.quarantine import json_id, read_records, row_id
from adapters.shops.rest import RestShop, RestShopSettings, dig
from adapters.shops.sql import DatabaseShopSettings
from connector.core.config import PointsConfig
from connector.core.models import (
    EARLIEST,
    FUTURE_SLACK,
    Customer,
    Order,
    Product,
    Quarantined,
    Review,
    bounded_amount,
)
from mappings.points import MAX_EVENT_POINTS, due_events, order_points

#: A value no reason may repeat: longer than the short statuses a reason may quote, so it is content, not a status.
CANARY = "CANARY-7f3a9c-" + "x" * 34

BOUNDED = settings(
    max_examples=200,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: CI stays bounded in time and reproducible
    database=None,  # and keeps no example database in the working tree
)

# ---- values -------------------------------------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([1, -1]).map(lambda sign: sign * 10**5000)  # more digits than Python converts to text
    | st.sampled_from([2**63, -(2**63) - 1])  # past a 64-bit integer
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.just(CANARY)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
plain_times = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
iso_times = (
    plain_times.map(lambda d: d.isoformat())
    | st.builds(lambda d, h: f"{d.isoformat()}{h}", plain_times, st.sampled_from(["Z", "+08:00", "-05:00", "+14:00"]))
    | st.sampled_from(["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "0000-00-00 00:00:00", "yesterday"])
)
unix_times = (
    st.integers(min_value=-(10**12), max_value=10**20) | st.floats(allow_nan=True, allow_infinity=True) | st.text()
)
amounts = (
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers()
    | st.sampled_from(["1e30", "NaN", "-Infinity", "199.00", "0.00000001", "1,000.00", "", "  12  ", "1e-30"])
    | st.text(max_size=10)
)
emails = st.sampled_from(["Buyer@Example.com", " guest@example.com ", "", "x" * 400 + "@example.com"]) | st.emails()


def either(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly what the shop sends, sometimes anything JSON can hold."""
    return st.one_of(plausible, plausible, plausible, json_values)


def record(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """A record with some of ``fields`` (drawn with :func:`either`), or now and then something that is no record."""
    shaped = st.fixed_dictionaries({}, optional={name: either(value) for name, value in fields.items()})
    return st.one_of(shaped, shaped, shaped, json_values)


# ---- what must hold ---------------------------------------------------------------------------------------------


def within_bounds(item: Any) -> None:
    later = datetime.now(UTC) + FUTURE_SLACK + timedelta(minutes=1)
    if isinstance(item, Order):
        for moment in (item.created_at, item.modified_at):
            assert moment.tzinfo is not None and EARLIEST <= moment <= later
        assert format(bounded_amount(item.total), "f") == item.total and len(item.total) <= 32
        assert 1 <= len(item.id) <= 64 and len(item.customer_key) <= 320 and len(item.currency) <= 8
    elif isinstance(item, Review):
        assert EARLIEST <= item.created_at <= later and 0 <= item.rating <= 5
    else:
        assert isinstance(item, (Customer, Product))


def read_alone(stream: str, raw: Any, parse: Any, id_of: Any) -> None:
    """``raw`` through the boundary: read within bounds or quarantined without its content; nothing raised."""
    read, quarantined = read_records(stream, [raw], parse, id_of)
    assert len(read) + len(quarantined) == 1
    for item in read:
        within_bounds(item)
    for entry in quarantined:
        assert isinstance(entry, Quarantined) and entry.stream == stream
        assert entry.reason and len(entry.reason) <= 500 and 1 <= len(entry.record_id) <= 64
        assert "CANARY" not in entry.reason


# ---- WooCommerce --------------------------------------------------------------------------------------------------

WC_ORDER = record(
    {
        "id": st.integers(min_value=-5, max_value=10**6),
        "number": st.text(max_size=10),
        "status": st.sampled_from([*woocommerce.STATUS_MAP, "wc-custom"]) | st.lists(st.text(max_size=5)),
        "customer_id": st.integers(min_value=0, max_value=10**6),
        "billing": st.fixed_dictionaries({}, optional={"email": emails, "phone": st.just(CANARY)}),
        "total": amounts,
        "currency": st.sampled_from(["CNY", "USD", "XXXXXXXXXXXX"]),
        "date_created_gmt": iso_times,
        "date_modified_gmt": iso_times,
        "line_items": st.lists(
            st.fixed_dictionaries(
                {"product_id": either(st.integers())},
                optional={"name": either(st.text()), "quantity": either(st.integers())},
            ),
            max_size=3,
        ),
        "meta_data": st.just([{"key": "_kami", "value": CANARY}]),
    }
)
WC_REVIEW = record(
    {
        "id": st.integers(),
        "product_id": st.integers(),
        "rating": st.integers(min_value=-1, max_value=6),
        "reviewer": st.text(),
        "reviewer_email": emails,
        "review": st.text(),
        "status": st.sampled_from(["approved", "hold", "spam", "trash", "x" * 30]),
        "date_created_gmt": iso_times,
    }
)
WC_CUSTOMER = record({"id": st.integers(), "email": emails, "username": st.text()})
WC_PRODUCT = record({"id": st.integers(), "name": st.text(), "permalink": st.text()})


@BOUNDED
@given(WC_ORDER)
def test_woocommerce_orders(raw):
    read_alone(woocommerce.ORDERS, raw, woocommerce.parse_order, json_id("id"))
    stamp = woocommerce.walk_stamp(raw)  # a quarantined order's date moves the walk only when it is a date
    assert stamp is None or EARLIEST <= stamp <= datetime.now(UTC) + FUTURE_SLACK


@BOUNDED
@given(
    st.one_of(
        WC_REVIEW.map(lambda r: ("r", r)), WC_CUSTOMER.map(lambda r: ("c", r)), WC_PRODUCT.map(lambda r: ("p", r))
    )
)
def test_woocommerce_reviews_customers_products(drawn):
    kind, raw = drawn
    parse = {"r": woocommerce.parse_review, "c": woocommerce.parse_customer, "p": woocommerce.parse_product}[kind]
    read_alone("woocommerce.test", raw, parse, json_id("id"))


# ---- Sellix -------------------------------------------------------------------------------------------------------

SX_ORDER = record(
    {
        "uniqid": st.text(max_size=80) | st.integers(),
        "status": st.sampled_from(list(sellix.STATUS_MAP)),
        "customer_email": emails,
        "total": amounts,
        "currency": st.text(max_size=10),
        "product_id": st.text(max_size=10),
        "quantity": st.integers(),
        "created_at": unix_times,
        "updated_at": unix_times,
        "serials": st.just([CANARY]),
    }
)
SX_FEEDBACK = record(
    {
        "uniqid": st.text(max_size=80),
        "score": st.integers(min_value=-1, max_value=6),
        "message": st.text(),
        "product_id": st.text(max_size=80),
        "invoice": st.fixed_dictionaries({}, optional={"customer_email": emails}),
        "created_at": unix_times,
    }
)


@BOUNDED
@given(SX_ORDER)
def test_sellix_orders(raw):
    read_alone(sellix.ORDERS, raw, sellix.parse_order, json_id("uniqid"))


@BOUNDED
@given(
    st.one_of(
        SX_FEEDBACK.map(lambda r: ("f", r)), record({"uniqid": st.text(), "title": st.text()}).map(lambda r: ("p", r))
    )
)
def test_sellix_feedback_and_products(drawn):
    kind, raw = drawn
    read_alone("sellix.test", raw, sellix.parse_feedback if kind == "f" else sellix.parse_product, json_id("uniqid"))


# ---- the declarative REST adapter ---------------------------------------------------------------------------------

REST_FIELDS = {
    "id": "order_no",
    "email": "contact",
    "status": "state",
    "product_id": "goods_id",
    "modified_at": "update_time",
    "created_at": "create_time",
    "total": "money",
    "currency": "cur",
    "product_name": "goods_name",
    "quantity": "num",
    "customer_id": "uid",
}


def rest_shop(time_format: str, zone: str) -> RestShop:
    return RestShop(
        RestShopSettings(
            kind="rest",
            base_url="https://shop.example.com",
            timezone=zone,
            rest={
                "status_map": {"1": "paid", "0": "unpaid", "2": "refunded"},
                "fields": REST_FIELDS,
                "time_format": time_format,
                "orders": {"path": "/orders"},
            },
        )
    )


REST_SHOPS = {
    "unix": rest_shop("unix", "UTC"),
    "iso": rest_shop("iso", "UTC"),
    "%Y-%m-%d %H:%M:%S": rest_shop("%Y-%m-%d %H:%M:%S", "America/Los_Angeles"),
}
REST_TIMES = (
    unix_times | iso_times | plain_times.map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S")) | st.just("9999-12-31 23:59:59")
)
REST_ORDER = record(
    {
        "order_no": st.text(max_size=80) | st.integers(),
        "contact": emails,
        "state": st.sampled_from(["1", "0", "2", 1, 0, 2, 1.0, "9"]),
        "goods_id": st.integers() | st.text(max_size=80),
        "update_time": REST_TIMES,
        "create_time": REST_TIMES,
        "money": amounts,
        "cur": st.text(max_size=10),
        "goods_name": st.text(),
        "num": st.integers() | st.floats() | st.text(max_size=5),
        "uid": st.integers() | st.text(max_size=8),
        "kami": st.just(CANARY),
    }
)


@BOUNDED
@given(st.sampled_from(sorted(REST_SHOPS)), REST_ORDER)
def test_rest_orders(time_format, raw):
    shop = REST_SHOPS[time_format]
    read_alone("rest.orders", raw, shop.parse, lambda r: dig(r, shop.api.fields.id))


# ---- the database shops -------------------------------------------------------------------------------------------

db_times = (
    st.none()
    | plain_times
    | st.just(datetime(9999, 12, 31, 23, 59, 59))
    | st.just(datetime(1, 1, 1))
    | st.just("0000-00-00 00:00:00")
    | json_values
)
db_amounts = st.none() | st.decimals(places=2, allow_nan=True, allow_infinity=True) | amounts


def row(columns: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[SimpleNamespace]:
    """A database row: every column present (a SELECT names them), each value plausible or anything at all."""
    return st.fixed_dictionaries({name: either(value) for name, value in columns.items()}).map(
        lambda values: SimpleNamespace(**values)
    )


DJ_ROW = row(
    {
        "id": st.integers(min_value=1, max_value=10**12),
        "order_sn": st.text(max_size=300),
        "goods_id": st.integers() | st.text(max_size=80),
        "title": st.text(),
        "buy_amount": st.integers(),
        "actual_price": db_amounts,
        "email": emails,
        "status": st.sampled_from([*dujiaoka.STATUS_MAP, 7, "4", "x"]),
        "created_at": db_times,
        "updated_at": db_times,
        "deleted_at": st.none() | plain_times,
    }
)
ACG_ROW = row(
    {
        "id": st.integers(min_value=1, max_value=10**12),
        "trade_no": st.text(max_size=300),
        "owner": st.integers(min_value=0, max_value=9),
        "amount": db_amounts,
        "commodity_id": st.integers() | st.text(max_size=80),
        "card_num": st.integers(),
        "create_time": db_times,
        "pay_time": db_times,
        "status": st.sampled_from([0, 1, 2, "1"]),
        "contact": emails | st.sampled_from(["13812345678", "QQ 10001"]),
    }
)


@pytest.fixture(scope="module")
def db_shops():
    shops = [
        DujiaokaShop(DatabaseShopSettings(kind="dujiaoka", database_url="sqlite://", timezone=zone))
        for zone in ("Asia/Shanghai", "America/Los_Angeles")
    ]
    shops.append(AcgFakaShop(AcgFakaSettings(kind="acgfaka", database_url="sqlite://", timezone="Pacific/Kiritimati")))
    yield shops
    for shop in shops:
        shop.close()


@BOUNDED
@given(st.integers(min_value=0, max_value=1), DJ_ROW)
def test_dujiaoka_rows(db_shops, which, raw):
    read_alone(dujiaoka.ORDERS, raw, db_shops[which].parse, row_id("id"))
    moment = db_shops[which].position(raw.updated_at)  # what the walk's cursor may hold
    assert moment is None or EARLIEST <= moment <= datetime.now(UTC) + FUTURE_SLACK


@BOUNDED
@given(ACG_ROW, st.dictionaries(st.integers(min_value=0, max_value=9), emails, max_size=5))
def test_acgfaka_rows(db_shops, raw, member_emails):
    read_alone(acgfaka.ORDERS, raw, lambda r: db_shops[2].parse(r, member_emails), row_id("id"))


@BOUNDED
@given(
    st.one_of(
        row({"id": st.integers(), "username": st.text(), "email": emails}).map(lambda r: (acgfaka.parse_member, r)),
        row({"id": st.integers(), "name": st.text()}).map(lambda r: (acgfaka.parse_commodity, r)),
        row({"id": st.integers(), "gd_name": st.text()}).map(lambda r: (dujiaoka.parse_goods, r)),
    )
)
def test_database_members_and_products(drawn):
    parse, raw = drawn
    read_alone("db.test", raw, parse, row_id("id"))


# ---- points -------------------------------------------------------------------------------------------------------

points_configs = st.builds(
    lambda per_order, rate, per_review: PointsConfig.model_construct(
        per_order=per_order, per_currency_unit=rate, per_review=per_review, communities={}
    ),
    st.integers(min_value=0, max_value=10**30),
    st.floats(min_value=0, allow_infinity=True, allow_nan=False),
    st.integers(min_value=0, max_value=10**30),
)
totals = amounts | json_values | st.decimals(allow_nan=True, allow_infinity=True).map(str)
#: Totals as a state store written before totals were bounded may hold them.
stored_totals = (
    st.text(max_size=12)
    | st.decimals(allow_nan=True, allow_infinity=True).map(str)
    | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    | st.sampled_from(["1e30", "NaN", "-1e400", "199.00"])
)


@BOUNDED
@given(totals, points_configs)
def test_order_points_never_raise_and_stay_bounded(total, config):
    points = order_points(total, config)
    assert isinstance(points, int) and 0 <= points <= MAX_EVENT_POINTS


@BOUNDED
@given(
    st.lists(st.tuples(st.text(max_size=5), st.booleans(), stored_totals), max_size=5),
    st.lists(st.tuples(st.text(max_size=5), st.booleans()), max_size=5),
    st.dictionaries(st.text(max_size=12), st.integers(min_value=-MAX_EVENT_POINTS, max_value=MAX_EVENT_POINTS)),
    points_configs,
)
def test_due_events_never_raise(orders, reviews, recorded, config):
    for event in due_events(orders, reviews, recorded, config):
        assert abs(event.points) <= MAX_EVENT_POINTS


def test_the_issue_totals_earn_only_per_order():
    config = PointsConfig(per_order=10, per_currency_unit=0.1)
    assert [order_points(t, config) for t in ("1e30", "NaN", "inf", "abc", "199.00")] == [10, 10, 10, 10, 29]
    assert order_points(Decimal("199.00"), config) == 29
