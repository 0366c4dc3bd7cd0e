"""OAuth2 (docs ``topics/oauth2.mdx``, RFC 6749 where Discord's docs are silent): the consent page at
``/oauth2/authorize`` (not under ``/api``), the token endpoint at ``/api/oauth2/token`` and ``/api/v10/oauth2/token``
(form-encoded only; client authentication by HTTP Basic or ``client_id``/``client_secret`` form fields; single-use
codes valid 10 minutes; 7-day access tokens; rotating refresh tokens; errors ``invalid_client`` 401, ``invalid_grant``
/ ``invalid_request`` / ``unsupported_grant_type`` 400), revocation at ``/api[/v10]/oauth2/token/revoke``, and the
Bearer routes ``GET /users/@me`` (scope ``identify``; the bot token gets the bot) and ``GET /oauth2/@me``."""

from __future__ import annotations

import base64
import binascii
import html
import secrets
from typing import Any
from urllib.parse import unquote_plus, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.discord.common import API, AUTHORIZE_PATH, REVOKE_PATHS, TOKEN_PATHS, error, form_of, iso, token_of
from sandbox.discord.state import DiscordState, Row

#: Scopes the sandbox consent page knows, with the line Discord's consent screen shows for each.
SCOPES = {
    "identify": "Access your username, avatar, and banner",
    "email": "Access your email address",
    "guilds": "Know what servers you're in",
    "guilds.join": "Join servers for you",
    "guilds.members.read": "Read your member info (nickname, avatar, roles, etc...) for servers you belong to",
    "role_connections.write": "Update your connection and metadata for this app",
}
CODE_TTL = 600.0  # seconds an authorization code stays exchangeable (RFC 6749 §4.1.2 recommends at most 10 min)
ACCESS_TTL = 604800  # Discord's ``expires_in``: 7 days
INVALID_SCOPE = "The requested scope is invalid, unknown, or malformed."
ACCESS_DENIED = "The resource owner or authorization server denied the request."


