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
