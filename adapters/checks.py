"""``cardbridge check``: the seam an adapter implements to test its credentials and permissions before a pass.

An adapter that can test itself implements :class:`SelfCheck`; a community is also given a :class:`CheckContext`
(what ``[reviews]``, ``[points]`` and ``[link]`` ask of it, which its own table does not say). ``check()`` makes **read-only** requests (or
``SELECT``s and catalogue reads on a database shop) and yields one :class:`Check` per thing it tested, in the order an
operator would fix them: reach the remote, the credentials, then each permission CardBridge uses. When an early check
fails so that the later ones cannot run (a refused key), it yields the failure and stops: no second line about the
same cause.

Never write, never create (no badge, group, role, thread or coupon), never change a setting; a check that can only be
answered by a write is not made, and the detail says what was not tested. Messages never carry a secret, a query
string or a member's data; they name the URL without credentials and the config key to change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import httpx

from connector.core.config import Config, PointsTarget, ReviewTarget
from connector.core.http_text import shown_url


@dataclass(frozen=True)
class Check:
    """One line of ``cardbridge check``.

    ``what``: the thing tested, short (``"read orders"``, ``"key is an admin key"``); the CLI prefixes the remote's
    name (``shop``, the community's name). ``ok``: it passed. ``detail``: what was found (shown after ✓ or ✗).
    ``fix``: when it failed, what the operator does, naming the config key or the remote's setting to change.
    """

    what: str
    ok: bool
    detail: str = ""
    fix: str = ""


def passed(what: str, detail: str = "") -> Check:
    return Check(what, True, detail)


def failed(what: str, detail: str, fix: str) -> Check:
    return Check(what, False, detail, fix)


@dataclass(frozen=True)
class CheckContext:
    """``review``: the ``[reviews.communities.<name>]`` target, when reviews are posted there. ``points``: the
    ``[points.communities.<name>]`` target. ``link_redirect_uri``: ``<public_url>/link/callback`` when ``[link]``
    names this community (the OAuth2 redirect its application must list)."""

    review: ReviewTarget | None = None
    points: PointsTarget | None = None
    link_redirect_uri: str | None = None

    @classmethod
    def of(cls, name: str, config: Config) -> CheckContext:
        review = config.reviews.communities.get(name) if config.reviews else None
        points = config.points.communities.get(name) if config.points else None
        link = config.link if config.link is not None and config.link.community == name else None
        redirect = f"{link.public_url}/link/callback" if link else None  # as connector/server/linking.py sends it
        return cls(review=review, points=points, link_redirect_uri=redirect)


@runtime_checkable
class SelfCheck(Protocol):
    """Optional capability of a shop or community adapter: test the configured credentials and permissions."""

    def check(self, context: CheckContext | None = None) -> Iterator[Check]:
        """Read-only tests of what this adapter needs, one :class:`Check` each (see the module docstring).

        ``context``: what the rest of the config asks of this adapter beyond its own table and the rules (a community:
        reviews posted there, points sent there, the link page's OAuth2 redirect); without it, only what the rules
        need is tested. ``cardbridge check`` passes ``CheckContext.of(name, config)`` to every community and nothing
        to the shop."""
        ...


def shown(url: str) -> str:
    """A configured URL as a message may show it: no user, password, query string or fragment."""
    try:
        return shown_url(url)
    except (httpx.InvalidURL, ValueError):
        return "(the configured URL)"


def unreachable(what: str, error: httpx.HTTPError, url: str, fix: str) -> Check:
    """A remote that did not answer (refused, timed out, DNS, TLS): one failed line. The client's message already
    names the URL without credentials and the timeout key it ran out of; a bare error gets the URL shown safely."""
    return failed(what, str(error) or f"{type(error).__name__}: no answer from {shown(url)}", fix)
