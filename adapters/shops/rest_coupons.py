"""The REST shop's coupons (``[shop.coupons]``): one configured request makes a coupon, one finds it by code.

```toml
[shop.coupons]
create = { method = "POST", path = "/api/coupons", id_field = "data.id",
           body = { code = "{code}", amount = "{amount}", type = "{type}", email = "{email}",
                    expires_at = "{expires_at}", note = "{description}", max_uses = 1 } }
find = { path = "/api/coupons", params = { code = "{code}" }, items = "data", code_field = "code",
         id_field = "id", amount_field = "amount", used_field = "used", limit_field = "max_uses" }
```

Placeholders, and only these (anything else in braces is a config error naming the key; ``{{`` is a brace):
``{code}``, ``{amount}`` (``"5.00"``), ``{type}`` (``fixed_cart`` / ``percent``), ``{email}``, ``{expires_at}``
(ISO 8601, UTC), ``{expires_unix}``, ``{description}``. Substitution is by value, never by text: a body value that is
exactly one placeholder becomes that value in JSON (``{amount_number}`` and ``{expires_unix}`` numbers, ``{email}``
and the expiry ``null`` when there is none); in the middle of a text it is text; in ``path`` it is URL-quoted, so a
code can never add a path segment or a query; ``params`` are encoded by the HTTP client. Paths are relative to
``[shop] base_url``: a request never leaves the shop's origin. Literal values (``max_uses = 1``) are sent as they are.

Read before create, as the seam asks: ``find`` runs first; a create the shop refuses (any 4xx but 401/403/429) is
looked up again before it is called permanent, since "that code exists" is how most shops refuse a repeat. ``find``
answers 404 (``missing_status``) or an empty list for "no such coupon". The requests use ``[shop.rest.auth]``; with
``md5_sign`` the signed parameters are the query (GET, JSON bodies) or the form (``encoding = "form"``).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qsl, quote

import httpx
from pydantic import Field, field_validator, model_validator

from adapters.checks import Check, failed, passed
from adapters.coupons import Coupon, CouponRefused, CouponSpec, CouponsUnavailable
from adapters.shops.coupon_secrecy import codes_hidden
from adapters.shops.paging import json_body
from adapters.shops.remote_check import said, unreachable
from connector.core.http import RemoteClient, RemoteError
from connector.core.settings import KeyedError, StrictModel

REMOTE = "rest-shop"
#: Every placeholder a coupon request may use.
PLACEHOLDERS = frozenset(
    {"code", "amount", "amount_number", "type", "email", "expires_at", "expires_unix", "description"}
)
#: The code ``cardbridge check`` looks up: CardBridge's shape, never made (its last characters are not base-32 ones
#: a redemption id gives), so the look-up finds nothing and changes nothing.
CHECK_CODE = "CB-CHECKCHECK00"
#: Records one look-up reads at most (it asks for one code; a shop that ignores the filter is not read whole).
MAX_RECORDS = 1000
WHERE = "[shop.coupons]"


def placeholders(template: str, key: str) -> list[str]:
    """The placeholders in ``template``; a :class:`KeyedError` for anything but a known name."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        raise KeyedError(key, f"{template!r}: {error} (write {{{{ for a brace)") from None
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            known = ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS))
            raise KeyedError(key, f"{template!r}: unknown placeholder {{{name}}} (known: {known})")
        names.append(name)
    return names


def _check_templates(value: Any, key: str) -> None:
    if isinstance(value, str):
        placeholders(value, key)
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_templates(item, f"{key}.{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_templates(item, f"{key}.{index}")


def _relative(path: str) -> str:
    if not path.startswith("/") or path.startswith("//") or "://" in path:
        raise ValueError("must be a path on the shop's base_url, starting with one /")
    return path


class CouponCreate(StrictModel):
    """``[shop.coupons] create``: the request that makes one coupon."""

    method: Literal["POST", "PUT"] = "POST"
    path: str
    body: dict[str, Any] = Field(default_factory=dict)
    #: ``json`` or ``form`` (``application/x-www-form-urlencoded``; nested values are refused).
    encoding: Literal["json", "form"] = "json"
    #: Where the new coupon's id is in the answer (dotted); empty: the coupon is read back with ``find``.
    id_field: str = ""

    @field_validator("path")
    @classmethod
    def _on_origin(cls, value: str) -> str:
        return _relative(value)

    @model_validator(mode="after")
    def _templates(self) -> CouponCreate:
        _check_templates(self.path, "path")
        _check_templates(self.body, "body")
        if self.encoding == "form" and any(isinstance(v, (dict, list)) for v in self.body.values()):
            raise KeyedError("create.body", 'a form body holds plain values only (use encoding = "json")')
        return self


class CouponFind(StrictModel):
    """``[shop.coupons] find``: the request that finds a coupon by its code."""

    path: str
    params: dict[str, str] = Field(default_factory=dict)
    #: Where the coupon records are in the answer (dotted; empty: the answer itself). A single object is one record.
    items: str = ""
    code_field: str = "code"
    id_field: str = "id"
    amount_field: str = ""
    used_field: str = ""
    limit_field: str = ""
    #: Statuses that mean "no coupon has this code" (a ``/coupons/{code}`` route's 404).
    missing_status: list[int] = Field(default_factory=lambda: [404])

    @field_validator("path")
    @classmethod
    def _on_origin(cls, value: str) -> str:
        return _relative(value)

    @model_validator(mode="after")
    def _templates(self) -> CouponFind:
        _check_templates(self.path, "path")
        _check_templates(self.params, "params")
        used = placeholders(self.path, "path") + [
            name for value in self.params.values() for name in placeholders(value, "params")
        ]
        if "code" not in used:
            raise KeyedError("path", "the look-up must use {code} (in path or params)")
        return self


class RestCoupons(StrictModel):
    """``[shop.coupons]``: both requests are required (the seam reads before it creates)."""

    create: CouponCreate
    find: CouponFind


def values(spec: CouponSpec) -> dict[str, Any]:
    """Each placeholder's value for one coupon (None: the shop gets JSON ``null``)."""
    expires = spec.expires_at.astimezone(UTC) if spec.expires_at is not None else None
    return {
        "code": spec.code,
        "amount": f"{spec.amount:.2f}",
        "amount_number": float(spec.amount),
        "type": spec.type,
        "email": spec.email,
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ") if expires else None,
        "expires_unix": int(expires.timestamp()) if expires else None,
        "description": spec.description,
    }


def fill(template: Any, given: dict[str, Any]) -> Any:
    """``template`` with placeholders replaced by value (see the module docstring); literals kept."""
    if isinstance(template, dict):
        return {key: fill(item, given) for key, item in template.items()}
    if isinstance(template, list):
        return [fill(item, given) for item in template]
    if not isinstance(template, str):
        return template
    parts = list(string.Formatter().parse(template))
    if len(parts) == 1 and parts[0][0] == "" and parts[0][1] is not None:
        return given[parts[0][1]]  # exactly one placeholder: its value, typed
    return "".join(text + ("" if name is None else _text(given[name])) for text, name, _, _ in parts)


def fill_path(template: str, given: dict[str, Any]) -> str:
    """A path with each placeholder URL-quoted (a ``/`` or ``?`` in a value stays inside its segment)."""
    return "".join(
        text + ("" if name is None else quote(_text(given[name]), safe=""))
        for text, name, _, _ in string.Formatter().parse(template)
    )


def split_query(path: str) -> tuple[str, dict[str, str]]:
    """A filled path and the query it carries (``/coupons?code=…``), as parameters: the HTTP client replaces a
    path's query with the request's parameters, and a signature must cover them all."""
    bare, _, query = path.partition("?")
    return bare, dict(parse_qsl(query, keep_blank_values=True))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


class RestCouponIssuer:
    """The coupon side of :class:`~adapters.shops.rest.RestShop`. ``dig`` reads a dotted path; ``sign`` adds the
    ``md5_sign`` parameters (None for other auth); ``base_url`` is ``[shop] base_url`` (for messages)."""

    def __init__(
        self,
        config: RestCoupons | None,
        client: RemoteClient,
        dig: Callable[[Any, str], Any],
        sign: Callable[[dict[str, Any]], dict[str, Any]] | None,
        base_url: str,
    ) -> None:
        self.config, self.client, self.dig, self.sign = config, client, dig, sign
        self.base_url = base_url

    def coupons_ready(self) -> str | None:
        if self.config is not None:
            return None
        return f"set {WHERE} with create and find (the request that makes a coupon and the look-up by code)"

    def _config(self) -> RestCoupons:
        if self.config is None:
            raise CouponsUnavailable(self.coupons_ready() or WHERE)
        return self.config

    def _coupon(self, record: Any, code: str, find: CouponFind) -> Coupon | None:
        found_code = self.dig(record, find.code_field)
        found_id = self.dig(record, find.id_field)
        if not isinstance(found_code, str) or found_code.casefold() != code.casefold():
            return None
        if found_id in (None, "") or isinstance(found_id, (bool, dict, list)):
            return None
        try:
            amount = Decimal(str(self.dig(record, find.amount_field))) if find.amount_field else Decimal(0)
        except InvalidOperation:
            amount = Decimal(0)
        used = self.dig(record, find.used_field) if find.used_field else None
        limit = self.dig(record, find.limit_field) if find.limit_field else None
        return Coupon(
            code=found_code,
            remote_id=str(found_id),
            amount=amount,
            usage_limit=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
            used=used if isinstance(used, int) and not isinstance(used, bool) else None,
        )

    def find_coupon(self, code: str) -> Coupon | None:
        find = self._config().find
        given = {name: None for name in PLACEHOLDERS} | {"code": code}
        path, query = split_query(fill_path(find.path, given))
        params: dict[str, Any] = query | {name: _text(fill(value, given)) for name, value in find.params.items()}
        if self.sign is not None:
            params = self.sign(params)
        with codes_hidden(code):
            try:
                response = self.client.request("GET", path, params=params)
            except RemoteError as error:
                if error.status in find.missing_status:
                    return None
                raise
            body = json_body(REMOTE, find.path, response)
        records = self.dig(body, find.items) if find.items else body
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list):
            return None
        for record in records[:MAX_RECORDS]:
            coupon = self._coupon(record, code, find)
            if coupon is not None:
                return coupon
        return None

    def check(self) -> Iterator[Check]:
        """``cardbridge check`` with ``[shop.coupons]``: the look-up answers, with the configured auth (a GET; the
        create request is not tried, it would make a coupon)."""
        if self.config is None:
            return
        what = "coupon look-up answers"
        try:
            self.find_coupon(CHECK_CODE)
        except httpx.TransportError as error:
            yield unreachable(what, error, self.base_url)
            return
        except RemoteError as error:
            fix = f"check {WHERE} find (path, params) and [shop.rest.auth]"
            yield failed(what, f"GET {error.url}: {said(error)}", fix)
            return
        yield passed(what, f"GET {self.config.find.path} answered (the create request is not tried: it makes a coupon)")

    def create_coupon(self, spec: CouponSpec) -> Coupon:
        create = self._config().create
        found = self.find_coupon(spec.code)
        if found is not None:
            return found
        given = values(spec)
        path, query = split_query(fill_path(create.path, given))
        body = fill(create.body, given)
        params: dict[str, Any] = dict(query)
        form: dict[str, Any] | None = None
        if create.encoding == "form":
            form = {name: _text(value) for name, value in body.items()}
            form = self.sign(form) if self.sign is not None else form
        elif self.sign is not None:
            params = self.sign(params)
        try:
            with codes_hidden(spec.code):
                response = self.client.request(
                    create.method, path, params=params or None, data=form, json=body if form is None else None
                )
                answer = json_body(REMOTE, create.path, response) if create.id_field else None
        except RemoteError as error:
            if error.status >= 500 or error.status == 429:
                raise  # unsure after a write: delivery verifies with find_coupon first
            if error.status in (401, 403):
                raise CouponsUnavailable(f"the shop refused the coupon request (HTTP {error.status}): check "
                                         "[shop.rest.auth]") from None  # fmt: skip
            again = self.find_coupon(spec.code)
            if again is not None:
                return again
            raise CouponRefused(f"the shop answered HTTP {error.status}") from None
        new_id = self.dig(answer, create.id_field) if create.id_field else None
        if new_id not in (None, "") and not isinstance(new_id, (bool, dict, list)):
            return Coupon(code=spec.code, remote_id=str(new_id), amount=spec.amount, usage_limit=None, used=None)
        again = self.find_coupon(spec.code)
        if again is None:
            raise CouponRefused("the shop accepted the coupon request, but the look-up does not find the coupon")
        return again
