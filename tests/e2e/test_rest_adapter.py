"""The declarative REST adapter against a 发卡 reseller-style API on loopback: md5-signed requests, records under
data.list, page numbers, a date parameter in shop time, a status map; the card secrets in each record stay there."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sandbox.server import SandboxServer

APP_ID, SECRET = "10086", "reseller-secret"
ZONE = ZoneInfo("Asia/Shanghai")


class FakaApi:
    """Orders as a 发卡 reseller API answers them: {"code": 0, "msg": "ok", "data": {"list": [...], "total": N}}."""

    def __init__(self) -> None:
        self.orders: dict[int, dict] = {}
        self.lock = threading.Lock()
        self.rejected = 0
        self.app = Starlette(routes=[Route("/api/order/list", self.list_orders)])

    def add(self, email, status, kami):
        with self.lock:
            order_id = 5000 + len(self.orders)
            stamp = datetime.now(ZONE).strftime("%Y-%m-%d %H:%M:%S")
            self.orders[order_id] = {
                "order_no": str(order_id),
                "contact": email,
                "goods_id": 88,
                "goods_name": "网易云音乐 黑胶VIP 月卡",
                "num": 1,
                "money": "15.00",
                "state": status,
                "create_time": stamp,
                "update_time": stamp,
                "kami": kami,
                "pay_ip": "10.7.7.7",
            }
            return order_id

    def set_state(self, order_id, status):
        time.sleep(1.1)  # the API has second resolution
        with self.lock:
            self.orders[order_id].update(state=status, update_time=datetime.now(ZONE).strftime("%Y-%m-%d %H:%M:%S"))

    async def list_orders(self, request: Request):
        params = dict(request.query_params)
        sign = params.pop("sign", "")
        query = "&".join(f"{k}={params[k]}" for k in sorted(params) if params[k] != "")
        if params.get("app_id") != APP_ID or hashlib.md5(f"{query}&key={SECRET}".encode()).hexdigest() != sign:
            self.rejected += 1
            return JSONResponse({"code": 403, "msg": "签名错误", "data": None})
        after = params.get("update_start")
        page, limit = int(params.get("page", 1)), int(params.get("limit", 20))
        with self.lock:
            rows = sorted(self.orders.values(), key=lambda o: (o["update_time"], o["order_no"]))
            if after:
                rows = [o for o in rows if o["update_time"] >= after]
            chunk = rows[(page - 1) * limit : page * limit]
        return JSONResponse({"code": 0, "msg": "ok", "data": {"list": chunk, "total": len(rows)}})


REST = f"""
[shop.rest]
time_format = "%Y-%m-%d %H:%M:%S"
status_map = {{ "1" = "paid", "0" = "unpaid", "2" = "refunded" }}
auth = {{ type = "md5_sign", key_param = "app_id", key = "{APP_ID}", secret = "${{FAKA_SECRET}}" }}
orders = {{ path = "/api/order/list", records = "data.list", ok_path = "code", ok_value = "0", message_path = "msg", pagination = {{ type = "page", size = 2 }}, incremental = {{ type = "date_param", param = "update_start", format = "%Y-%m-%d %H:%M:%S" }} }}
fields = {{ id = "order_no", email = "contact", status = "state", product_id = "goods_id", product_name = "goods_name", quantity = "num", total = "money", created_at = "create_time", modified_at = "update_time" }}
"""


@pytest.fixture
def rest_world(world):
    world.api = FakaApi()
    world.api_server = SandboxServer(world.api.app).start()
    world.set_shop(
        f'kind = "rest"\nbase_url = "{world.api_server.url}"\nlookback_seconds = 0\ntimezone = "Asia/Shanghai"\n' + REST
    )
    yield world
    world.api_server.stop()


def test_rest_shop_grant_refund_and_no_secrets(rest_world):
    world = rest_world
    env = {"FAKA_SECRET": SECRET}
    paid = world.api.add("Member@Example.com", 1, "KAMI-0001-XYZ")
    world.api.add("other@example.com", 0, "KAMI-0002-XYZ")
    world.api.add("third@example.com", 1, "KAMI-0003-XYZ")
    for name, email in [
        ("member", "member@example.com"),
        ("other", "other@example.com"),
        ("third", "third@example.com"),
    ]:
        world.forum.add_user(name, email)
    run = world.cli("sync", **env)
    assert run.code == 0, run.output
    assert world.api.rejected == 0  # every request was signed correctly
    assert {u for u in ("member", "other", "third") if world.forum.badges_of(u)} == {"member", "third"}
    world.api.set_state(paid, 2)
    again = world.cli("sync", **env)
    assert again.code == 0, again.output
    assert world.forum.badges_of("member") == []
    stored = b"".join(p.read_bytes() for p in world.dir.glob("state.db*"))
    for secret in ("KAMI-0001-XYZ", "KAMI-0002-XYZ", "KAMI-0003-XYZ", "10.7.7.7", SECRET):
        assert secret.encode() not in stored and secret not in run.output + again.output


def test_a_mapping_that_points_at_a_secret_is_refused(rest_world):
    world = rest_world
    world.config_path.write_text(
        world.config_path.read_text().replace('product_name = "goods_name"', 'product_name = "kami"'), encoding="utf-8"
    )
    run = world.cli("sync", FAKA_SECRET=SECRET)
    assert run.code == 2
    assert "shop.rest" in run.stderr and "secret field" in run.stderr


def test_a_wrong_signature_secret_is_reported(rest_world):
    world = rest_world
    world.api.add("member@example.com", 1, "KAMI-0001-XYZ")
    run = world.cli("sync", FAKA_SECRET="wrong")
    assert run.code == 1
    assert "code = 403: 签名错误" in run.stdout  # the shop's own reason, in the one-screen summary
    assert "Traceback" not in run.output


def test_absurd_totals_are_quarantined_and_points_go_on(rest_world):
    """Issue 12, item 5: a total of NaN or 1e30 with points on stopped the pass (the points could not be computed or
    stored); now those orders are quarantined alone and the good buyer earns points."""
    world = rest_world
    env = {"FAKA_SECRET": SECRET}
    with world.config_path.open("a", encoding="utf-8") as config:
        config.write('[points]\nper_order = 10\nper_currency_unit = 1\nforum = { mode = "gamification" }\n')
    good = world.api.add("member@example.com", 1, "KAMI-0001-XYZ")
    nan = world.api.add("nan@example.com", 1, "KAMI-0002-XYZ")
    huge = world.api.add("huge@example.com", 1, "KAMI-0003-XYZ")
    world.api.orders[nan]["money"] = "NaN"
    world.api.orders[huge]["money"] = "1e30"
    for name in ("member", "nan", "huge"):
        world.forum.add_user(name, f"{name}@example.com")
    run = world.cli("sync", **env)
    assert run.code == 0, run.output
    assert {u for u in ("member", "nan", "huge") if world.forum.badges_of(u)} == {"member"}
    assert [e["points"] for e in world.forum.score_events(world.forum.user("member")["id"])] == [25]  # 10 + 15.00
    status = world.cli("status", "--json", **env).json()
    assert {q["record_id"]: q["reason"] for q in status["quarantined"]["records"]} == {
        str(nan): "total: Value error, the amount is not a finite number",
        str(huge): "total: Value error, the amount is absurdly large (10^12 or more)",
    }
    assert str(good) not in {q["record_id"] for q in status["quarantined"]["records"]}


# ---- pagination the shop's answer steers (issue 12, items 2 and 7) ---------------------------------------------------

SECRETS = {
    "bearer": ('{ type = "bearer", token = "tok-SECRET-b3ar" }', "tok-SECRET-b3ar"),
    "header": ('{ type = "header", name = "X-Api-Key", value = "key-SECRET-h3ad" }', "key-SECRET-h3ad"),
    "basic": ('{ type = "basic", username = "reseller", password = "pw-SECRET-b4sic" }', "pw-SECRET-b4sic"),
    "md5_sign": ('{ type = "md5_sign", key = "10086", secret = "md5-SECRET-s1gn" }', "md5-SECRET-s1gn"),
}


class Recorder:
    """Any HTTP server on loopback: keeps every request it receives (path, query, headers) and answers no orders."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.record)])

    async def record(self, request: Request):
        self.requests.append(
            {"path": request.url.path, "query": dict(request.query_params), "headers": dict(request.headers)}
        )
        return JSONResponse({"data": [], "next_page_url": None})


