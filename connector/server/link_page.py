"""The member link page served by the daemon: ``GET /link``, ``POST /link``, ``GET /link/callback``.

Server-rendered HTML, no JavaScript, no third-party assets. Everything a member typed or Discord returned is escaped
before it reaches the page; the pages forbid framing and send a referrer only to this site (a signed link in the
address never leaves it).

``POST /link`` (an order number and its email, or a signed link's token) is read as a bounded stream
(:func:`connector.server.bodies.read_body`), must come from this site (``Origin``, else ``Referer``, equal to
``[link] public_url``'s origin) and carry the form's CSRF token, which is bound to a cookie of the browser that
loaded the form. The brute-force brake counts against the client's address: the peer's, or with
``[link] trusted_proxies`` the right-most ``X-Forwarded-For`` address that is not a trusted proxy.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import secrets
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from connector.server.bodies import BodyError, read_body
from connector.server.linking import (
    Linked,
    LinkError,
    LinkMoveRefused,
    LinkService,
    SignedLink,
    TooManyAttempts,
    client_address,
)
from connector.state.identities import Proof

#: The OAuth2 ``state`` nonce's cookie (the sign-in is bound to the browser that started it).
COOKIE = "cardbridge_link"
#: The CSRF cookie; the form carries an HMAC of it.
CSRF_COOKIE = "cardbridge_csrf"
#: ``POST /link`` bodies: an order number, an email, a signed link and a token fit many times over.
BODY_LIMIT = 8192
#: Seconds a ``POST /link`` body may take to arrive.
BODY_TIMEOUT = 10.0

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1f2328;margin:0}
main{max-width:28rem;margin:3rem auto;background:#fff;border-radius:12px;padding:2rem;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin-top:0} label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #bbb;border-radius:6px;font-size:1rem}
button,a.button{display:inline-block;margin-top:1.2rem;padding:.6rem 1.1rem;border:0;border-radius:6px;
background:#5865f2;color:#fff;font-size:1rem;text-decoration:none;cursor:pointer}
.error{background:#fdecea;color:#8a1c12;padding:.6rem .8rem;border-radius:6px}
.ok{width:3rem;height:3rem;border-radius:50%;background:#2e7d32;color:#fff;font-size:2rem;line-height:3rem;
text-align:center;font-weight:700} small{color:#656d76}
"""


