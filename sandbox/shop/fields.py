"""``_fields``, as WordPress trims every REST response (WooCommerce's too).

Upstream, WordPress core as built (johnpbloch/wordpress-core @ 52ab968, WordPress 7.2-alpha; the same code in
WordPress/wordpress-develop src/):

- wp-includes/rest-api.php:254 hooks ``rest_filter_response_fields()`` (:949) on ``rest_post_dispatch``: no
  ``_fields``, an empty list or an error response → the response as it is. Otherwise ``wp_parse_list()``
  (wp-includes/functions.php:5041: a string is split on ``[\\s,]+``; an array, ``_fields[]=a&_fields[]=b``, is taken
  as it is), each entry trimmed, is turned into a tree on ``.``; an entry whose parent is already in the tree *as a
  whole* stops the loop (:974, ``break 2``: the entries after it are ignored too). A list response is trimmed item by
  item (:983), an object as one item.
- ``_rest_array_intersect_key_recursive()`` (:929): ``array_intersect_key()`` then recursion where both sides are
  arrays. So ``billing.email`` keeps ``{"billing": {"email": …}}``, a path into a scalar keeps the scalar, an unknown
  field is simply absent, and a path into a *list* (``line_items.product_id``) matches list indexes, not keys: nothing
  is left (``line_items.0`` keeps the first item). An empty PHP array is encoded as ``[]``.
- ``_links``: a collection folds each item's links into its data before the filter
  (wp-includes/rest-api/endpoints/class-wp-rest-controller.php:271 ``prepare_response_for_collection()``), so
  ``_fields`` without ``_links`` drops them; a single object's links are added after it
  (wp-includes/rest-api/class-wp-rest-server.php:463 applies ``rest_post_dispatch``, :524 then calls
  ``response_to_data()``, :588), and WooCommerce adds them whatever ``_fields`` says
  (``WC_REST_Orders_V2_Controller::prepare_object_for_response()``). ``_embed`` is not served by the sandbox
  (CardBridge never asks for it).

WooCommerce computes some order fields only when asked for by their exact top-level name (see
:func:`order_extras`); that part lives with the order rendering.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import QueryParams

_LIST_SEPARATOR = re.compile(r"[\s,]+")


def requested(params: QueryParams) -> list[str] | None:
    """The ``_fields`` of a request, as ``wp_parse_list()`` reads it; None: answer everything."""
    if "_fields[]" in params:  # PHP reads `_fields[]=a&_fields[]=b` as an array: no splitting on commas
        fields = [value.strip() for value in params.getlist("_fields[]")]
    elif "_fields" in params:  # PHP keeps the last of repeated scalar keys
        fields = [part.strip() for part in _LIST_SEPARATOR.split(params.getlist("_fields")[-1]) if part]
    else:
        return None
    return fields or None


def tree(fields: list[str]) -> dict[str, Any]:
    """``$fields_as_keyed`` of ``rest_filter_response_fields()``: ``True`` for a field kept whole."""
    keyed: dict[str, Any] = {}
    for field in fields:
        parts = field.split(".")
        ref = keyed
        for part in parts[:-1]:
            if ref.get(part) is True:
                return keyed  # `break 2`: the parent is kept whole, and every later entry is ignored
            child = ref.get(part)
            if not isinstance(child, dict):
                child = ref[part] = {}
            ref = child
        ref[parts[-1]] = True
    return keyed


def _intersect(value: Any, keyed: dict[str, Any]) -> Any:
    """``_rest_array_intersect_key_recursive()``: keys of ``value`` (list indexes too) present in ``keyed``."""
    if isinstance(value, list):
        kept: dict[str, Any] = {str(i): item for i, item in enumerate(value) if str(i) in keyed}
    elif isinstance(value, dict):
        kept = {key: item for key, item in value.items() if key in keyed}
    else:  # not an array: PHP's array_intersect_key() would fail; WordPress never calls it on a scalar item
        return value
    for key, item in kept.items():
        if isinstance(item, (dict, list)) and isinstance(keyed[key], dict):
            kept[key] = _intersect(item, keyed[key])
    if not kept or (list(kept) == [str(i) for i in range(len(kept))] and isinstance(value, list)):
        return list(kept.values())  # a PHP list (or an empty array) is encoded as a JSON list
    return kept


def filter_item(item: Any, fields: list[str] | None) -> Any:
    """One object trimmed to ``fields`` (None: untouched)."""
    if fields is None:
        return item
    return _intersect(item, tree(fields))


def filter_collection(items: list[Any], fields: list[str] | None) -> list[Any]:
    """A list response trimmed item by item (each item's ``_links`` are part of it)."""
    if fields is None:
        return items
    keyed = tree(fields)
    return [_intersect(item, keyed) for item in items]


def filter_single(item: dict[str, Any], fields: list[str] | None) -> Any:
    """A single object: trimmed without its ``_links``, which are added afterwards whatever ``_fields`` says."""
    if fields is None:
        return item
    links = item.get("_links")
    trimmed = _intersect({k: v for k, v in item.items() if k != "_links"}, tree(fields))
    if links:
        trimmed = {**(trimmed if isinstance(trimmed, dict) else {}), "_links": links}
    return trimmed
