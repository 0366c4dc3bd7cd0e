"""REST API keys as WooCommerce has them: a consumer key and secret, the key's permission (``read``, ``write``,
``read_write``) and the capabilities of the WordPress user the key belongs to; and the answers a request gets for them.

Authentication, as ``WC_REST_Authentication`` does it over HTTPS (woocommerce/woocommerce
plugins/woocommerce/includes/class-wc-rest-authentication.php @ 170a893; the sandbox stands for an HTTPS shop, so a
Basic ``Authorization`` header or the ``consumer_key``/``consumer_secret`` query parameters are read, as
``perform_basic_authentication()`` reads them):

- an unknown consumer key sets no error: ``perform_basic_authentication()`` returns false when
  ``get_user_data_by_consumer_key()`` finds nothing, and ``perform_oauth_authentication()`` finds no ``oauth_*``
  parameter (``get_oauth_parameters()`` returns an empty array), so the request goes on as a visitor and the route's
  permission check refuses it: ``401 woocommerce_rest_cannot_view`` (the status is
  ``rest_authorization_required_code()``, WordPress wp-includes/rest-api.php: 401 when no user is logged in);
- a known key with the wrong secret: ``401 woocommerce_rest_authentication_error`` (``perform_basic_authentication()``,
  the ``hash_equals()`` of the consumer secret);
- a key whose permission lacks the method: ``401 woocommerce_rest_authentication_error`` (``check_permissions()``, run
  on ``rest_pre_dispatch`` by ``check_user_permissions()``, before the route is matched);
- a good key whose user lacks the route's capability: ``403 woocommerce_rest_cannot_view`` (a user is logged in, so
  ``rest_authorization_required_code()`` is 403). The capabilities, from plugins/woocommerce/includes/wc-rest-functions.php
  @ 04a96e1: orders ``wc_rest_check_post_permissions( 'shop_order', 'read' )`` → the post type's
  ``read_private_posts`` cap, ``read_private_shop_orders``; customers ``wc_rest_check_user_permissions( 'read' )`` →
  ``list_users``; reviews ``wc_rest_check_product_reviews_permissions( 'read' )`` → ``moderate_comments``; products
  ``read_private_products``. Each controller's ``get_items_permissions_check()`` answers the refusal, e.g.
  includes/rest-api/Controllers/Version3/class-wc-rest-posts-controller.php:55-61 @ 123d499 (orders, products) and
  class-wc-rest-product-reviews-controller.php ``get_items_permissions_check()`` (reviews).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse

from sandbox.shop.rest import API, err

Permission = Literal["read", "write", "read_write"]

#: What the Shop manager role can do that the API routes ask for (WooCommerce gives it these, and so has an admin).
SHOP_MANAGER: frozenset[str] = frozenset(
    {
        "read_private_shop_orders",
        "list_users",
        "moderate_comments",
        "read_private_products",
        # the shop_coupon post type's read_private_posts and publish_posts (sandbox/shop/coupons.py)
        "read_private_shop_coupons",
        "publish_shop_coupons",
    }
)
#: A user with the Customer role: none of the capabilities above.
CUSTOMER: frozenset[str] = frozenset()

#: Route prefix (under the API) → the capability listing or reading it needs.
CAPABILITIES: tuple[tuple[str, str], ...] = (
    ("/orders", "read_private_shop_orders"),
    ("/customers", "list_users"),
    ("/products/reviews", "moderate_comments"),
    ("/products", "read_private_products"),
)


@dataclass(frozen=True)
class ApiKey:
    """One key of WooCommerce > Settings > Advanced > REST API."""

    consumer_key: str
    consumer_secret: str
    permissions: Permission = "read_write"
    capabilities: frozenset[str] = field(default=SHOP_MANAGER)


def credentials(request: Request) -> tuple[str | None, str | None]:
    """The consumer key and secret a request carries: both query parameters first, then Basic auth."""
    key = request.query_params.get("consumer_key")
    secret = request.query_params.get("consumer_secret")
    if key and secret:
        return key, secret
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            key, _, secret = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, None
        return key, secret
    return None, None


def refused(request: Request, keys: dict[str, ApiKey]) -> JSONResponse | None:
    """The answer WooCommerce gives this request for its credentials, or None when it may go on to the route."""
    key, secret = credentials(request)
    found = keys.get(key or "")
    if found is not None and secret != found.consumer_secret:
        return err(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
    if found is not None:
        reading = request.method in ("GET", "HEAD")
        if reading and found.permissions not in ("read", "read_write"):
            return err(
                401, "woocommerce_rest_authentication_error", "The API key provided does not have read permissions."
            )
        if not reading and request.method != "OPTIONS" and found.permissions not in ("write", "read_write"):
            return err(
                401, "woocommerce_rest_authentication_error", "The API key provided does not have write permissions."
            )
    needed = capability(request.url.path)
    if needed is None:
        return None  # a public route (the namespace index) or no route at all (404 from the router)
    if found is None:  # no key, or one this shop does not know: a visitor
        return err(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
    if needed not in found.capabilities:
        return err(403, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
    return None


def capability(path: str) -> str | None:
    """The capability the route at ``path`` needs, None for a route that needs none (or is not an API route)."""
    if not path.startswith(API + "/"):
        return None
    rest = path[len(API) :]
    for prefix, needed in CAPABILITIES:
        if rest == prefix or rest.startswith(prefix + "/"):
            return needed
    return None
