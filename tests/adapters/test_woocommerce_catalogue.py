"""WooCommerce's catalogue over loopback into the state store: price and stock as the shop gives them, and the events
a product card and an announcement are made from (the first read is a baseline, not news)."""

from __future__ import annotations

import pytest

from adapters.shops.woocommerce import WooCommerceSettings, WooCommerceShop
from connector.state.products import NEW, PRICE_DROP, RESTOCK
from sandbox.server import SandboxServer
from sandbox.shop import WooCommerceSandbox


@pytest.fixture
def shop():
    sandbox = WooCommerceSandbox(consumer_key="ck_t", consumer_secret="cs_t")
    with SandboxServer(sandbox.app) as server:
        adapter = WooCommerceShop(
            WooCommerceSettings(kind="woocommerce", base_url=server.url, consumer_key="ck_t", consumer_secret="cs_t")
        )
        yield sandbox, adapter
        adapter.close()


def read(adapter, store, events):
    seen: set[str] = set()
    for page in adapter.catalogue():
        store.products.save_catalogue(page, events)
        seen.update(p.id for p in page)
    store.products.mark_unlisted(seen)


def test_price_and_stock_as_the_shop_gives_them(shop):
    sandbox, adapter = shop
    card = sandbox.add_product("王者荣耀 点券 60元", "60.00")
    key = sandbox.add_product("Elden Ring Steam Key", "199.00")
    sandbox.set_stock(key, 0)
    managed = sandbox.add_product("Netflix 月卡", "25.5")
    sandbox.set_stock(managed, 7)
    products = {p.id: p for page in adapter.catalogue() for p in page}
    assert (products[str(card)].price, products[str(card)].in_stock, products[str(card)].stock_count) == (
        "60.00",
        True,
        None,  # stock not managed: WooCommerce answers null
    )
    assert (products[str(key)].in_stock, products[str(key)].stock_count) == (False, 0)
    assert (products[str(managed)].price, products[str(managed)].stock_count) == ("25.5", 7)
    assert products[str(card)].permalink == f"https://shop.example.com/product/product-{card}/"


def test_the_first_read_is_a_baseline_then_new_restock_and_price_drops_are_events(shop, store):
    sandbox, adapter = shop
    card = sandbox.add_product("王者荣耀 点券 60元", "60.00")
    key = sandbox.add_product("Elden Ring Steam Key", "199.00")
    sandbox.set_stock(key, 0)
    read(adapter, store, events=store.products.any_listed())
    assert store.products.events_after(0) == []  # the catalogue as found is not news
    sandbox.set_stock(key, 3)
    sandbox.set_price(card, "48.00")
    sandbox.set_price(key, "210.00")  # dearer: no event
    fresh = sandbox.add_product("Netflix 月卡", "25.00")
    read(adapter, store, events=store.products.any_listed())
    events = {(e.product_id, e.kind, e.old_price, e.new_price) for e in store.products.events_after(0)}
    assert events == {
        (str(key), RESTOCK, "199.00", "210.00"),
        (str(card), PRICE_DROP, "60.00", "48.00"),
        (str(fresh), NEW, None, "25.00"),
    }
    read(adapter, store, events=True)  # nothing changed: no event
    assert len(store.products.events_after(0)) == 3
    facts = store.products.facts(str(key))
    assert facts is not None and (facts.price, facts.in_stock, facts.stock_count) == ("210.00", True, 3)
