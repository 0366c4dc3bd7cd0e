"""The member link page served by the daemon: ``/link``, ``/link/start``, ``/link/callback``.

Server-rendered HTML, no JavaScript, no third-party assets. Everything a member typed or Discord returned is escaped
before it reaches the page; the pages forbid framing and send no referrer (a signed link in the address stays here).

The brute-force brake counts against the client's address: the peer's, or with ``[link] trusted_proxies`` the
right-most ``X-Forwarded-For`` address that is not a trusted proxy.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from connector.server.linking import Linked, LinkError, LinkService, TooManyAttempts, client_address

COOKIE = "cardbridge_link"

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
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(document, status_code=status, headers=headers)


class LinkPages:
    def __init__(self, service: LinkService, on_linked: Callable[[], None] = lambda: None) -> None:
        self.service = service
        self.on_linked = on_linked
        parts = urlsplit(service.oauth.oauth_base)
        self.discord_origin = f"{parts.scheme}://{parts.netloc}"

    def routes(self) -> list[Route]:
        return [
            Route("/link", self.form, methods=["GET"]),
            Route("/link", self.submit, methods=["POST"]),
            Route("/link/start", self.start_from_link, methods=["GET"]),
            Route("/link/callback", self.callback, methods=["GET"]),
        ]

    def _form(self, error: str = "", status: int = 200, order: str = "", email: str = "") -> HTMLResponse:
        notice = f"<p class=error role=alert>{html.escape(error)}</p>" if error else ""
        body = (
            "<h1>Link your Discord account</h1>"
            "<p>Prove a purchase, then sign in with Discord: your account gets the buyer roles of the shop's server.</p>"
            f"{notice}<form method=post action=/link>"
            f'<label for=order>Order number</label><input id=order name=order required maxlength=64 value="{html.escape(order)}">'
            f"<label for=email>Email used for the order</label><input id=email name=email type=email required "
            f'maxlength=320 value="{html.escape(email)}">'
            "<button type=submit>Continue with Discord</button></form>"
            "<p><small>Your email is only compared with the order; it is not shown to anyone or sent to Discord."
            "</small></p>"
        )
        return _page("Link your Discord account", body, status, self.discord_origin)

    def _to_discord(self, request: Request, customer_key: str) -> Response:
        url, nonce = self.service.start(customer_key)
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            COOKIE,
            nonce,
            max_age=15 * 60,
            path="/link",
            httponly=True,
            samesite="lax",
            secure=self.service.link.public_url.startswith("https://"),
        )
        return response

    async def form(self, request: Request) -> Response:
        token = request.query_params.get("t")
        if not token:
            return self._form()
        try:
            self.service.from_link(token)
        except LinkError as error:
            return self._form(str(error), status=400)
        body = (
            "<h1>Link your Discord account</h1><p>This link comes from the shop and proves your purchase. Sign in "
            "with Discord to get the buyer roles on the shop's server.</p>"
            f'<a class=button href="/link/start?t={html.escape(token)}">Continue with Discord</a>'
        )
        return _page("Link your Discord account", body)

    async def submit(self, request: Request) -> Response:
        raw = (await request.body())[:4096]
        fields = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        order, email = fields.get("order", ""), fields.get("email", "")
        peer = request.client.host if request.client else None
        client = client_address(peer, request.headers.getlist("x-forwarded-for"), self.service.trusted_proxies)
        try:
            customer = await run_in_threadpool(self.service.prove, order, email, client)
        except TooManyAttempts as error:
            response = self._form(str(error), status=429, order=order, email=email)
            response.headers["Retry-After"] = str(int(error.wait) + 1)
            return response
        except LinkError as error:
            return self._form(str(error), status=400, order=order, email=email)
        return self._to_discord(request, customer)

    async def start_from_link(self, request: Request) -> Response:
        try:
            customer = self.service.from_link(request.query_params.get("t", ""))
        except LinkError as error:
            return self._form(str(error), status=400)
        return self._to_discord(request, customer)

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
            f"<p>Signed in as <b>{html.escape(linked.username)}</b>. The roles for your paid orders arrive on the "
            "server within a minute; a refund removes them again.</p>",
        ]
        if linked.joined:
            lines.append("<p>You have been added to the shop's Discord server.</p>")
        if linked.linked_roles:
            lines.append("<p>Your purchases and points also show as a connection on your profile (Linked Roles).</p>")
        if linked.replaced:
            lines.append("<p><small>The Discord account linked before no longer holds the buyer roles.</small></p>")
        lines.append("<p><small>You can close this page.</small></p>")
        return "".join(lines)
