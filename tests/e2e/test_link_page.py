"""The member link page in a real browser (Debian's Chromium driven by Playwright) against the sandbox Discord's
OAuth2 endpoints: order number + email → Discord consent → confirmation, roles granted, the member added to the
server, Linked Roles metadata written with the member's token (stored encrypted) and kept current; signed links from
`cardbridge link-url`; guessing order numbers is rate limited; a forged or replayed callback links nobody."""

from __future__ import annotations

import os
import shutil
import sqlite3

import httpx
import pytest
from cryptography.fernet import Fernet

from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer
from tests.e2e.test_daemon import free_port, start, wait_for

LINK_SECRET = "s3cret-for-signing-links-0123456789abcdef"
TOKEN_KEY = Fernet.generate_key().decode()

CONFIG = """
[state]
url = "sqlite:///state.db"
[shop]
kind = "woocommerce"
base_url = "{shop}"
consumer_key = "${{WC_CONSUMER_KEY}}"
consumer_secret = "${{WC_CONSUMER_SECRET}}"
[communities.discord]
kind = "discord"
bot_token = "bot-token-123"
guild_id = "{guild}"
api_base = "{api}"
oauth_base = "{oauth}"
application_id = "{app}"
client_secret = "${{DISCORD_CLIENT_SECRET}}"
[[rules]]
name = "verified-buyer"
products = "*"
grant.discord = {{ role = "{buyer}" }}
[points]
per_order = 60
discord = {{ tiers = {{ "1000" = "{whale}" }} }}
[schedule]
sync_every = 3600
reconcile_every = 3600
retry_every = 3600
[server]
listen = "127.0.0.1:{port}"
[link]
community = "discord"
public_url = "http://127.0.0.1:{port}"
secret = "${{CARDBRIDGE_LINK_SECRET}}"
linked_roles = true
token_key = "${{CARDBRIDGE_TOKEN_KEY}}"
platform_name = "Card Shop"
attempts_per_hour = 3
"""


@pytest.fixture
def link_world(world):
    d = world.discord = DiscordSandbox(bot_token="bot-token-123", client_secret="oauth-client-secret")
    world.discord_server = SandboxServer(d.app).start()
    world.port = free_port()
    world.base = f"http://127.0.0.1:{world.port}"
    d.redirect_uris.add(world.base + "/link/callback")
    world.buyer_role = d.add_role("Verified Buyer", 2)
    world.card = world.shop.add_product("Steam 钱包充值卡 $20", "145.00")
    world.config_path.write_text(
        CONFIG.format(
            shop=world.shop_server.url,
            guild=d.guild_id,
            api=world.discord_server.url + API,
            oauth=world.discord_server.url,
            app=d.client_id,
            buyer=world.buyer_role,
            whale=d.add_role("Whale", 3),
            port=world.port,
        ),
        encoding="utf-8",
    )
    world.secrets = {
        "DISCORD_CLIENT_SECRET": "oauth-client-secret",
        "CARDBRIDGE_LINK_SECRET": LINK_SECRET,
        "CARDBRIDGE_TOKEN_KEY": TOKEN_KEY,
    }
    world.processes = []
    yield world
    for process in world.processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    world.discord_server.stop()


def browser_path():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return browser


