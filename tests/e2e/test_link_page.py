"""The member link page in a real browser (Debian's Chromium driven by Playwright) against the sandbox Discord's
OAuth2 endpoints: order number + email → Discord consent → confirmation, roles granted, the member added to the
server, Linked Roles metadata written with the member's token (stored encrypted) and kept current; signed links from
`cardbridge link-url`; guessing order numbers is rate limited; a forged or replayed callback links nobody.

The attacks of issue 12, run over HTTP against the daemon as an attacker would: a guest order placed with a victim's
email (unpaid, then paid) cannot take the victim's link; the brake holds whatever the letter case of the number and
whatever `X-Forwarded-For` says; another site's form, a replayed sign-in and a second use of a signed link do nothing.
"""

from __future__ import annotations

import os
import re
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
        assert page.locator("#customer").inner_text() == "m***@example.com"  # what was linked, masked
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


class Member:
    """A member's browser without a screen: its cookies, the link form's CSRF token, and Discord's consent page."""

    def __init__(self, world, origin: str | None = None, address: str | None = None) -> None:
        """``address``: a loopback address to connect from (127.0.0.2, …), a client distinct from the others."""
        self.world = world
        transport = httpx.HTTPTransport(local_address=address) if address else None
        self.http = httpx.Client(follow_redirects=False, timeout=10, transport=transport)
        self.origin = world.base if origin is None else origin

    def page(self, url: str = "") -> httpx.Response:
        return self.http.get(url or self.world.base + "/link")

    def submit(self, page: httpx.Response | None = None, headers: dict[str, str] | None = None, **fields: str):
        """POST the form of ``page`` (the link page by default) with these fields, as the browser would."""
        page = page if page is not None else self.page()
        hidden = dict(re.findall(r'<input type=hidden name=(\w+) value="([^"]*)">', page.text))
        headers = {**({"Origin": self.origin} if self.origin else {}), **(headers or {})}
        return self.http.post(self.world.base + "/link", data={**hidden, **fields}, headers=headers)

    def authorize(self, to_discord: httpx.Response, discord_user: str) -> str:
        """Sign in on the sandbox Discord as ``discord_user`` and press Authorize: the callback URL it sends back to."""
        assert to_discord.status_code == 303, to_discord.text
        location = httpx.URL(to_discord.headers["location"])
        self.world.discord.browser_user = discord_user
        consent = httpx.post(
            str(location.copy_with(query=None)), data={**dict(location.params), "decision": "authorize"}
        )
        assert consent.status_code == 302, consent.text
        return consent.headers["location"]

    def sign_in(self, to_discord: httpx.Response, discord_user: str) -> httpx.Response:
        return self.http.get(self.authorize(to_discord, discord_user))

    def link_with_order(self, order, email: str, discord_user: str) -> httpx.Response:
        return self.sign_in(self.submit(order=str(order), email=email), discord_user)


def linked_user(world, customer: str) -> tuple[str, str] | None:
    with sqlite3.connect(world.dir / "state.db") as db:
        row = db.execute(
            "select remote_user_id, proof from identities where customer_key = ? and status = 'matched'", (customer,)
        ).fetchone()
    return (row[0], row[1]) if row else None


