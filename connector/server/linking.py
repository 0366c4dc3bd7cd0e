"""Members link their Discord account to their shop purchases: proof of an order, then Discord OAuth2.

The proof is either a *paid* order's number with its email (how 卡盟 shops identify guest buyers) or a signed,
expiring, single-use link (``cardbridge link-url --customer ID``, for the shop's order email). Then the member signs in
with Discord (authorization code grant; ``identify``, optionally ``email``, ``guilds.join`` and
``role_connections.write``); the ``state`` parameter is signed, expires, is bound to the browser by a cookie and is
spent on its first use, so a callback cannot be replayed or forged.

What the link proves decides what it may do (:class:`connector.state.identities.Proof`): an order number links a
customer that is linked to nobody; a customer linked to another Discord account moves only for a stronger proof (the
Discord account's verified email equal to the shop email, a signed link, the admin CLI). A refused move changes
nothing and tells the previous account's holder nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from adapters.base import CommunityAdapter, MemberAuthorization, MemberOAuth, OAuthError
from connector.core.config import Config, ConfigError, LinkConfig
from connector.core.http import RemoteError
from connector.core.logs import log, mask_email
from connector.features.linked_roles import metadata
from connector.flow import describe_customer
from connector.state import State
from connector.state.identities import LinkRefused, Proof, contact_email

#: Minutes a member has between leaving for Discord and coming back.
STATE_MINUTES = 15


class LinkError(Exception):
    """Something the member can act on; the message is shown on the page."""


class LinkMoveRefused(LinkError):
    """The customer is linked to another Discord account by a proof at least as strong as this one: nothing moved."""


@dataclass(frozen=True)
class Linked:
    customer_key: str
    #: What was linked, as the member may see it: ``customer #26 (m***@example.com)`` or ``m***@example.com``.
    customer: str
    user_id: str
    username: str
    joined: bool
    linked_roles: bool
    replaced: str | None
    proof: Proof


@dataclass(frozen=True)
class SignedLink:
    """A valid, unused signed link: its customer, and the token's id and expiry (to spend it once)."""

    customer_key: str
    token_id: str
    expires_at: float


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from an ``X-Forwarded-For`` entry (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``, ``::1``)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The address the brute-force brake counts a request against.

    The peer's own address, unless the peer is one of the ``trusted`` proxies: then the right-most
    ``X-Forwarded-For`` entry that is not a trusted proxy (what the proxy nearest to us saw; entries to its left were
    written by the client and prove nothing). A trusted proxy that sends no ``X-Forwarded-For`` leaves its own address.
    """
    peer_address = _address(peer or "")
    if peer_address is None or not any(peer_address in network for network in trusted):
        return peer or "unknown"
    entries = [e.strip() for header in forwarded_for for e in header.split(",") if e.strip()]
    if not entries:
        _warn_no_forwarded_for(peer or "unknown")
        return peer or "unknown"
    for entry in reversed(entries):
        address = _address(entry)
        if address is None:
            return entry[:64]  # a trusted proxy wrote something that is not an address: count it as it is
        if not any(address in network for network in trusted):
            return str(address)
    return str(_address(entries[0]))  # every hop is a trusted proxy: the farthest one is the client


_warned: set[str] = set()


def _warn_no_forwarded_for(peer: str) -> None:
    if peer not in _warned and len(_warned) < 100:
        _warned.add(peer)
        log.warning("trusted proxy sent no X-Forwarded-For: its clients share one brake", proxy=peer)


def link_token_id(token: str) -> str:
    """The id a signed link is spent under (its hash: the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


class LinkService:
    def __init__(self, config: Config, state: State, community: CommunityAdapter) -> None:
        """``community``: the ``[link]`` community's adapter, whose members authorise its application themselves.

        Members' tokens are kept in ``state.tokens`` (a state opened with ``[link] token_key``); without it, no
        Linked Roles.
        """
        assert config.link is not None
        self.link: LinkConfig = config.link
        self.community = config.link.community
        oauth = community.oauth if isinstance(community, MemberAuthorization) else None
        if not isinstance(community, MemberAuthorization) or oauth is None:
            raise ConfigError(f"link.community: {self.community!r} cannot authorise members (it needs Discord OAuth2)")
        self.members: MemberAuthorization = community
        self.oauth: MemberOAuth = oauth
        self.store = state
        self.tokens = state.tokens
        self.links = URLSafeTimedSerializer(self.link.secret, salt="cardbridge-link")
        self.states = URLSafeTimedSerializer(self.link.secret, salt="cardbridge-oauth-state")
        #: Failed proofs per client address and order number, in the store: every replica and restart shares them.
        self.attempts = state.link_attempts.brake(self.link.secret.encode(), self.link.attempts_per_hour)
        self.trusted_proxies: list[Network] = [ipaddress.ip_network(n) for n in self.link.trusted_proxies]

    @property
    def redirect_uri(self) -> str:
        return f"{self.link.public_url}/link/callback"

    @property
    def scopes(self) -> list[str]:
        return (
            ["identify"]
            + (["email"] if self.link.verified_email else [])
            + (["guilds.join"] if self.link.join_guild else [])
            + (["role_connections.write"] if self.link.linked_roles else [])
        )

    # ---- proof ---------------------------------------------------------------------------------------------------

    def link_url(self, customer_key: str) -> str:
        """A link for the shop's email to the buyer; valid ``link_ttl_hours``, once."""
        return f"{self.link.public_url}/link?t={self.links.dumps({'c': customer_key})}"

    def from_link(self, token: str) -> SignedLink:
        """The customer a signed link is for, unless it is forged, expired or used already."""
        max_age = self.link.link_ttl_hours * 3600
        try:
            data, signed_at = self.links.loads(token, max_age=max_age, return_timestamp=True)
        except SignatureExpired:
            raise LinkError("This link has expired. Ask the shop for a new one, or use your order number.") from None
        except BadSignature:
            raise LinkError("This link is not valid. Use your order number and email instead.") from None
        token_id = link_token_id(token)
        if self.store.identities.token_spent("link", token_id):
            raise LinkError("This link was used already. Ask the shop for a new one, or use your order number.")
        return SignedLink(str(data["c"]), token_id, signed_at.timestamp() + max_age)

    def prove(self, order_id: str, email: str, client: str) -> str:
        """The customer a paid order's number + email belong to. Failures count against the client and the order.

        The number is normalised once (spaces around it dropped, upper case, as its stored hash is made), before
        both the brake and the look-up: spelling it in another case is the same guess.
        """
        number, email = order_id.strip().upper()[:64], email.strip().lower()
        keys = (f"ip:{client}", f"order:{number}")
        wait = self.attempts.blocked_for(*keys)
        if wait > 0:
            raise TooManyAttempts(wait)
        found = self.store.identities.order_proof(number) if number else None
        known = (found.email or "").lower() if found else ""
        # Compared in constant time, and the same answer whichever part was wrong: the page tells no one which
        # order numbers exist.
        if found is None or not email or not hmac.compare_digest(known.encode(), email.encode()):
            self.attempts.failed(*keys)
            log.warning("link proof refused", client=client)
            raise LinkError("No order with that number and email was found. Check both and try again.")
        if not found.paid:
            # Only a paid order proves a purchase (an unpaid one costs nothing to place, with any email).
            self.attempts.failed(*keys)
            log.warning("link proof refused: order not paid", client=client)
            raise LinkError(
                "This order is not paid (yet): only a paid order links an account. Try again once it is paid."
            )
        return found.customer_key

    # ---- OAuth2 --------------------------------------------------------------------------------------------------

    def start(self, customer_key: str, proof: Proof, link: SignedLink | None = None) -> tuple[str, str]:
        """(the Discord authorize URL, the nonce to set as the browser cookie). ``proof``: how the customer was
        proven (an order number or a signed link, whose id is carried to be spent when the sign-in finishes)."""
        nonce = secrets.token_urlsafe(16)
        data: dict[str, object] = {"c": customer_key, "n": nonce, "p": proof.value}
        if link is not None:
            data.update(l=link.token_id, le=int(link.expires_at) + 1)
        state = self.states.dumps(data)
        return self.oauth.authorize_url(self.redirect_uri, self.scopes, state), nonce

    def finish(self, code: str, state: str, nonce: str | None) -> Linked:
        try:
            data, signed_at = self.states.loads(state, max_age=STATE_MINUTES * 60, return_timestamp=True)
        except SignatureExpired:
            raise LinkError("That took too long. Start again from the link page.") from None
        except BadSignature:
            raise LinkError("This sign-in did not start here. Start again from the link page.") from None
        if not nonce or not hmac.compare_digest(str(data.get("n", "")), nonce):
            raise LinkError("This sign-in was started in another browser. Start again from the link page.")
        customer_key = str(data["c"])
        proof = Proof.of(str(data.get("p", ""))) or Proof.ORDER_NUMBER
        if proof not in (Proof.ORDER_NUMBER, Proof.SIGNED_LINK):
            raise LinkError("This sign-in did not start here. Start again from the link page.")
        # Spent before Discord is asked: the same state (and cookie) never links twice, here or on another replica.
        expires = signed_at + timedelta(minutes=STATE_MINUTES)
        if not self.store.identities.spend_token("state", str(data["n"]), expires):
            raise LinkError("This sign-in was used already. Start again from the link page.")
        try:
            tokens = self.oauth.exchange(code, self.redirect_uri)
            me = self.oauth.me(tokens.access_token)
        except OAuthError as error:
            log.warning("oauth code refused", error=error.error)
            raise LinkError(
                "Discord did not accept this sign-in (it may have been used already). Start again."
            ) from None
        except (RemoteError, httpx.HTTPError) as error:
            log.error("oauth failed", error=str(error)[:200])
            raise LinkError("Discord could not be reached. Try again in a few minutes.") from None
        user_id, username = str(me["id"]), str(me.get("global_name") or me.get("username") or me["id"])
        email = contact_email(customer_key, self.store.identities.customer_email(customer_key))
        if "email" in tokens.scopes and _verified_email_matches(me, email):
            proof = Proof.VERIFIED_EMAIL if proof is Proof.ORDER_NUMBER else proof
        if "l" in data:
            link_expires = datetime.fromtimestamp(int(data.get("le", 0)), UTC)
            if not self.store.identities.spend_token("link", str(data["l"]), link_expires):
                raise LinkError("This link was used already. Ask the shop for a new one, or use your order number.")
        customer = _describe(customer_key, email)
        # Discord roles are granted by user id: the id is what identifies the member, as `cardbridge link` does.
        try:
            replaced = self.store.identities.link(self.community, customer_key, user_id, user_id, proof=proof)
        except LinkRefused:
            log.warning("link move refused", community=self.community, customer=customer_key, proof=proof.value)
            raise LinkMoveRefused(self._refusal(customer, proof)) from None
        joined = False
        if "guilds.join" in tokens.scopes:
            joined = self._join(user_id, tokens.access_token)
        linked_roles = self.tokens is not None and "role_connections.write" in tokens.scopes
        if self.tokens is not None:
            self._clear_previous(customer_key, user_id)
            if linked_roles:
                self.tokens.save(
                    self.community,
                    customer_key,
                    user_id,
                    sorted(tokens.scopes),
                    tokens.access_token,
                    tokens.refresh_token,
                    tokens.expires_at,
                )
            else:
                self.tokens.forget(self.community, customer_key)
        log.info(
            "member linked",
            community=self.community,
            customer=customer_key,
            proof=proof.value,
            linked_roles=linked_roles,
        )
        return Linked(customer_key, customer, user_id, username, joined, linked_roles, replaced, proof)

    def _refusal(self, customer: str, proof: Proof) -> str:
        """What a member whose proof cannot move the link is told (nothing about the other account)."""
        how = (
            "sign in with a Discord account whose verified email is the order's email, or ask the shop to move it"
            if self.link.verified_email and proof.strength < Proof.VERIFIED_EMAIL.strength
            else "ask the shop to move it"
        )
        return (
            f"The shop customer {customer} is already linked to another Discord account, so nothing was changed. "
            f"If that account is not yours any more, {how}."
        )

    def _clear_previous(self, customer_key: str, user_id: str) -> None:
        """The customer linked another Discord account before: clear that account's Linked Roles connection (best
        effort, with its own token) before its token is replaced."""
        assert self.tokens is not None
        old = self.tokens.get(self.community, customer_key)
        if old is None or old.user_id == user_id or old.revoked:
            return
        try:
            self.oauth.set_role_connection(
                old.access_token, {"platform_name": self.link.platform_name, "metadata": metadata(0, 0)}
            )
        except (RemoteError, httpx.HTTPError) as error:
            log.warning("previous account's connection not cleared", error=str(error)[:200])

    def _join(self, user_id: str, access_token: str) -> bool:
        """Add the member to the server if they are not in it (the bot must be there with Create Instant Invite)."""
        try:
            return self.members.add_member(user_id, access_token)
        except (RemoteError, httpx.HTTPError) as error:
            status = error.status if isinstance(error, RemoteError) else None
            log.warning("guild join failed", status=status, error=str(error)[:200])
            return False


def _verified_email_matches(me: Mapping[str, Any], email: str | None) -> bool:
    """The Discord account's email is verified by Discord and is the shop customer's email."""
    given = me.get("email")
    if me.get("verified") is not True or not isinstance(given, str) or not given.strip() or not email:
        return False
    return hmac.compare_digest(given.strip().lower().encode(), email.strip().lower().encode())


def _describe(customer_key: str, email: str | None) -> str:
    """The customer as the member may see it: the shop id and the masked email, never the email itself."""
    described = describe_customer(customer_key, email)
    if customer_key.startswith("c:") and email:
        described += f" ({mask_email(email)})"
    return described


class TooManyAttempts(LinkError):
    def __init__(self, wait: float) -> None:
        minutes = max(1, int(wait // 60) + 1)
        super().__init__(f"Too many attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}.")
        self.wait = wait
