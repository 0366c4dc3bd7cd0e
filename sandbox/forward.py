"""``Forwarded``: an attribute of a sandbox handle that lives on one of its parts.

The sandboxes keep their state in parts (a state object, its settings, a rate limiter) that the controllers share; the
handle tests hold keeps the old flat attributes (``forum.min_post_length = 5``, ``discord.browser_user = uid``) by
forwarding each read and assignment to the part that owns it.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Generic, TypeVar, overload

T = TypeVar("T")


class Forwarded(Generic[T]):
    """``Forwarded[int]("state.settings")``: reads and assigns ``self.state.settings.<attribute name>``; ``name``
    names the part's attribute when it differs from the handle's."""

    def __init__(self, part: str, name: str | None = None) -> None:
        self.part = attrgetter(part)
        self.name = name or ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    @overload
    def __get__(self, obj: None, owner: type) -> Forwarded[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> Forwarded[T] | T:
        if obj is None:
            return self
        value: T = getattr(self.part(obj), self.name)
        return value

    def __set__(self, obj: object, value: T) -> None:
        setattr(self.part(obj), self.name, value)
