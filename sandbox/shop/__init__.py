"""A WooCommerce-shaped shop on loopback: REST API v3 orders, customers, products and product reviews.

Built from ``shared/specs/shops/woocommerce`` (docs and sample payloads): Basic auth with the consumer key and secret
(or the query parameters), the documented 401/400/404 bodies, ``page``/``per_page`` (1..100)/``offset``,
``X-WP-Total``/``X-WP-TotalPages``/``Link`` headers, ``modified_after``/``modified_before``/``after``/``before``
with ``dates_are_gmt``, ``orderby`` including ``modified``. The site runs in Asia/Shanghai, so site-local and GMT
dates differ as they do in a real 卡盟 shop.

Orders carry what a real order carries and the connector must never keep: addresses, phone, payment method and
transaction id, the buyer's IP, and card secrets (卡密) in order and line-item meta data. Orders are stored compactly
and rendered per request, with a sorted (modified, id) index, so 100,000 orders page quickly.

Layout: ``state`` (the data and the order index), ``rest`` (auth, errors, paging, date bounds), ``render`` (the JSON),
``orders`` and ``catalogue`` (the routes: orders; customers, products, reviews), ``sandbox`` (the
``WooCommerceSandbox`` handle and its mutation API).
"""

from sandbox.shop.rest import API
from sandbox.shop.sandbox import WooCommerceSandbox
from sandbox.shop.state import Order

#: The old name of :class:`~sandbox.shop.state.Order`.
_Order = Order

__all__ = ["API", "Order", "WooCommerceSandbox", "_Order"]
