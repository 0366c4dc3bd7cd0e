"""Database shops' catalogue read from a real MariaDB: price from the goods, stock as a COUNT of unsold cards (never
their content)."""

from __future__ import annotations

from sqlalchemy import text

from adapters.shops.sql import DatabaseShopSettings
from tests.e2e.test_acgfaka import DDL as ACG_DDL
from tests.e2e.test_dujiaoka import shop_db  # noqa: F401  (the throw-away MariaDB database fixture)


def _by_id(shop):
    return {p.id: p for page in shop.catalogue() for p in page}


def test_dujiaoka_counts_unsold_cards_per_goods(shop_db):  # noqa: F811
    from adapters.shops.dujiaoka import DujiaokaShop

    engine, url = shop_db
    with engine.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO goods (id, gd_name, actual_price, type, deleted_at) VALUES "
                "(1, '王者荣耀 点券 60元', 60, 1, NULL), (2, 'Steam 充值卡 $20', 135.5, 1, NULL), "
                "(3, '代充 人工', 30, 2, NULL), (4, '下架商品', 9, 1, NOW())"
            )
        )
        conn.execute(
            text(
                "INSERT INTO carmis (goods_id, status, is_loop, carmi, deleted_at) VALUES "
                "(1, 1, 0, 'KM-A1', NULL), (1, 1, 0, 'KM-A2', NULL), (1, 2, 0, 'KM-A3', NULL), "
                "(1, 1, 0, 'KM-A4', NOW()), (2, 2, 0, 'KM-B1', NULL), (4, 1, 0, 'KM-D1', NULL)"
            )
        )
    shop = DujiaokaShop(DatabaseShopSettings(kind="dujiaoka", database_url=url, lookback_seconds=0))
    try:
        products = _by_id(shop)
    finally:
        shop.close()
    assert set(products) == {"1", "2", "3"}  # deleted goods are not on sale
    assert (products["1"].price, products["1"].in_stock, products["1"].stock_count) == ("60.00", True, 2)
    assert (products["2"].price, products["2"].in_stock, products["2"].stock_count) == ("135.50", False, 0)
    # manual delivery: dujiaoka keeps a typed count this adapter does not read
    assert (products["3"].in_stock, products["3"].stock_count) == (None, None)
    assert "KM-" not in repr(products)


def test_acgfaka_counts_unsold_cards_per_commodity(shop_db):  # noqa: F811
    from adapters.shops.acgfaka import AcgFakaShop

    engine, url = shop_db
    with engine.connect() as conn:
        for statement in ACG_DDL:
            conn.execute(text(statement))
        conn.execute(
            text(
                "INSERT INTO acg_commodity (id, category_id, name, price, status, contact_type) VALUES "
                "(7, 1, 'Netflix 月卡', 25, 1, 0), (8, 1, '网易云 年卡', 88.8, 1, 0), (9, 1, '人工代充', 5, 1, 0), "
                "(10, 1, '已下架', 1, 0, 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO acg_card (owner, commodity_id, secret, status) VALUES "
                "(0, 7, 'KM-N1', 0), (0, 7, 'KM-N2', 1), (0, 8, 'KM-W1', 1), (0, 10, 'KM-X1', 0)"
            )
        )
    shop = AcgFakaShop(DatabaseShopSettings(kind="acgfaka", database_url=url, table_prefix="acg_", lookback_seconds=0))
    try:
        products = _by_id(shop)
    finally:
        shop.close()
    assert set(products) == {"7", "8", "9"}
    assert (products["7"].price, products["7"].in_stock, products["7"].stock_count) == ("25.00", True, 1)
    assert (products["8"].price, products["8"].in_stock, products["8"].stock_count) == ("88.80", False, 0)
    assert (products["9"].in_stock, products["9"].stock_count) == (None, None)  # no cards: delivered by hand
    assert "KM-" not in repr(products)
