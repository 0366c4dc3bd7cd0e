"""A generic REST shop's coupon API on loopback, the one the README's ``[shop.coupons]`` example configures.

It imitates no particular server (a REST shop is whatever the operator describes), so nothing here is cited: it is a
plain, Laravel-style JSON API with a bearer token, chosen to exercise what the adapter must cope with. Creating a
code that exists (compared case-insensitively) is ``422``; ``GET /api/coupons?code=`` answers ``{"data": [...]}``
(an exact, case-insensitive match), ``GET /api/coupons/{code}`` one coupon or ``404``. A buyer's checkout is
``POST /api/coupons/{code}/redeem`` with ``{"email"}``: refused with ``422`` when the coupon is used up, expired or
for another email. Faults and latency: :class:`~sandbox.faults.Knobs`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox.faults import FaultInjector, Knobs


class GenericCouponApi:
    """The coupons (``coupons``: by id) and the HTTP app (``.app``)."""

    def __init__(self, token: str = "rest-sandbox-token", knobs: Knobs | None = None) -> None:
        self.token = token
        self.knobs = knobs or Knobs()
        self.lock = threading.Lock()
        self.coupons: dict[int, dict[str, Any]] = {}
        #: Every request: ``{"method", "path", "query", "body"}`` (tests look for what was sent).
        self.requests: list[dict[str, Any]] = []
        self.app = FaultInjector(self._build(), self.knobs)

    def coupon(self, code: str) -> dict[str, Any] | None:
        with self.lock:
            return next((dict(c) for c in self.coupons.values() if c["code"].lower() == code.lower()), None)

    def _build(self) -> Any:
        app = Starlette(
            routes=[
                Route("/api/coupons", self._coupons, methods=["GET", "POST"]),
                Route("/api/coupons/{code}", self._one, methods=["GET"]),
                Route("/api/coupons/{code}/redeem", self._redeem, methods=["POST"]),
            ]
        )

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                request = Request(scope, receive)
                body = await request.body()

                async def replay() -> dict[str, Any]:
                    return {"type": "http.request", "body": body, "more_body": False}

                with self.lock:
                    self.requests.append(
                        {
                            "method": request.method,
                            "path": request.url.path,
                            "query": dict(request.query_params),
                            "body": body.decode("utf-8", "replace"),
                        }
                    )
                if request.headers.get("authorization") != f"Bearer {self.token}":
                    await JSONResponse({"message": "Unauthenticated."}, status_code=401)(scope, receive, send)
                    return
                await app(scope, replay, send)
                return
            await app(scope, receive, send)

        return guarded

    def _find(self, code: str) -> dict[str, Any] | None:
        return next((c for c in self.coupons.values() if c["code"].lower() == code.lower()), None)

    async def _coupons(self, request: Request) -> Response:
        if request.method == "GET":
            code = request.query_params.get("code", "")
            with self.lock:
                found = self._find(code) if code else None
                listed = [found] if found else ([] if code else list(self.coupons.values()))
                return JSONResponse({"data": [dict(c) for c in listed]})
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"message": "The given data was invalid."}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("code"), str) or not body["code"]:
            return JSONResponse({"message": "The code field is required.", "errors": {"code": ["required"]}}, 422)
        with self.lock:
            if self._find(body["code"]) is not None:
                return JSONResponse({"message": "The code has already been taken.", "errors": {"code": ["taken"]}}, 422)
            coupon_id = 9000 + len(self.coupons) + 1
            self.coupons[coupon_id] = {
                "id": coupon_id,
                "code": body["code"],
                "amount": str(body.get("amount") or "0"),
                "type": str(body.get("type") or "fixed_cart"),
                "email": body.get("email"),
                "expires_at": body.get("expires_at"),
                "note": str(body.get("note") or ""),
                "max_uses": int(body.get("max_uses") or 1),
                "used": 0,
            }
            return JSONResponse({"data": dict(self.coupons[coupon_id])}, status_code=201)

    async def _one(self, request: Request) -> Response:
        with self.lock:
            found = self._find(request.path_params["code"])
            if found is None:
                return JSONResponse({"message": "Not found."}, status_code=404)
            return JSONResponse({"data": dict(found)})

    async def _redeem(self, request: Request) -> Response:
        body = await request.json()
        email = str(body.get("email") or "").strip().lower() if isinstance(body, dict) else ""
        with self.lock:
            found = self._find(request.path_params["code"])
            if found is None:
                return JSONResponse({"message": "Not found."}, status_code=404)
            if found["used"] >= found["max_uses"]:
                return JSONResponse({"message": "used up", "errors": {"code": ["used"]}}, status_code=422)
            expires = found["expires_at"]
            if isinstance(expires, str) and expires < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()):
                return JSONResponse({"message": "expired", "errors": {"code": ["expired"]}}, status_code=422)
            if found["email"] and str(found["email"]).lower() != email:
                return JSONResponse({"message": "not yours", "errors": {"email": ["mismatch"]}}, status_code=422)
            found["used"] += 1
            return JSONResponse({"data": dict(found)})
