"""``cardbridge check`` for the declarative REST shop (``kind = "rest"``): one GET of the first page of orders, with
the configured auth, and what its answer says about the config: the API answers and accepts the auth, the answer is
good (``ok_path``), the records are where ``records`` says, each mapped field is in the first record, and
``status_map`` knows its status. Nothing is written; the records are not kept, and only field *names*, paths and the
status value are shown (never a value that may be personal).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from adapters.checks import Check, failed, passed
from adapters.shops.paging import json_body
from adapters.shops.remote_check import said, shown, unreachable
from connector.core.http import RemoteError

REMOTE = "rest-shop"


@dataclass(frozen=True)
class RestTarget:
    """What the check needs of a :class:`~adapters.shops.rest.RestShop` (kept apart so the modules do not import each
    other): ``get`` sends a GET with the configured auth (signing it when the auth signs)."""

    get: Callable[[str, dict[str, Any]], httpx.Response]
    dig: Callable[[Any, str], Any]
    base_url: str
    auth_type: str
    path: str
    query: dict[str, Any]
    records: str
    ok_path: str
    ok_value: str
    message_path: str
    #: canonical field → record path (the mapped ones only).
    fields: Mapping[str, str]
    status_map: Mapping[str, Any]


def check_rest(target: RestTarget) -> Iterator[Check]:
    where = f"{shown(target.base_url)}{target.path}"
    try:
        response = target.get(target.path, dict(target.query))
    except httpx.TransportError as error:
        yield unreachable("reach the orders endpoint", error, target.base_url)
        return
    except RemoteError as error:
        if error.status in (401, 403):
            yield passed("reach the orders endpoint", f"{where} answers")
            yield failed(
                "auth accepted",
                f"{said(error)} (auth type {target.auth_type!r})",
                "check shop.rest.auth (its type and token, key, secret or header)",
            )
        else:
            yield failed(
                "reach the orders endpoint",
                f"GET {where}: {said(error)}",
                "check shop.base_url and shop.rest.orders.path (and shop.rest.orders.params)",
            )
        return
    yield passed("reach the orders endpoint", f"{where} answers")
    auth = f"auth type {target.auth_type!r}"
    try:
        body = json_body(REMOTE, target.path, response)
    except RemoteError:
        yield failed(
            "answer is JSON", f"{where} answered HTTP {response.status_code}, not JSON", "check shop.rest.orders.path"
        )
        return
    if target.ok_path:
        value = target.dig(body, target.ok_path)
        if str(value) != target.ok_value:
            reason = target.dig(body, target.message_path) if target.message_path else None
            yield failed(
                "auth accepted",
                f"the answer says {target.ok_path} = {str(value)[:40]!r}, not {target.ok_value!r}"
                + (f": {str(reason)[:200]}" if reason else "")
                + f" ({auth})",
                "check shop.rest.auth (a refused key or signature answers like this), or "
                "shop.rest.orders.ok_path and ok_value",
            )
            return
    yield passed(
        "auth accepted", f"{auth}: HTTP {response.status_code}" + (f", {target.ok_path} ok" if target.ok_path else "")
    )
    records = target.dig(body, target.records) if target.records else body
    if not isinstance(records, list):
        keys = sorted(body)[:20] if isinstance(body, dict) else []
        top = f" (its top-level keys: {', '.join(map(str, keys))})" if keys else ""
        yield failed(
            "records found",
            f"no list at {target.records or 'the top level'!r} in the answer{top}",
            "set shop.rest.orders.records to the dotted path of the order list (e.g. data.list)",
        )
        return
    yield passed("records found", f"a list at {target.records or 'the top level'!r} ({len(records)} on page 1)")
    if not records:
        yield passed("mapped fields", "not tested: the first page has no record")
        return
    first = records[0]
    missing = [f"{name} ({path})" for name, path in target.fields.items() if target.dig(first, path) is None]
    if missing:
        yield failed(
            "mapped fields",
            f"not in the first record: {', '.join(missing)}",
            "correct " + ", ".join(f"shop.rest.fields.{item.split(' ')[0]}" for item in missing),
        )
    else:
        yield passed("mapped fields", f"all {len(target.fields)} found in the first record")
    status = target.dig(first, target.fields.get("status", ""))
    if isinstance(status, (str, int, float)) and not isinstance(status, bool):
        value = str(status)[:40]
        if str(status) in target.status_map:
            yield passed("status_map", f"knows the first record's status {value!r}")
        else:
            yield failed(
                "status_map",
                f"the first record's status {value!r} is not in status_map (such orders are set aside)",
                f"add {value!r} to shop.rest.status_map",
            )