def bearer_token(discord: DiscordState, header: str) -> Row | None:
    """The live access token an ``Authorization: Bearer <token>`` header names, if any."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    token = discord.access.get(value.strip())
    if token is None or discord.clock() >= token["expires_at"]:
        return None
    return token


def _oauth_error(
    status: int, error: str, description: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": error} if description is None else {"error": error, "error_description": description}
    return JSONResponse(
        body, status_code=status, headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})}
    )


def _first(form: dict[str, list[str]], key: str) -> str | None:
    values = form.get(key)
    return values[0] if values else None


class OAuth2:
    def __init__(self, discord: DiscordState) -> None:
        self.discord = discord

    def routes(self) -> list[BaseRoute]:
        return [
            Route(AUTHORIZE_PATH, self.authorize, methods=["GET", "POST"]),
            *[Route(path, self.token, methods=["POST"]) for path in TOKEN_PATHS],
            *[Route(path, self.revoke, methods=["POST"]) for path in REVOKE_PATHS],
            Route(f"{API}/users/@me", self.me, methods=["GET"]),
            Route(f"{API}/oauth2/@me", self.oauth_me, methods=["GET"]),
        ]

    # ---- OAuth2: consent page ------------------------------------------------------------------------------------

    async def authorize(self, request: Request) -> Response:
        """The consent page (GET) and its form (POST). A bad ``client_id`` or ``redirect_uri`` is shown to the user and
        never redirected (RFC 6749 §4.1.2.1); other problems go back to the redirect URI as ``error=...``."""
        if request.method == "GET":
            params = dict(request.query_params)
        else:
            params = {k: v[0] for k, v in form_of(request).items()}
        with self.discord.lock:
            if params.get("client_id") != self.discord.client_id:
                return _page("Invalid OAuth2 client_id", "Unknown application.", status=400)
            given = params.get("redirect_uri")
            if given is None and len(self.discord.redirect_uris) == 1:
                redirect_uri = next(iter(self.discord.redirect_uris))
            elif given in self.discord.redirect_uris:
                redirect_uri = given
            else:
                return _page(
                    "Invalid OAuth2 redirect_uri",
                    "The redirect_uri is not registered for this application.",
                    status=400,
                )
            state = params.get("state")
            if params.get("response_type") != "code":
                return _redirect(
                    redirect_uri,
                    state,
                    error="unsupported_response_type",
                    error_description="The authorization server does not support obtaining an "
                    "authorization code using this method.",
                )
            scopes = params.get("scope", "").split()
            if not scopes or any(s not in SCOPES for s in scopes):
                return _redirect(redirect_uri, state, error="invalid_scope", error_description=INVALID_SCOPE)
            user = self.discord.browser_user if self.discord.browser_user in self.discord.users else None
            if user is None:
                return _page("Log in", "You need to log in to Discord to continue to this application.")
            scopes = list(dict.fromkeys(scopes))
            if request.method == "GET":
                if params.get("prompt") == "none" and set(scopes) <= self.discord.consents.get(user, set()):
                    return self._issue_code(user, scopes, redirect_uri, given is not None, state)
                return self._consent_page(user, scopes, params)
            decision = params.get("decision")
            if decision == "cancel":
                return _redirect(redirect_uri, state, error="access_denied", error_description=ACCESS_DENIED)
            if decision != "authorize":
                return _page("Invalid request", "Choose Authorize or Cancel.", status=400)
            self.discord.consents.setdefault(user, set()).update(scopes)
            return self._issue_code(user, scopes, redirect_uri, given is not None, state)

    def _issue_code(
        self, user: str, scopes: list[str], redirect_uri: str, redirect_given: bool, state: str | None
    ) -> Response:
        code = secrets.token_urlsafe(22)
        self.discord.codes[code] = {
            "user": user,
            "scopes": scopes,
            "redirect_uri": redirect_uri,
            "redirect_given": redirect_given,
            "expires_at": self.discord.clock() + CODE_TTL,
            "used": False,
            "family": None,
        }
        return _redirect(redirect_uri, state, code=code)

    def _consent_page(self, user: str, scopes: list[str], params: dict[str, str]) -> Response:
        app_name = html.escape(self.discord.roles[self.discord.bot_role]["name"])
        lines = "".join(
            f'<li data-scope="{html.escape(s)}">{html.escape(SCOPES[s])} ({html.escape(s)})</li>' for s in scopes
        )
        keep = ("client_id", "response_type", "scope", "state", "redirect_uri", "prompt")
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(params[k], quote=True)}">'
            for k in keep
            if k in params
        )
        body = (
            f"<p>Signed in as <strong>{html.escape(self.discord.users[user]['username'])}</strong></p>"
            f"<p>{app_name} wants to:</p><ul>{lines}</ul>"
            f'<form method="post" action="{AUTHORIZE_PATH}">{hidden}'
            '<button name="decision" value="authorize">Authorize</button>'
            '<button name="decision" value="cancel">Cancel</button></form>'
        )
        return _page("An external application wants to access your Discord account", body, raw=True)

    # ---- OAuth2: token endpoint ----------------------------------------------------------------------------------

    def _client_auth(self, request: Request, form: dict[str, list[str]]) -> Response | None:
        """HTTP Basic (``client_id:client_secret``, each form-urlencoded, RFC 6749 §2.3.1) or the two form fields."""
        header = request.headers.get("authorization") or ""
        scheme, _, value = header.partition(" ")
        field_id, field_secret = _first(form, "client_id"), _first(form, "client_secret")
        if scheme.lower() == "basic":
            unauthorized = _oauth_error(401, "invalid_client", headers={"WWW-Authenticate": 'Basic realm="discord"'})
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return unauthorized
            basic_id, sep, basic_secret = decoded.partition(":")
            basic_id, basic_secret = unquote_plus(basic_id), unquote_plus(basic_secret)
            if (
                not sep
                or basic_id != self.discord.client_id
                or not secrets.compare_digest(basic_secret, self.discord.client_secret)
            ):
                return unauthorized
            if field_id not in (None, basic_id) or field_secret not in (None, basic_secret):
                return unauthorized
            return None
        if (
            field_id != self.discord.client_id
            or field_secret is None
            or not secrets.compare_digest(field_secret, self.discord.client_secret)
        ):
            return _oauth_error(401, "invalid_client")
        return None

    def _issue_tokens(self, user: str, scopes: list[str], family: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(22), secrets.token_urlsafe(22)
        self.discord.access[access] = {
            "access_token": access,
            "user": user,
            "scopes": list(scopes),
            "family": family,
            "expires_at": self.discord.clock() + ACCESS_TTL,
        }
        self.discord.refresh[refresh] = {"user": user, "scopes": list(scopes), "family": family}
        self.discord.issued += [access, refresh]
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL,
            "refresh_token": refresh,
            "scope": " ".join(scopes),
        }

    def _revoke_family(self, family: str | None) -> None:
        if family is None:
            return
        for store in (self.discord.access, self.discord.refresh):
            for key in [k for k, v in store.items() if v["family"] == family]:
                del store[key]

    async def token(self, request: Request) -> Response:
        form = form_of(request)
        with self.discord.lock:
            self.discord.token_requests += 1
            if any(len(values) > 1 for values in form.values()):
                return _oauth_error(400, "invalid_request", "Parameters may not be repeated.")
            unauthorized = self._client_auth(request, form)
            if unauthorized is not None:
                return unauthorized
            params = {k: v[0] for k, v in form.items()}
            grant_type = params.get("grant_type")
            ok = {"Cache-Control": "no-store", "Pragma": "no-cache"}
            if grant_type == "authorization_code":
                if not params.get("code"):
                    return _oauth_error(400, "invalid_request", 'Missing "code" in request.')
                code = self.discord.codes.get(params["code"])
                if code is None or self.discord.clock() >= code["expires_at"]:
                    return _oauth_error(400, "invalid_grant", 'Invalid "code" in request.')
                if code["used"]:
                    self._revoke_family(code["family"])  # RFC 6749 §4.1.2: a replayed code revokes its tokens
                    return _oauth_error(400, "invalid_grant", 'Invalid "code" in request.')
                sent = params.get("redirect_uri")
                if (code["redirect_given"] or sent is not None) and sent != code["redirect_uri"]:
                    return _oauth_error(400, "invalid_grant", 'Invalid "redirect_uri" in request.')
                code["used"], code["family"] = True, secrets.token_hex(8)
                return JSONResponse(self._issue_tokens(code["user"], code["scopes"], code["family"]), headers=ok)
            if grant_type == "refresh_token":
                if not params.get("refresh_token"):
                    return _oauth_error(400, "invalid_request", 'Missing "refresh_token" in request.')
                refresh = self.discord.refresh.get(params["refresh_token"])
                if refresh is None:
                    return _oauth_error(400, "invalid_grant", 'Invalid "refresh_token" in request.')
                scopes = refresh["scopes"]
                if params.get("scope"):
                    asked = params["scope"].split()
                    if any(s not in scopes for s in asked):  # RFC 6749 §6: never wider than the original grant
                        return _oauth_error(400, "invalid_scope", INVALID_SCOPE)
                    scopes = list(dict.fromkeys(asked))
                del self.discord.refresh[params["refresh_token"]]  # rotation: the old refresh token stops working
                return JSONResponse(self._issue_tokens(refresh["user"], scopes, refresh["family"]), headers=ok)
            return _oauth_error(400, "unsupported_grant_type")

    async def revoke(self, request: Request) -> Response:
        """RFC 7009. Discord: revoking either token revokes every token of that authorization."""
        form = form_of(request)
        with self.discord.lock:
            unauthorized = self._client_auth(request, form)
            if unauthorized is not None:
                return unauthorized
            token = (form.get("token") or [""])[0]
            if not token:
                return _oauth_error(400, "invalid_request", 'Missing "token" in request.')
            found = self.discord.access.get(token) or self.discord.refresh.get(token)
            if found is not None:
                self._revoke_family(found["family"])
                self.discord.consents.pop(found["user"], None)
            return JSONResponse({})

    # ---- Bearer routes -------------------------------------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        token = token_of(request)
        with self.discord.lock:
            if token is None:  # the bot token
                return JSONResponse(self.discord.bot_user())
            if "identify" not in token["scopes"]:
                return error(401, 0, "401: Unauthorized")
            user = self.discord.public_user(token["user"])
            if "email" in token["scopes"]:
                # Only with the ``email`` scope: ``email`` ?string and ``verified`` boolean (discord-api-docs
                # developers/resources/user.mdx:48-49 at 38540d49; UserPIIResponse in discord-api-spec
                # specs/openapi.json at 74fda0fa, shared/specs/discord/openapi.json:41157-41166). Both as stored: an
                # address Discord has not verified says so, and an account without one answers null.
                stored = self.discord.users[token["user"]]
                user.update(email=stored["email"], verified=stored["verified"])
            return JSONResponse(user)

    async def oauth_me(self, request: Request) -> Response:
        token = token_of(request)
        assert token is not None  # the guard answers 401 without one
        with self.discord.lock:
            answer: dict[str, Any] = {
                "application": {
                    "id": self.discord.client_id,
                    "name": self.discord.roles[self.discord.bot_role]["name"],
                    "icon": None,
                    "description": "",
                    "type": None,
                    "bot_public": False,
                    "bot_require_code_grant": False,
                    "verify_key": "0" * 64,
                    "flags": 0,
                },
                "scopes": list(token["scopes"]),
                "expires": iso(token["expires_at"]),
            }
            if "identify" in token["scopes"]:
                answer["user"] = self.discord.public_user(token["user"])
            return JSONResponse(answer)


def _page(title: str, body: str, status: int = 200, raw: bool = False) -> HTMLResponse:
    content = body if raw else f"<p>{html.escape(body)}</p>"
    return HTMLResponse(
        f'<!doctype html><html><head><meta charset="utf-8"><title>Sandbox Discord — '
        f"{html.escape(title)}</title></head><body><h1>Sandbox Discord — {html.escape(title)}</h1>"
        f"{content}</body></html>",
        status_code=status,
    )


def _redirect(redirect_uri: str, state: str | None, **params: str) -> Response:
    if state is not None:
        params["state"] = state
    return RedirectResponse(redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params), status_code=302)