def test_signed_link_wrong_guesses_and_forged_callbacks(link_world):
    world = link_world
    order = world.shop.add_order(email="kai@example.com", items=[(world.card, 1)], status="completed")
    assert world.cli("sync", **world.secrets).code == 0
    printed = world.cli("link-url", "--customer", "kai@example.com", **world.secrets)
    assert printed.code == 0, printed.output
    url = printed.stdout.strip()
    assert url.startswith(world.base + "/link?t=") and "kai" not in url  # signed, and no email in it
    start(world, **world.secrets)
    member = Member(world)

    page = member.page(url)
    assert page.status_code == 200 and "Continue with Discord" in page.text
    tampered = member.page(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"))
    assert tampered.status_code == 400 and "not valid" in tampered.text

    # Wrong guesses: the same answer whichever part was wrong, then the brake (3 per hour here) even for the truth.
    wrong = [
        member.submit(order=str(order), email="x@example.com"),
        member.submit(order="999999", email="kai@example.com"),
        member.submit(order="999998", email="kai@example.com"),
    ]
    assert [r.status_code for r in wrong] == [400, 400, 400]
    assert len({r.text.split("role=alert>")[1].split("<")[0] for r in wrong}) == 1
    blocked = member.submit(order=str(order), email="kai@example.com")
    assert blocked.status_code == 429 and "Too many attempts" in blocked.text and blocked.headers["retry-after"]

    # A callback with a forged state, or without the browser's cookie, links nobody.
    to_discord = member.submit(page)  # the signed link's form: its token is in the page
    assert to_discord.status_code == 303
    location = httpx.URL(to_discord.headers["location"])
    assert location.params["redirect_uri"] == world.base + "/link/callback"
    assert set(location.params["scope"].split()) == {"identify", "email", "guilds.join", "role_connections.write"}
    state = location.params["state"]
    forged = member.http.get(world.base + "/link/callback", params={"code": "x", "state": state[:-2] + "xx"})
    assert forged.status_code == 400 and "did not start here" in forged.text
    other_browser = httpx.get(world.base + "/link/callback", params={"code": "x", "state": state})
    assert other_browser.status_code == 400 and "another browser" in other_browser.text
    cancelled = member.http.get(world.base + "/link/callback", params={"error": "access_denied", "state": state})
    assert cancelled.status_code == 400 and "cancelled" in cancelled.text
    with sqlite3.connect(world.dir / "state.db") as db:
        assert db.execute("select count(*) from identities where status = 'matched'").fetchone() == (0,)


def test_a_guest_order_with_the_victims_email_cannot_take_the_victims_link(link_world):
    """Issue 12, item 1: the hijack as run, then the proofs that may move a link (verified email, signed link, admin)."""
    world, d = link_world, link_world.discord
    mei_order = world.shop.add_order(email="mei@example.com", items=[(world.card, 1)], status="completed")
    start(world, **world.secrets)
    mei, mallory = d.add_user("mei_plays"), d.add_user("mallory")
    linked = Member(world).link_with_order(mei_order, "Mei@Example.com", mei)
    assert linked.status_code == 200 and "m***@example.com" in linked.text, linked.text
    assert wait_for(lambda: d.roles_of(mei) == {world.buyer_role}, 10), d.roles_of(mei)
    assert linked_user(world, "e:mei@example.com") == (mei, "order-number")

    # Mallory places a guest order with Mei's email and does not pay: it proves nothing.
    unpaid = world.shop.add_order(email="mei@example.com", items=[(world.card, 1)], status="pending")
    assert world.cli("sync", **world.secrets).code == 0
    attacker = Member(world)
    refused = attacker.submit(order=str(unpaid), email="mei@example.com")
    assert refused.status_code == 400 and "not paid" in refused.text

    # She pays for the cheapest card: a paid order proves a purchase, but not who owns the email, so it cannot move
    # the link Mei made. The page says so, and how the real owner would move it.
    cheap = world.shop.add_product("QQ 币 1 元", "1.00")
    paid = world.shop.add_order(email="mei@example.com", items=[(cheap, 1)], status="processing")
    assert world.cli("sync", **world.secrets).code == 0
    answer = attacker.link_with_order(paid, "mei@example.com", mallory)
    assert answer.status_code == 409, answer.text
    assert "already linked to another Discord account" in answer.text and "verified email" in answer.text
    assert "mei_plays" not in answer.text and mei not in answer.text  # nothing about the other account
    assert world.cli("sync", **world.secrets).code == 0
    assert linked_user(world, "e:mei@example.com") == (mei, "order-number")
    assert d.roles_of(mei) == {world.buyer_role} and d.roles_of(mallory) == set()

    # Mei's new Discord account, whose verified email is the shop email, is a stronger proof: the link moves.
    mei_new = d.add_user("mei_new", email="MEI@example.com")
    moved = Member(world).link_with_order(mei_order, "mei@example.com", mei_new)
    assert moved.status_code == 200, moved.text
    assert "no longer holds the buyer roles" in moved.text
    assert wait_for(lambda: d.roles_of(mei_new) == {world.buyer_role} and d.roles_of(mei) == set(), 10)
    assert linked_user(world, "e:mei@example.com") == (mei_new, "verified-email")

    # Now an order number moves nothing even for an account Mei may have used, and neither does a second proof of
    # the same strength (a signed link): only the admin CLI moves it now.
    assert attacker.link_with_order(paid, "mei@example.com", mallory).status_code == 409
    url = world.cli("link-url", "--customer", "mei@example.com", **world.secrets).stdout.strip()
    via_link = Member(world)
    refused = via_link.sign_in(via_link.submit(via_link.page(url)), mei)
    assert refused.status_code == 409 and "ask the shop" in refused.text
    assert linked_user(world, "e:mei@example.com") == (mei_new, "verified-email")
    run = world.cli("link", "--customer", "mei@example.com", "--discord-user", mei, **world.secrets)
    assert run.code == 0, run.output
    assert linked_user(world, "e:mei@example.com") == (mei, "admin")
    assert d.roles_of(mei) == {world.buyer_role} and d.roles_of(mei_new) == set() and d.roles_of(mallory) == set()


def test_a_signed_link_moves_a_link_made_with_an_order_number(link_world):
    world, d = link_world, link_world.discord
    order = world.shop.add_order(email="kai@example.com", items=[(world.card, 1)], status="completed")
    start(world, **world.secrets)
    old, new = d.add_user("kai_old"), d.add_user("kai_new")
    assert Member(world).link_with_order(order, "kai@example.com", old).status_code == 200
    url = world.cli("link-url", "--customer", "kai@example.com", **world.secrets).stdout.strip()
    member = Member(world)
    moved = member.sign_in(member.submit(member.page(url)), new)
    assert moved.status_code == 200 and "k***@example.com" in moved.text, moved.text
    assert linked_user(world, "e:kai@example.com") == (new, "signed-link")
    assert wait_for(lambda: d.roles_of(new) == {world.buyer_role} and d.roles_of(old) == set(), 10)


def test_the_brake_counts_an_order_number_once_whatever_its_letter_case(link_world, monkeypatch):
    """Issue 12, item 4: three clients guess one order's email, each spelling the number differently; the order is
    then blocked for everyone (its owner included) for the rest of the hour."""
    import sandbox.shop.orders

    # A sequential-order-number plugin with a prefix and a suffix: buyers see WC-<id>-KQ.
    plain = sandbox.shop.orders.render_order

    def lettered(shop, o):
        return {**plain(shop, o), "number": f"WC-{o.id}-KQ"}

    monkeypatch.setattr(sandbox.shop.orders, "render_order", lettered)
    world = link_world
    order = world.shop.add_order(email="kai@example.com", items=[(world.card, 1)], status="completed")
    start(world, **world.secrets)
    spellings = [f"wc-{order}-kq", f"Wc-{order}-kQ", f" wC-{order}-Kq "]
    guesses = [
        Member(world, address=f"127.0.0.{2 + i}").submit(order=number, email=f"guess{i}@example.com")
        for i, number in enumerate(spellings)
    ]
    assert [g.status_code for g in guesses] == [400, 400, 400]
    owner = Member(world, address="127.0.0.9").submit(order=f"WC-{order}-KQ", email="kai@example.com")
    assert owner.status_code == 429 and "Too many attempts" in owner.text


def test_forwarded_for_is_not_believed_from_a_peer_that_is_not_a_trusted_proxy(link_world):
    """Issue 12, item 12: with no [link] trusted_proxies, X-Forwarded-For from a loopback peer changes nothing: its
    guesses all count against the peer."""
    world = link_world
    start(world, **world.secrets)
    member = Member(world)
    for i in range(3):
        wrong = member.submit(order=f"99990{i}", email="x@example.com", headers={"X-Forwarded-For": f"198.51.100.{i}"})
        assert wrong.status_code == 400
    blocked = member.submit(order="999909", email="x@example.com", headers={"X-Forwarded-For": "198.51.100.77"})
    assert blocked.status_code == 429


def test_trusted_proxies_name_the_client_by_the_right_most_untrusted_address(link_world):
    world = link_world
    with world.config_path.open("a") as config:
        config.write('trusted_proxies = ["127.0.0.1/32"]\n')  # [link] is the config's last table
    start(world, **world.secrets)
    proxy = Member(world)  # the proxy on 127.0.0.1, appending the address it saw to what the client sent

    # One client behind the proxy forging the left of the header: its guesses count against the address the proxy saw.
    for i in range(3):
        forwarded = f"10.9.9.{i}, 203.0.113.5"
        wrong = proxy.submit(order=f"88880{i}", email="x@example.com", headers={"X-Forwarded-For": forwarded})
        assert wrong.status_code == 400
    blocked = proxy.submit(order="888809", email="x@example.com", headers={"X-Forwarded-For": "1.1.1.1, 203.0.113.5"})
    assert blocked.status_code == 429
    # Another client behind the same proxy is not blocked.
    other = proxy.submit(order="888810", email="x@example.com", headers={"X-Forwarded-For": "203.0.113.6"})
    assert other.status_code == 400
    # A peer that is not a trusted proxy is its own client whatever it sends.
    direct = Member(world, address="127.0.0.3")
    for i in range(3):
        wrong = direct.submit(order=f"77770{i}", email="x@example.com", headers={"X-Forwarded-For": f"192.0.2.{i}"})
        assert wrong.status_code == 400
    assert direct.submit(order="777709", email="x@example.com").status_code == 429


def test_another_sites_form_a_replayed_sign_in_and_a_reused_signed_link_do_nothing(link_world):
    """Issue 12, item 13: CSRF token and Origin on POST /link; the OAuth2 state and signed links are single use."""
    world, d = link_world, link_world.discord
    order = world.shop.add_order(email="kai@example.com", items=[(world.card, 1)], status="completed")
    assert world.cli("sync", **world.secrets).code == 0
    url = world.cli("link-url", "--customer", "kai@example.com", **world.secrets).stdout.strip()
    start(world, **world.secrets)
    kai, mallory = d.add_user("kai_plays"), d.add_user("mallory")

    # Another site's form: it cannot read the token, and its Origin is not ours; nothing is checked or counted.
    member = Member(world)
    proof = {"order": str(order), "email": "kai@example.com"}
    forged = member.http.post(world.base + "/link", data=proof, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    no_token = member.http.post(world.base + "/link", data=proof, headers={"Origin": world.base})
    assert no_token.status_code == 403
    for origin in ("https://evil.example", "null"):
        assert member.submit(headers={"Origin": origin}, **proof).status_code == 403
    page = member.page()
    headless = member.http.post(
        world.base + "/link", data={**proof, "csrf": re.search(r'name=csrf value="(\w+)"', page.text).group(1)}
    )
    assert headless.status_code == 403  # neither Origin nor Referer
    other_browser = Member(world)
    stolen_token = other_browser.submit(page, **proof)  # a token from another browser's page does not fit its cookie
    assert stolen_token.status_code == 403
    referred = Member(world, origin="")
    assert referred.submit(headers={"Referer": world.base + "/link"}, **proof).status_code == 303

    # One sign-in started; Discord is asked twice with its state (two codes): the first links; the second, with the
    # browser's cookie sent again (the confirmation deletes it), links nothing.
    member = Member(world)
    to_discord = member.submit(**proof)
    cookie = f"cardbridge_link={member.http.cookies['cardbridge_link']}"
    first, second = member.authorize(to_discord, kai), member.authorize(to_discord, mallory)
    assert member.http.get(first).status_code == 200
    replayed = member.http.get(second, headers={"Cookie": cookie})
    assert replayed.status_code == 400 and "used already" in replayed.text
    assert linked_user(world, "e:kai@example.com") == (kai, "order-number")

    # A signed link links once: the second use, even in the same browser, is refused before Discord.
    member = Member(world)
    assert member.sign_in(member.submit(member.page(url)), kai).status_code == 200
    again = member.page(url)
    assert again.status_code == 400 and "used already" in again.text
    assert member.submit(again, t=url.split("t=", 1)[1]).status_code == 400
    assert linked_user(world, "e:kai@example.com") == (kai, "signed-link")


def test_an_unverified_discord_email_equal_to_the_shop_email_does_not_move_a_link(link_world):
    """Issue 12, item 1: the ``email`` scope proves an address only when Discord says ``verified: true``. Mallory puts
    Mei's address on her Discord account without confirming it (Discord answers it with ``verified: false``) and
    proves a paid guest order she placed with that address: the link Mei made stays Mei's."""
    world, d = link_world, link_world.discord
    mei_order = world.shop.add_order(email="mei@example.com", items=[(world.card, 1)], status="completed")
    start(world, **world.secrets)
    mei = d.add_user("mei_plays")
    assert Member(world).link_with_order(mei_order, "mei@example.com", mei).status_code == 200
    assert wait_for(lambda: d.roles_of(mei) == {world.buyer_role}, 10), d.roles_of(mei)
    assert linked_user(world, "e:mei@example.com") == (mei, "order-number")

    mallory = d.add_user("mallory", email="Mei@Example.com", verified=False)
    cheap = world.shop.add_product("QQ 币 1 元", "1.00")
    paid = world.shop.add_order(email="mei@example.com", items=[(cheap, 1)], status="processing")
    assert world.cli("sync", **world.secrets).code == 0
    answer = Member(world).link_with_order(paid, "mei@example.com", mallory)
    assert answer.status_code == 409, answer.text
    assert "already linked to another Discord account" in answer.text and "mei_plays" not in answer.text
    assert world.cli("sync", **world.secrets).code == 0
    assert linked_user(world, "e:mei@example.com") == (mei, "order-number")
    assert d.roles_of(mei) == {world.buyer_role} and d.roles_of(mallory) == set()
