"""The REST shop's configured coupon requests, against the generic coupon sandbox over loopback: placeholders filled
by value (typed in JSON, quoted in paths), config errors that name the key, read before create, a refused create read
back, and coupon codes kept out of every message and log line."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from structlog.testing import capture_logs

from adapters.coupons import CouponIssuer, CouponRefused, CouponSpec, CouponsUnavailable
from adapters.shops.rest import RestShop, RestShopSettings
from adapters.shops.rest_coupons import fill, fill_path, values
from connector.core.config import ConfigError
from connector.core.http import outcome_unknown
from connector.core.settings import validate_table
from sandbox.server import SandboxServer
from sandbox.shop.generic_coupons import GenericCouponApi

CODE = "CB-MNOPQRST2345"
REST = {
    "orders": {"path": "/o"},
    "status_map": {"1": "paid"},
    "fields": {"id": "id", "email": "e", "status": "s", "product_id": "p", "modified_at": "t"},
}
CREATE = {
    "method": "POST",
    "path": "/api/coupons",
    "id_field": "data.id",
    "body": {
        "code": "{code}",
        "amount": "{amount}",
        "type": "{type}",
        "email": "{email}",
        "expires_at": "{expires_at}",
        "note": "{description}",
        "max_uses": 1,
    },
}
BY_PATH = {"path": "/api/coupons/{code}", "items": "data", "amount_field": "amount", "used_field": "used"}
BY_PARAM = {"path": "/api/coupons", "params": {"code": "{code}"}, "items": "data", "limit_field": "max_uses"}


def spec(email: str | None = "member@example.com") -> CouponSpec:
    return CouponSpec(
        code=CODE,
        amount=Decimal("5"),
        type="fixed_cart",
        email=email,
        expires_at=datetime(2027, 1, 31, 16, 0, tzinfo=UTC),
        description="CardBridge redemption r:forum:3",
    )


@pytest.fixture
def api():
    sandbox = GenericCouponApi()
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url  # type: ignore[attr-defined]
        yield sandbox


def settings(base_url: str, coupons: dict | None, token: str = "rest-sandbox-token") -> RestShopSettings:
    table = {
        "kind": "rest",
        "base_url": base_url,
        "max_retry_seconds": 2,
        "rest": {**REST, "auth": {"type": "bearer", "token": token}},
    }
    if coupons is not None:
        table["coupons"] = coupons
    return validate_table(RestShopSettings, table, "shop")


def shop(api, find=BY_PATH, transport=None, **create) -> RestShop:
    return RestShop(settings(api.url, {"create": {**CREATE, **create}, "find": find}), transport=transport)


def test_placeholders_are_values_typed_in_json_and_quoted_in_paths():
    given = values(spec(email=None))
    body = fill(
        {"a": "{amount}", "n": "{amount_number}", "e": "{email}", "t": "{expires_unix}", "s": "x {code} y"}, given
    )
    assert body == {"a": "5.00", "n": 5.0, "e": None, "t": 1801411200, "s": f"x {CODE} y"}
    assert fill_path("/c/{code}", {**given, "code": "a/b?c=1#"}) == "/c/a%2Fb%3Fc%3D1%23"


@pytest.mark.parametrize(
    ("coupons", "key"),
    [
        ({"create": {**CREATE, "body": {"code": "{coupon}"}}, "find": BY_PATH}, "shop.coupons.create.body.code"),
        ({"create": {**CREATE, "body": {"code": "{code.__class__}"}}, "find": BY_PATH}, "shop.coupons.create.body"),
        ({"create": {**CREATE, "path": "https://evil.example/c"}, "find": BY_PATH}, "shop.coupons.create.path"),
        ({"create": CREATE, "find": {"path": "/api/coupons"}}, "shop.coupons.find"),
        ({"create": CREATE}, "shop.coupons.find"),
    ],
)
def test_a_bad_coupon_config_names_the_key(coupons, key):
    with pytest.raises(ConfigError) as error:
        settings("https://api.example.com", coupons)
    assert key in str(error.value)


def test_create_sends_the_configured_body_and_find_reads_it_back(api):
    adapter = shop(api)
    assert isinstance(adapter, CouponIssuer) and adapter.coupons_ready() is None
    made = adapter.create_coupon(spec())
    stored = api.coupon(CODE)
    assert stored is not None and made.remote_id == str(stored["id"])
    assert (stored["amount"], stored["email"], stored["max_uses"]) == ("5.00", "member@example.com", 1)
    assert stored["expires_at"] == "2027-01-31T16:00:00Z" and stored["note"] == "CardBridge redemption r:forum:3"
    found = adapter.find_coupon(CODE.lower())
    assert found is not None and found.remote_id == made.remote_id and found.amount == Decimal("5.00")
    assert adapter.create_coupon(spec()).remote_id == made.remote_id  # read before create
    assert len(api.coupons) == 1
    adapter.close()


def test_a_refused_create_is_read_back_and_a_lookup_by_param_works(api):
    made: list[str] = []

    class Racing(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = httpx.HTTPTransport()

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.method == "POST" and not made:
                other = shop(api, find=BY_PARAM)
                made.append(other.create_coupon(spec()).remote_id)
                other.close()
            return self.inner.handle_request(request)

    adapter = shop(api, find=BY_PARAM, transport=Racing())
    coupon = adapter.create_coupon(spec())
    assert coupon.remote_id == made[0] and coupon.usage_limit == 1
    assert len(api.coupons) == 1
    adapter.close()


def test_a_refusal_that_is_not_a_taken_code_is_permanent(api):
    adapter = shop(api, body={"amount": "{amount}"})  # no code in the body: the shop refuses it
    with pytest.raises(CouponRefused, match="HTTP 422") as refused:
        adapter.create_coupon(spec())
    assert CODE not in str(refused.value)
    adapter.close()


def test_without_the_coupon_table_the_shop_names_it(api):
    adapter = RestShop(settings(api.url, None))
    assert "[shop.coupons]" in (adapter.coupons_ready() or "")
    with pytest.raises(CouponsUnavailable, match=r"\[shop.coupons\]"):
        adapter.create_coupon(spec())
    assert api.requests == []
    adapter.close()


def test_a_lost_answer_is_unsure_and_the_retry_finds_the_coupon(api):
    api.knobs.add_fault(r"^/api/coupons$", kind="status_after", method="POST", status=504)
    adapter = shop(api)
    with pytest.raises(Exception) as lost:
        adapter.create_coupon(spec())
    assert outcome_unknown(lost.value)
    assert adapter.create_coupon(spec()).remote_id == str(api.coupon(CODE)["id"])  # type: ignore[index]
    assert len(api.coupons) == 1
    adapter.close()


def test_coupon_codes_never_reach_messages_or_logs(api):
    """The look-up path carries the code; the shop fails (500, then a refused connection): neither the exceptions
    nor anything logged show it, in any case or URL-quoted."""
    api.knobs.add_fault(r"^/api/coupons/", kind="status", method="GET", status=500, times=-1)
    adapter = shop(api)
    seen: list[str] = []
    with capture_logs() as logs:
        with pytest.raises(Exception) as failed:
            adapter.find_coupon(CODE)
        seen.append(repr(failed.value) + str(failed.value) + str(getattr(failed.value, "body", "")))
        with pytest.raises(Exception) as unsure:
            adapter.create_coupon(spec())
        seen.append(repr(unsure.value) + str(unsure.value))
    adapter.close()
    closed = RestShop(settings("http://127.0.0.1:9", {"create": CREATE, "find": BY_PATH}))
    with capture_logs() as more:
        for _ in range(2):  # the second call fails with the first one's reason (the remote is marked down)
            with pytest.raises(httpx.TransportError) as down:
                closed.find_coupon(CODE)
            seen.append(str(down.value) + repr(down.value.__cause__) + repr(down.value.__context__))
    closed.close()
    seen += [str(entry) for entry in [*logs, *more]]
    assert seen and "[coupon code]" in seen[0]
    for text in seen:
        for form in (CODE, CODE.lower(), CODE.replace("-", "%2D")):
            assert form not in text, text


def test_check_tries_the_lookup_with_the_configured_auth_and_makes_nothing(api):
    good = [c for c in shop(api).check() if c.what.startswith("coupon")]
    assert len(good) == 1 and good[0].ok, good
    wrong = RestShop(settings(api.url, {"create": CREATE, "find": BY_PARAM}, token="not-the-token"))
    [bad] = [c for c in wrong.check() if c.what.startswith("coupon")]
    assert not bad.ok and "401" in bad.detail and "[shop.coupons] find" in bad.fix
    assert "not-the-token" not in bad.detail + bad.fix
    assert [c for c in RestShop(settings(api.url, None)).check() if c.what.startswith("coupon")] == []
    assert api.coupons == {} and not [r for r in api.requests if r["method"] == "POST"]


def test_a_lookup_with_the_code_in_the_paths_query(api):
    adapter = shop(api, find={"path": "/api/coupons?code={code}", "items": "data"})
    made = adapter.create_coupon(spec())
    assert adapter.find_coupon(CODE) == made.__class__(CODE, made.remote_id, Decimal(0))
    assert [r["query"] for r in api.requests if r["method"] == "GET"][-1] == {"code": CODE}
    adapter.close()
