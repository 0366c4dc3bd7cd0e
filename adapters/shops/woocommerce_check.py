"""``cardbridge check`` for a WooCommerce shop: the REST API answers, the key is accepted, and its user may list
orders, customers and product reviews. Four GETs, each ``per_page=1`` with ``_fields=id`` (nothing personal comes
back); nothing is written.

How WooCommerce answers (woocommerce/woocommerce plugins/woocommerce/includes/class-wc-rest-authentication.php, and
each controller's ``get_items_permissions_check()``; the citations are in :mod:`sandbox.shop.keys`, which answers the
same way):

- ``401 woocommerce_rest_authentication_error``: the key is known and the secret is wrong, or the key's permission is
  Write only. The shop's own message says which.
- ``401 woocommerce_rest_cannot_view``: the request reached the route as a *visitor*. An unknown consumer key sets no
  error of its own (``perform_basic_authentication()`` just finds no key), and neither does Basic auth over plain
  HTTP (WooCommerce reads it only when ``is_ssl()``, else it expects OAuth 1.0a signatures) nor a server that drops
  the ``Authorization`` header before PHP sees it.
- ``403 woocommerce_rest_cannot_view``: the key is good, its *user* lacks the capability: orders need
  ``read_private_shop_orders``, customers ``list_users``, reviews ``moderate_comments`` (a Shop manager or an
  Administrator has all three). The status is ``rest_authorization_required_code()``: 403 once someone is logged in.
- A 404 on the namespace index ``/wp-json/wc/v3``: a JSON ``rest_no_route`` means WordPress answers but WooCommerce's
  API is not there (the plugin is off); anything else (WordPress's HTML 404 page) means ``/wp-json/`` is no route at
  all, which is what pretty permalinks switched off (Settings > Permalinks: Plain) or a wrong URL look like.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import httpx

from adapters.checks import Check, failed, passed
from adapters.shops.remote_check import code_of, said, shown, unreachable
from connector.core.http import RemoteClient, RemoteError

KEYS = "shop.consumer_key and shop.consumer_secret"
WHERE_KEYS = "WooCommerce > Settings > Advanced > REST API"
#: (what, path, params, the capability the key's user needs for it).
READS: tuple[tuple[str, str, dict[str, str], str], ...] = (
    ("read orders", "/orders", {}, "read_private_shop_orders"),
    ("read customers", "/customers", {"role": "all"}, "list_users"),
    ("read product reviews", "/products/reviews", {"status": "all"}, "moderate_comments"),
)


def check_woocommerce(client: RemoteClient, api_url: str) -> Iterator[Check]:
    """The checks, in the order an operator fixes them; ``api_url`` is ``<base_url>/wp-json/wc/v3``."""
    where = shown(api_url)
    reached = yield from _namespace_index(client, where)
    if not reached:
        return
    accepted = False
    for what, path, params, capability in READS:
        try:
            response = client.request("GET", path, params={**params, "per_page": 1, "_fields": "id"})
        except httpx.TransportError as error:
            yield unreachable(what, error, api_url)
            return
        except RemoteError as error:
            if error.status == 401:
                yield _refused(error)
                return
            if error.status == 403:
                if not accepted:
                    accepted = True
                    yield passed("key accepted", "the shop knows the key (its user may not read everything, below)")
                yield failed(
                    what,
                    f"{said(error)} (the key's user lacks the {capability} capability)",
                    f"make the key for a user with the Shop manager or Administrator role ({WHERE_KEYS}: Add key, "
                    f"User), then set {KEYS} to it",
                )
                continue
            yield failed(what, f"GET {where}{path}: {said(error)}", f"check shop.base_url ({where})")
            continue
        if not accepted:
            accepted = True
            yield passed("key accepted", "consumer key and secret accepted")
        yield passed(what, _listed(response, path))


def _namespace_index(client: RemoteClient, where: str) -> Generator[Check, None, bool]:
    """``GET /wp-json/wc/v3``: WooCommerce's namespace index (public; a wrong secret is refused even here). Returns
    whether the checks may go on."""
    what = "reach the REST API"
    try:
        response = client.request("GET", "", params={"_fields": "namespace"})
    except httpx.TransportError as error:
        yield unreachable(what, error, where)
        return False
    except RemoteError as error:
        if error.status == 404:
            if code_of(error) == "rest_no_route":
                detail = f"{where}: WordPress answers, but has no wc/v3 API (HTTP 404 rest_no_route)"
                fix = "activate WooCommerce (3.5 or later) on the site, or correct shop.base_url"
            else:
                detail = f"{where}: no WordPress REST API there (HTTP 404, not a REST answer)"
                fix = (
                    "set shop.base_url to the site root (where /wp-json/ answers); if it is right, switch on pretty "
                    "permalinks (WordPress Settings > Permalinks: anything but Plain)"
                )
            yield failed(what, detail, fix)
            return False
        if error.status == 401:
            yield passed(what, f"{where} answers")
            yield _refused(error)
            return False
        yield failed(what, f"GET {where}: {said(error)}", f"check shop.base_url ({where}) and that the shop is up")
        return False
    body = _json(response)
    if not isinstance(body, dict) or body.get("namespace") != "wc/v3":
        yield failed(
            what,
            f"{where} answered HTTP {response.status_code}, but not with WooCommerce's API index",
            "set shop.base_url to the WordPress site root (the API is at <base_url>/wp-json/wc/v3)",
        )
        return False
    yield passed(what, f"{where} answers (WooCommerce REST API v3)")
    return True


def _refused(error: RemoteError) -> Check:
    """A 401: the key was not accepted. The code says whether the shop knew it at all."""
    if code_of(error) == "woocommerce_rest_cannot_view":
        return failed(
            "key accepted",
            f"{said(error)} The shop treated the request as a visitor: the key is not one of its keys, or the "
            "credentials did not arrive (WooCommerce reads Basic auth only over HTTPS; some servers drop the "
            "Authorization header)",
            f"set {KEYS} to a key from {WHERE_KEYS}, and shop.base_url to the https:// address",
        )
    return failed(
        "key accepted",
        said(error),
        f"set {KEYS} to a matching pair from {WHERE_KEYS}, with Permissions Read or Read/Write",
    )


def _listed(response: httpx.Response, path: str) -> str:
    total = response.headers.get("x-wp-total", "")
    count = f" ({int(total):,} in the shop)" if total.isascii() and total.isdigit() else ""
    return f"GET {path} answered{count}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None
