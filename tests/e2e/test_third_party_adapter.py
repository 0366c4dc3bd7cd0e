"""A shop adapter shipped as a separate package is found by its entry point, used by `kind`, and takes settings of
its own from `[shop]`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

PACKAGE = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "cardbridge-tinyshop"
        version = "0.1.0"
        [project.entry-points."cardbridge.shops"]
        tinyshop = "tinyshop:TinyShop"
        [tool.setuptools]
        py-modules = ["tinyshop"]
    """,
    "tinyshop.py": '''
        """A third-party shop: two buyers; the orders of the buyers its `paid` setting names are paid."""
        from datetime import datetime, timezone

        from pydantic import field_validator

        from adapters.base import OrderPage
        from connector.core.models import Order, OrderLine, OrderStatus
        from connector.core.settings import ShopSettings


        class TinySettings(ShopSettings):
            #: Buyers whose order is paid.
            paid: list[str] = []

            @field_validator("paid")
            @classmethod
            def _emails(cls, value):
                for email in value:
                    if "@" not in email:
                        raise ValueError(f"{email!r} is not an email")
                return value


        class TinyShop:
            kind = "tinyshop"
            settings = TinySettings

            def __init__(self, config):
                assert isinstance(config, TinySettings)  # the config built the adapter's own model
                self.config = config

            def order_pages(self, cursor, since=None):
                now = datetime(2026, 11, 1, tzinfo=timezone.utc)
                orders = [
                    Order(id=f"t{n}", customer_key=f"e:{email}", email=email,
                          status=OrderStatus.PAID if email in self.config.paid else OrderStatus.UNPAID,
                          total="9.00", currency="CNY", created_at=now, modified_at=now,
                          lines=(OrderLine(product_id=1, name="月卡"),))
                    for n, email in enumerate(["tiny@example.com", "nope@example.com"])
                ]
                yield OrderPage(orders=orders, cursor="2026-11-01T00:00:00Z")

            def customer_profiles(self, keys):
                return [], list(keys)

            def customer_pages(self, cursor=None):
                return iter(())

            def close(self):
                pass
    ''',
}


def shop_table(world, table):
    """The world's config with ``[shop]`` replaced (the WooCommerce keys are not the tiny shop's)."""
    text = re.sub(r"\[shop\]\n.*?(?=\[communities)", "[shop]\n" + table, world.config_path.read_text(), flags=re.S)
    world.config_path.write_text(text, encoding="utf-8")


def test_a_pip_installed_adapter_is_used_by_kind_with_its_own_settings(world, tmp_path):
    source = tmp_path / "tinyshop-src"
    source.mkdir()
    for name, content in PACKAGE.items():
        (source / name).write_text(textwrap.dedent(content), encoding="utf-8")
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    path = os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])
    world.forum.add_user("tiny", "tiny@example.com")
    world.forum.add_user("nope", "nope@example.com")
    # a typo in the adapter's own key, and a bad value for it, are config errors naming the key
    shop_table(world, 'kind = "tinyshop"\npiad = ["tiny@example.com"]\n')
    typo = world.cli("sync", PYTHONPATH=path)
    assert typo.code == 2 and "shop.piad: unknown key" in typo.stderr, typo.output
    shop_table(world, 'kind = "tinyshop"\npaid = ["tiny"]\n')
    bad = world.cli("sync", PYTHONPATH=path)
    assert bad.code == 2 and "shop.paid: 'tiny' is not an email" in bad.stderr, bad.output
    # the setting is read by the adapter: only the buyer it names has a paid order
    shop_table(world, 'kind = "tinyshop"\npaid = ["tiny@example.com"]\n')
    run = world.cli("sync", PYTHONPATH=path)
    assert run.code == 0, run.output
    assert world.forum.badges_of("tiny") == ["Verified Buyer"] and world.forum.badges_of("nope") == []
    # without the package the kind is unknown, and the error names the key and the kinds there are
    missing = world.cli("sync")
    assert missing.code == 2 and "shop.kind: unknown kind 'tinyshop' (known: acgfaka, dujiaoka" in missing.stderr