def _page(title: str, body: str, status: int = 200, form_action: str = "") -> HTMLResponse:
    document = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
        f"content='width=device-width,initial-scale=1'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><main>{body}</main></body></html>"
    )
    headers = {
        # Chrome applies form-action to the redirect after the POST as well, so Discord's origin is allowed there.
        "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {form_action}".strip(),
        # Same-origin only: browsers then send this site's Origin with the form's POST (with no-referrer they send
        # "Origin: null"), and nothing (no signed link) to Discord or anyone else.
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(document, status_code=status, headers=headers)


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower case, default ports left out (as browsers send ``Origin``)."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return ""
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


class LinkPages:
    def __init__(self, service: LinkService, on_linked: Callable[[], None] = lambda: None) -> None:
        self.service = service
        self.on_linked = on_linked
        parts = urlsplit(service.oauth.oauth_base)
        self.discord_origin = f"{parts.scheme}://{parts.netloc}"
        self.origin = _origin(service.link.public_url)
        self.secure = service.link.public_url.startswith("https://")
        self._csrf_key = hashlib.sha256(b"cardbridge-link-csrf:" + service.link.secret.encode()).digest()

    def routes(self) -> list[Route]:
        return [
            Route("/link", self.form, methods=["GET"]),
            Route("/link", self.submit, methods=["POST"]),
            Route("/link/callback", self.callback, methods=["GET"]),
        ]

    # ---- CSRF ----------------------------------------------------------------------------------------------------

    def _csrf_token(self, cookie: str) -> str:
        return hmac.new(self._csrf_key, cookie.encode(), hashlib.sha256).hexdigest()

    def _browser_id(self, request: Request) -> str:
        """The browser's CSRF cookie, or a new one (set on the response by :meth:`_with_cookie`)."""
        cookie = request.cookies.get(CSRF_COOKIE, "")
        return cookie if 16 <= len(cookie) <= 64 and cookie.isascii() else secrets.token_urlsafe(24)

    def _with_cookie(self, response: Response, browser: str) -> Response:
        response.set_cookie(
            CSRF_COOKIE, browser, max_age=24 * 3600, path="/link", httponly=True, samesite="strict", secure=self.secure
        )
        return response

    def _csrf_ok(self, request: Request, token: str) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        return bool(cookie and token) and hmac.compare_digest(self._csrf_token(cookie), token)

    def _same_origin(self, request: Request) -> bool:
        """The POST comes from a page of this site: its ``Origin`` (or, without one, its ``Referer``) is
        ``public_url``'s origin. A request with neither is refused (every browser sends ``Origin`` with a POST)."""
        origin = request.headers.get("origin")
        if origin is not None:
            return _origin(origin) == self.origin if origin.strip() != "null" else False
        referer = request.headers.get("referer")
        return referer is not None and _origin(referer) == self.origin

    # ---- pages ---------------------------------------------------------------------------------------------------

    def _form(self, browser: str, error: str = "", status: int = 200, order: str = "", email: str = "") -> HTMLResponse:
        notice = f"<p class=error role=alert>{html.escape(error)}</p>" if error else ""
        body = (
            "<h1>Link your Discord account</h1>"
            "<p>Prove a purchase, then sign in with Discord: your account gets the buyer roles of the shop's server.</p>"
            f"{notice}<form method=post action=/link>"
            f'<input type=hidden name=csrf value="{self._csrf_token(browser)}">'
            f'<label for=order>Order number</label><input id=order name=order required maxlength=64 value="{html.escape(order)}">'
            f"<label for=email>Email used for the order</label><input id=email name=email type=email required "
            f'maxlength=320 value="{html.escape(email)}">'
            "<button type=submit>Continue with Discord</button></form>"
            "<p><small>Your email is only compared with the order; it is not shown to anyone or sent to Discord."
            "</small></p>"
        )
        response = _page("Link your Discord account", body, status, self.discord_origin)
        self._with_cookie(response, browser)
        return response

    def _to_discord(self, customer_key: str, proof: Proof, link: SignedLink | None = None) -> Response:
        url, nonce = self.service.start(customer_key, proof, link)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            COOKIE, nonce, max_age=15 * 60, path="/link", httponly=True, samesite="lax", secure=self.secure
        )
        return response

    async def form(self, request: Request) -> Response:
        browser = self._browser_id(request)
        token = request.query_params.get("t")
        if not token:
            return self._form(browser)
        try:
            await run_in_threadpool(self.service.from_link, token)
        except LinkError as error:
            return self._form(browser, str(error), status=400)
        body = (
            "<h1>Link your Discord account</h1><p>This link comes from the shop and proves your purchase. Sign in "
            "with Discord to get the buyer roles on the shop's server.</p>"
            f'<form method=post action=/link><input type=hidden name=csrf value="{self._csrf_token(browser)}">'
            f'<input type=hidden name=t value="{html.escape(token)}">'
            "<button type=submit>Continue with Discord</button></form>"
            "<p><small>The link works once.</small></p>"
        )
        return self._with_cookie(_page("Link your Discord account", body, 200, self.discord_origin), browser)

    async def submit(self, request: Request) -> Response:
        browser = self._browser_id(request)
        try:
            raw = await read_body(request, limit=BODY_LIMIT, timeout=BODY_TIMEOUT)
        except BodyError as error:
            body = f"<h1>Not sent</h1><p class=error>{html.escape(str(error))}.</p><a class=button href=/link>Start again</a>"
            response = _page("Not sent", body, error.status)
            response.headers["Connection"] = "close"
            return response
        fields = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if not self._same_origin(request) or not self._csrf_ok(request, fields.get("csrf", "")):
            # Another site's form, or a form older than this browser's cookie: nothing was checked or counted.
            return self._form(browser, "This form has expired or did not come from this page. Try again.", status=403)
        token = fields.get("t")
        if token:
            try:
                link = await run_in_threadpool(self.service.from_link, token)
            except LinkError as error:
                return self._form(browser, str(error), status=400)
            return self._to_discord(link.customer_key, Proof.SIGNED_LINK, link)
        order, email = fields.get("order", ""), fields.get("email", "")
        peer = request.client.host if request.client else None
        client = client_address(peer, request.headers.getlist("x-forwarded-for"), self.service.trusted_proxies)
        try:
            customer = await run_in_threadpool(self.service.prove, order, email, client)
        except TooManyAttempts as error:
            response = self._form(browser, str(error), status=429, order=order, email=email)
            response.headers["Retry-After"] = str(int(error.wait) + 1)
            return response
        except LinkError as error:
            return self._form(browser, str(error), status=400, order=order, email=email)
        return self._to_discord(customer, Proof.ORDER_NUMBER)

    async def callback(self, request: Request) -> Response:
        query = request.query_params
        if query.get("error"):
            body = (
                "<h1>Not linked</h1><p>You cancelled the sign-in on Discord, so nothing was linked.</p>"
                "<a class=button href=/link>Start again</a>"
            )
            return _page("Not linked", body, 400)
        try:
            linked = await run_in_threadpool(
                self.service.finish, query.get("code", ""), query.get("state", ""), request.cookies.get(COOKIE)
            )
        except LinkMoveRefused as refused:
            body = (
                f"<h1 id=refused>Not linked</h1><p class=error role=alert>{html.escape(str(refused))}</p>"
                "<p><small>You can close this page.</small></p>"
            )
            response = _page("Not linked", body, 409)
            response.delete_cookie(COOKIE, path="/link")
            return response
        except LinkError as error:
            body = f"<h1>Not linked</h1><p class=error>{html.escape(str(error))}</p><a class=button href=/link>Start again</a>"
            return _page("Not linked", body, 400)
        self.on_linked()
        response = _page("Linked", self._confirmation(linked))
        response.delete_cookie(COOKIE, path="/link")
        return response

    def _confirmation(self, linked: Linked) -> str:
        lines = [
            # U+2713 is in the fonts every system has; an emoji may render as an empty box.
            "<div class=ok aria-hidden=true>\u2713</div><h1 id=linked>Your Discord account is linked</h1>",
            f"<p>Signed in as <b>{html.escape(linked.username)}</b>, linked to the shop customer "
            f"<b id=customer>{html.escape(linked.customer)}</b>. The roles for that customer's paid orders arrive on "
            "the server within a minute; a refund removes them again.</p>",
        ]
        if linked.joined:
            lines.append("<p>You have been added to the shop's Discord server.</p>")
        if linked.linked_roles:
            lines.append("<p>Your purchases and points also show as a connection on your profile (Linked Roles).</p>")
        if linked.replaced:
            lines.append("<p><small>The Discord account linked before no longer holds the buyer roles.</small></p>")
        lines.append("<p><small>You can close this page.</small></p>")
        return "".join(lines)