def test_member_links_in_a_real_browser_and_gets_roles_and_linked_roles(link_world, tmp_path):
    from playwright.sync_api import sync_playwright

    world, d = link_world, link_world.discord
    order = world.shop.add_order(email="Mei@Example.com", items=[(world.card, 1)], status="completed")
    start(world, **world.secrets)
    mei = d.add_user("mei_plays")
    d.browser_user = mei  # the account signed in to Discord in this browser; not in the server yet
    shot = tmp_path / "linked.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 900, "height": 700})
        page.goto(world.base + "/link")
        page.fill("#order", str(order))
        page.fill("#email", "mei@example.com")  # case and spacing do not matter
        page.click("text=Continue with Discord")
        page.wait_for_url(f"{world.discord_server.url}/oauth2/authorize*")
        assert "mei_plays" in page.content()
        page.click("text=Authorize")
        page.wait_for_url(world.base + "/link/callback*")
        heading = page.locator("#linked")
        assert heading.is_visible() and heading.inner_text() == "Your Discord account is linked"
        assert "mei_plays" in page.content() and "added to the shop's Discord server" in page.content()
        page.screenshot(path=str(shot), full_page=True)
        box = heading.bounding_box()
        browser.close()
    assert shot.exists() and shot.stat().st_size > 10_000
    assert box is not None and box["y"] < 700  # the confirmation is on screen, not below the fold
    if os.environ.get("CARDBRIDGE_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["CARDBRIDGE_KEEP_SCREENSHOT"])

    # Joined the server and got the role right away (the link triggers a pass), with Linked Roles metadata.
    assert wait_for(lambda: d.roles_of(mei) == {world.buyer_role}, 10), d.roles_of(mei)
    assert wait_for(
        lambda: (
            (d.role_connection(mei) or {}).get("metadata")
            == {"verified_buyer": "1", "order_count": "1", "points": "60"}
        ),
        10,
    ), d.role_connection(mei)
    assert d.role_connection(mei)["platform_name"] == "Card Shop"
    assert [r["key"] for r in d.metadata_records] == ["verified_buyer", "order_count", "points"]
    assert d.pings == []

    # The member's tokens are in the state store encrypted only.
    raw = (world.dir / "state.db").read_bytes() + b"".join(
        p.read_bytes() for p in world.dir.glob("state.db-*") if p.is_file()
    )
    issued = d.issued_tokens()
    assert issued and not any(token.encode() in raw for token in issued)
    with sqlite3.connect(world.dir / "state.db") as db:
        assert db.execute("select count(*) from member_tokens where revoked is null").fetchone() == (1,)

    # A refund turns the metadata off with the member's token, refreshed first because it expired.
    d.expire_tokens()
    refreshes = d.token_requests
    world.shop.set_status(order, "refunded")
    run = world.cli("sync", **world.secrets)
    assert run.code == 0, run.output
    assert d.roles_of(mei) == set()
    assert d.role_connection(mei)["metadata"] == {"verified_buyer": "0", "order_count": "0", "points": "0"}
    assert d.token_requests == refreshes + 1
    # Nothing changed since: no write.
    d.reset_log()
    assert world.cli("sync", **world.secrets).code == 0
    assert d.writes() == []

    # A new purchase turns it on again; unlinking clears the connection with the member's token and forgets it.
    world.shop.add_order(email="mei@example.com", items=[(world.card, 1)], status="processing")
    assert world.cli("sync", **world.secrets).code == 0
    assert d.role_connection(mei)["metadata"]["verified_buyer"] == "1" and d.roles_of(mei) == {world.buyer_role}
    run = world.cli("unlink", "--customer", "mei@example.com", "--community", "discord", **world.secrets)
    assert run.code == 0, run.output
    assert d.roles_of(mei) == set()
    assert d.role_connection(mei)["metadata"] == {"verified_buyer": "0", "order_count": "0", "points": "0"}
    with sqlite3.connect(world.dir / "state.db") as db:
        assert db.execute("select count(*) from member_tokens").fetchone() == (0,)


def test_signed_link_wrong_guesses_and_forged_callbacks(link_world):
    world = link_world
    order = world.shop.add_order(email="kai@example.com", items=[(world.card, 1)], status="completed")
    assert world.cli("sync", **world.secrets).code == 0
    printed = world.cli("link-url", "--customer", "kai@example.com", **world.secrets)
    assert printed.code == 0, printed.output
    url = printed.stdout.strip()
    assert url.startswith(world.base + "/link?t=") and "kai" not in url  # signed, and no email in it
    start(world, **world.secrets)
    client = httpx.Client(follow_redirects=False)

    page = client.get(url)
    assert page.status_code == 200 and "Continue with Discord" in page.text
    tampered = client.get(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"))
    assert tampered.status_code == 400 and "not valid" in tampered.text

    # Wrong guesses: the same answer whichever part was wrong, then the brake (3 per hour here) even for the truth.
    wrong = [
        client.post(world.base + "/link", data={"order": str(order), "email": "x@example.com"}),
        client.post(world.base + "/link", data={"order": "999999", "email": "kai@example.com"}),
        client.post(world.base + "/link", data={"order": "999998", "email": "kai@example.com"}),
    ]
    assert [r.status_code for r in wrong] == [400, 400, 400]
    assert len({r.text.split("role=alert>")[1].split("<")[0] for r in wrong}) == 1
    blocked = client.post(world.base + "/link", data={"order": str(order), "email": "kai@example.com"})
    assert blocked.status_code == 429 and "Too many attempts" in blocked.text and blocked.headers["retry-after"]

    # A callback with a forged state, or without the browser's cookie, links nobody.
    start_link = client.get(world.base + "/link/start?" + url.split("?", 1)[1])
    assert start_link.status_code == 303
    location = httpx.URL(start_link.headers["location"])
    assert location.params["redirect_uri"] == world.base + "/link/callback"
    assert set(location.params["scope"].split()) == {"identify", "guilds.join", "role_connections.write"}
    state = location.params["state"]
    forged = client.get(world.base + "/link/callback", params={"code": "x", "state": state[:-2] + "xx"})
    assert forged.status_code == 400 and "did not start here" in forged.text
    other_browser = httpx.get(world.base + "/link/callback", params={"code": "x", "state": state})
    assert other_browser.status_code == 400 and "another browser" in other_browser.text
    cancelled = client.get(world.base + "/link/callback", params={"error": "access_denied", "state": state})
    assert cancelled.status_code == 400 and "cancelled" in cancelled.text
    with sqlite3.connect(world.dir / "state.db") as db:
        assert db.execute("select count(*) from identities where status = 'matched'").fetchone() == (0,)
