"""A shop adapter shipped as a separate package is found by its entry point and used by `kind`."""

from __future__ import annotations

import os
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
        """A third-party shop: two orders, one paid."""
        from datetime import datetime, timezone

        from adapters.base import OrderPage
        from connector.core.models import Order, OrderLine, OrderStatus


        class TinyShop:
            kind = "tinyshop"

            def __init__(self, config):
                self.config = config

            def order_pages(self, cursor, since=None):
                now = datetime(2026, 11, 1, tzinfo=timezone.utc)
                orders = [
                    Order(id="t1", customer_key="e:tiny@example.com", email="tiny@example.com",
                          status=OrderStatus.PAID, total="9.00", currency="CNY", created_at=now, modified_at=now,
                          lines=(OrderLine(product_id=1, name="月卡"),)),
                    Order(id="t2", customer_key="e:nope@example.com", email="nope@example.com",
                          status=OrderStatus.UNPAID, total="9.00", currency="CNY", created_at=now, modified_at=now,
                          lines=(OrderLine(product_id=1, name="月卡"),)),
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


def test_a_pip_installed_adapter_is_used_by_kind(world, tmp_path):
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
    world.config_path.write_text(
        world.config_path.read_text().replace('kind = "woocommerce"', 'kind = "tinyshop"'), encoding="utf-8"
    )
    world.forum.add_user("tiny", "tiny@example.com")
    world.forum.add_user("nope", "nope@example.com")
    run = world.cli("sync", PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
    assert run.code == 0, run.output
    assert world.forum.badges_of("tiny") == ["Verified Buyer"] and world.forum.badges_of("nope") == []
    # without the package the kind is unknown, and the error names the key and the kinds there are
    missing = world.cli("sync")
    assert missing.code == 2 and "shop.kind: unknown kind 'tinyshop'" in missing.stderr