class PagedApi(Recorder):
    """A JSON shop API whose answer says where the next page is: ``next_page`` (request → next_page_url, a Link
    header's target or the next cursor, None at the end) is the knob; every request is recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.orders = [
            {"id": 1, "email": "alice@example.com", "status": "paid", "sku": "X1", "updated": "2026-11-01T10:00:00Z"}
        ]
        self.next_page = lambda request: None
        self.link_header = False

    async def record(self, request: Request):
        await super().record(request)
        following = self.next_page(request)
        if self.link_header:
            headers = {"Link": f'<{following}>; rel="next"'} if following else {}
            return JSONResponse({"data": self.orders}, headers=headers)
        return JSONResponse({"data": self.orders, "next_page_url": following, "next_cursor": following})


def paged_shop(world, auth: str, pagination: str, extra: str = "") -> None:
    world.set_shop(
        f'kind = "rest"\nbase_url = "{world.api_server.url}"\nlookback_seconds = 0\n{extra}\n'
        "[shop.rest]\n"
        'time_format = "iso"\n'
        'status_map = { "paid" = "paid" }\n'
        f"auth = {auth}\n"
        f'orders = {{ path = "/api/orders", records = "data", pagination = {pagination} }}\n'
        'fields = { id = "id", email = "email", status = "status", product_id = "sku", modified_at = "updated" }\n'
    )


@pytest.fixture
def paged_world(world):
    world.api = PagedApi()
    world.api_server = SandboxServer(world.api.app).start()
    world.elsewhere = Recorder()
    world.elsewhere_server = SandboxServer(world.elsewhere.app).start()
    world.forum.add_user("alice", "alice@example.com")
    yield world
    world.api_server.stop()
    world.elsewhere_server.stop()


@pytest.mark.parametrize(
    ("auth", "pagination"),
    [
        ("bearer", "next_url"),
        ("header", "next_url"),
        ("basic", "next_url"),
        ("md5_sign", "next_url"),
        ("bearer", "link"),
    ],
)
def test_a_next_page_on_another_host_is_never_requested(paged_world, auth, pagination):
    world = paged_world
    steal = f"{world.elsewhere_server.url}/steal"
    world.api.next_page = lambda request: f"{steal}?page=2&sign=echoed"
    world.api.link_header = pagination == "link"
    table, secret = SECRETS[auth]
    paged_shop(world, table, f'{{ type = "{pagination}", next_path = "next_page_url" }}')
    run = world.cli("sync")
    assert run.code == 1, run.output
    assert world.elsewhere.requests == []  # the other host received nothing: no token, key, password or signature
    assert len(world.api.requests) == 1
    flat = " ".join(run.stdout.split())
    assert f"the next page {steal}?… is not on the shop's origin {world.api_server.url}" in flat
    assert secret not in run.output and "echoed" not in run.output
    assert "Verified Buyer" in world.forum.badges_of("alice")  # the page read before is kept and acted on


def test_a_next_page_on_the_same_origin_is_followed_with_the_credentials(paged_world):
    world = paged_world
    world.api.next_page = lambda request: "/api/orders/2" if request.url.path == "/api/orders" else None
    paged_shop(world, SECRETS["bearer"][0], '{ type = "next_url", next_path = "next_page_url" }')
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert [r["path"] for r in world.api.requests] == ["/api/orders", "/api/orders/2"]
    assert world.api.requests[1]["headers"]["authorization"] == "Bearer tok-SECRET-b3ar"


@pytest.mark.parametrize("pagination", ["next_url", "link"])
def test_a_next_page_pointing_to_itself_ends_the_pass_with_an_error(paged_world, pagination):
    world = paged_world
    world.api.next_page = lambda request: str(request.url)  # "the next page is this page", for ever
    world.api.link_header = pagination == "link"
    paged_shop(world, SECRETS["header"][0], f'{{ type = "{pagination}", next_path = "next_page_url" }}')
    run = world.cli("sync")
    assert run.code == 1, run.output
    assert len(world.api.requests) <= 3  # (9,844 requests in 20 s before)
    flat = " ".join(run.stdout.split())
    assert f"the shop sent the page {world.api_server.url}/api/orders?… again: its pagination repeats" in flat
    assert "Verified Buyer" in world.forum.badges_of("alice")


def test_a_repeated_cursor_ends_the_pass_with_an_error_naming_it(paged_world):
    world = paged_world
    world.api.next_page = lambda request: "c-42"
    paged_shop(world, SECRETS["bearer"][0], '{ type = "cursor", next_path = "next_cursor" }')
    run = world.cli("sync")
    assert run.code == 1, run.output
    assert len(world.api.requests) == 2  # the first page, then cursor c-42 once
    assert "the shop sent the cursor 'c-42' again" in " ".join(run.stdout.split())


def test_pages_per_pass_are_bounded_by_max_pages(paged_world):
    world = paged_world
    second = {**world.api.orders[0], "id": 2, "email": "bob@example.com"}
    world.api.orders = [world.api.orders[0], second]  # a full page (size 2) for any page number: no end
    paged_shop(world, SECRETS["bearer"][0], '{ type = "page", size = 2 }', extra="max_pages = 5")
    run = world.cli("sync")
    assert run.code == 1, run.output
    assert len(world.api.requests) == 5
    assert "stopped after 5 pages (max_pages = 5)" in " ".join(run.stdout.split())


def test_an_order_listed_twice_on_one_page_is_stored_once(paged_world):
    """A shop that lists an order once per line item: the twin failed the page's transaction (a traceback, nothing
    stored); the page keeps the last of them."""
    world = paged_world
    world.api.orders = world.api.orders * 2
    paged_shop(world, SECRETS["bearer"][0], '{ type = "page", size = 10 }')
    run = world.cli("sync")
    assert run.code == 0, run.output
    assert "Verified Buyer" in world.forum.badges_of("alice")
