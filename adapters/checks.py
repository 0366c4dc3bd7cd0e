"""``cardbridge check``: the seam an adapter implements to test its credentials and permissions before a pass.

An adapter that can test itself implements :class:`SelfCheck`. ``check()`` makes **read-only** requests (or
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


@runtime_checkable
class SelfCheck(Protocol):
    """Optional capability of a shop or community adapter: test the configured credentials and permissions."""

    def check(self) -> Iterator[Check]:
        """Read-only tests of what this adapter needs, one :class:`Check` each (see the module docstring)."""
        ...
