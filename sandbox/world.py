"""Seed data for the sandboxes: a small, realistic 发卡 catalogue for the demo and tests, and bulk orders for benchmarks.

Deterministic (``random.Random(seed)``), so a demo or a benchmark run is repeatable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sandbox.shop import Order, WooCommerceSandbox

CATALOGUE = [
    ("王者荣耀 点券 60元", "60.00", "游戏点卡"),
    ("原神 创世结晶 6480", "648.00", "游戏点卡"),
    ("Steam 钱包充值卡 $20", "145.00", "游戏点卡"),
    ("Elden Ring Steam Key", "199.00", "Steam keys"),
    ("Baldur's Gate 3 Steam Key", "238.00", "Steam keys"),
    ("Windows 11 专业版 激活码", "89.00", "软件授权"),
    ("JetBrains 全家桶 年授权", "499.00", "软件授权"),
    ("网易云音乐 黑胶VIP 月卡", "15.00", "月卡"),
    ("爱奇艺 黄金VIP 月卡", "25.00", "月卡"),
]

PEOPLE = [
    ("李", "娜", "lina"),
    ("王", "磊", "wanglei"),
    ("张", "敏", "zhangmin"),
    ("刘", "洋", "liuyang"),
    ("陈", "静", "chenjing"),
    ("杨", "帆", "yangfan"),
    ("Emily", "Carter", "emily"),
    ("Lucas", "Meyer", "lucas"),
    ("Sofia", "Rossi", "sofia"),
    ("Kenji", "Sato", "kenji"),
    ("Ava", "Nguyen", "ava"),
    ("Omar", "Haddad", "omar"),
]

REVIEWS = [
    (5, "秒发货，卡密直接可用，好评！"),
    (4, "Key worked on the first try. Took two minutes to arrive."),
    (5, "客服很耐心，帮我解决了激活问题。"),
    (2, "Arrived late, but it worked in the end."),
    (1, "<script>alert(1)</script> @everyone [quote]fake quote[/quote] [free keys](https://evil.example)"),
    (5, "月卡续费很方便，价格比官方便宜。"),
]


@dataclass(frozen=True)
class Buyer:
    username: str
    email: str
    customer_id: int  # 0 for a guest
    paid: bool


@dataclass(frozen=True)
class RefundableOrder:
    order_id: int
    username: str


@dataclass
class SeedInfo:
    products: list[int] = field(default_factory=list)
    buyers: list[Buyer] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    reviews: list[int] = field(default_factory=list)
    refundable_order: RefundableOrder | None = None


def seed_shop(shop: WooCommerceSandbox, seed: int = 7) -> SeedInfo:
    """Twelve customers (registered and guests), ~30 orders in every status, a handful of reviews."""
    rng = random.Random(seed)
    info = SeedInfo()
    info.products = [shop.add_product(name, price, category) for name, price, category in CATALOGUE]
    statuses = ["completed"] * 5 + ["processing"] * 3 + ["pending", "on-hold", "cancelled", "refunded", "failed"]
    for index, (family, given, handle) in enumerate(PEOPLE):
        guest = index % 3 == 2  # every third buyer checks out as a guest, as most 卡盟 buyers do
        email = f"{handle}@example.{'cn' if index < 6 else 'com'}"
        customer_id = 0 if guest else shop.add_customer(email, given, family, username=handle)
        typed_email = f" {email.upper()} " if guest and index % 2 else email  # guests type their email as they like
        mine = []
        for _ in range(rng.randint(1, 4)):
            items = [(rng.choice(info.products), rng.randint(1, 2))]
            status = rng.choice(statuses)
            mine.append(
                (
                    shop.add_order(
                        customer_id=customer_id,
                        email=typed_email,
                        items=items,
                        status=status,
                        first_name=given,
                        last_name=family,
                    ),
                    status,
                )
            )
        # the last two people never paid: a pending order and a failed one
        if index >= len(PEOPLE) - 2:
            for order_id, _ in mine:
                shop.set_status(order_id, "pending" if index % 2 else "failed")
            mine = [(order_id, "pending") for order_id, _ in mine]
        paid_orders = [order_id for order_id, status in mine if status in ("processing", "completed")]
        if index == 0 and not paid_orders:
            shop.set_status(mine[0][0], "completed")
            paid_orders = [mine[0][0]]
        if index == 0:
            for order_id in paid_orders[1:]:
                shop.set_status(order_id, "cancelled")  # Li Na has exactly one paid order: the demo refunds it
            info.refundable_order = RefundableOrder(paid_orders[0], handle)
            paid_orders = paid_orders[:1]
        info.orders += [order_id for order_id, _ in mine]
        info.buyers.append(Buyer(handle, email, customer_id, bool(paid_orders)))
    # Most reviews come from people who bought the product; the hostile one from someone who did not.
    bought = [
        (o.email.strip().lower(), product)
        for o in shop.orders.values()
        if o.status in ("processing", "completed")
        for product, _ in o.items
    ]
    for index, (rating, text) in enumerate(REVIEWS):
        if "<script>" in text or not bought:
            product, email, name = info.products[-1], "drive.by@example.net", "drive-by"
        else:
            email, product = bought[index * 3 % len(bought)]
            name = next(b.username for b in info.buyers if b.email == email)
        info.reviews.append(shop.add_review(product, name, email, rating, text))
    return info


def bulk_orders(shop: WooCommerceSandbox, n: int, seed: int = 1, buyers: int | None = None) -> list[tuple[str, str]]:
    """``n`` orders from ``buyers`` people (default n / 10), 85 % of them paid; returns (username, email) per buyer.

    Every buyer is returned (so a benchmark can give each a forum account); buyers whose orders all ended unpaid simply
    get nothing, as in a real shop.

    Orders are built directly (not through ``add_order``) and indexed once, so 100,000 take a few seconds.
    """
    rng = random.Random(seed)
    count = buyers or max(1, n // 10)
    products = [shop.add_product(name, price, category) for name, price, category in CATALOGUE]
    people = [(f"buyer{i:06d}", f"buyer{i:06d}@example.{'cn' if i % 2 else 'com'}") for i in range(count)]
    state = shop.state
    start = state.stamp() - n  # one order a second, ending now
    statuses = ["completed"] * 12 + ["processing"] * 5 + ["pending", "refunded", "cancelled"]
    with state.lock:
        for index in range(n):
            username, email = people[index % count]
            order_id = state.take_id("order")
            stamp = start + index
            items = [(rng.choice(products), 1)]
            state.orders[order_id] = Order(
                id=order_id,
                customer_id=0,
                email=email,
                first_name="Buyer",
                last_name=username,
                status=rng.choice(statuses),
                items=items,
                created=stamp,
                modified=stamp,
                phone=f"138{rng.randrange(10**8):08d}",
                address=f"建国路{rng.randrange(1, 999)}号",
                city="北京",
                ip="10.0.0.1",
                transaction_id=f"T{order_id:012d}",
                payment=("alipay", "支付宝"),
                secrets=[f"KM-{rng.getrandbits(64):016X}", f"KM-{rng.getrandbits(64):016X}"],
            )
            state.by_modified.append((stamp, order_id))
        state.by_modified.sort()
    return people[: min(count, n)]
