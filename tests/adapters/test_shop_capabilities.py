"""Every built-in shop adapter: found by kind, declares its settings model, and says what it can do by Protocol."""

import pytest

from adapters.base import OrderLookup, ReviewSource, ShopAdapter
from connector.core import plugins
from connector.core.config import ShopSettings, validate_table

TABLES = {
    "woocommerce": {"base_url": "https://shop.example.com"},
    "sellix": {"api_key": "k"},
    "dujiaoka": {"database_url": "sqlite://"},
    "acgfaka": {"database_url": "sqlite://"},
    "rest": {
        "base_url": "https://api.example.com",
        "rest": {
            "orders": {"path": "/o"},
            "status_map": {"1": "paid"},
            "fields": {"id": "id", "email": "e", "status": "s", "product_id": "p", "modified_at": "t"},
        },
    },
}
CAPABILITIES = {
    "woocommerce": {OrderLookup, ReviewSource},
    "sellix": {OrderLookup, ReviewSource},
    "dujiaoka": {OrderLookup},
    "acgfaka": {OrderLookup},
    "rest": set(),
}


@pytest.mark.parametrize("kind", sorted(TABLES))
def test_built_in_shop(kind):
    cls = plugins.adapter_class(plugins.SHOPS, kind)
    assert cls.kind == kind and issubclass(cls.settings, ShopSettings) and cls.settings is not ShopSettings
    shop = cls(validate_table(cls.settings, {"kind": kind, **TABLES[kind]}, "shop"))
    try:
        assert isinstance(shop, ShopAdapter)
        assert {c for c in (OrderLookup, ReviewSource) if isinstance(shop, c)} == CAPABILITIES[kind]
    finally:
        shop.close()


def test_every_installed_shop_is_covered():
    assert set(plugins.available(plugins.SHOPS)) >= set(TABLES)
