"""The community side of points flowing back to the shop: what members wrote and how it was received, and the
private channel through which they ask to redeem points. Optional capabilities of community adapters.

Rules (how many points a like is worth, caps, who counts) live in ``mappings.earn``; adapters only read facts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Liker:
    """A member who liked (Discourse) or reacted to (Discord) a post, each counted once per post."""

    user_id: str
    #: When the account was made (Discourse ``created_at``; Discord: from the snowflake id), or None if unknown.
    joined_at: datetime | None = None


@dataclass(frozen=True)
class Contribution:
    """A post in a place points are earned (a category, a forum channel), as the community has it now."""

    post_id: str
    author_id: str
    author_username: str
    #: Where it was posted: the Discourse category's name, or the Discord channel's id (the parent forum's id for a
    #: message in a forum thread).
    where: str
    created_at: datetime
    likers: tuple[Liker, ...] = ()
    #: The post is its topic's accepted solution (discourse-solved).
    accepted: bool = False
    #: A moderator (or the author) deleted or hid the post: it keeps no points.
    removed: bool = False


@runtime_checkable
class ContributionSource(Protocol):
    """Optional: a community whose posts, likes and accepted solutions CardBridge can read (with its admin key or
    bot token; no gateway)."""

    def contributions(self, places: Sequence[str], since: datetime, generation: str = "") -> Iterator[Contribution]:
        """Every post made since ``since`` in the given places (category names / channel ids), removed ones included
        when the community still answers for them. Bounded: the adapter stops at its own page limits.

        A source may skip what it remembers as unchanged since an earlier walk (Discourse: topics whose list entry
        says the same), but only for the same ``generation``: the core changes it when who is matched to a shop
        customer changes, since a post skipped as unchanged may earn for its newly matched author."""
        ...


@runtime_checkable
class OmitsRemoved(Protocol):
    """Optional, with :class:`ContributionSource`: a source that leaves a deleted post out instead of reporting it
    ``removed`` (Discord: a deleted message is gone). After a walk that was not cut short, a post it did not list
    and that was made since the walk's ``since`` is gone, and its points are taken back."""

    @property
    def contributions_complete(self) -> bool:
        """Whether the last ``contributions`` walk read everything (no cap cut it short)."""
        ...

    def posted_at(self, post_id: str) -> datetime | None:
        """When the post was made, from its id alone (no request); None if the id does not tell."""
        ...


@dataclass(frozen=True)
class InboxMessage:
    """A private message to CardBridge's own account (a Discourse PM to the API user)."""

    #: Stable id of the message (the post id): the redemption's key is derived from it.
    message_id: str
    #: The conversation to answer in (the PM topic id).
    conversation_id: str
    sender_id: str
    sender_username: str
    title: str
    body: str
    created_at: datetime


@runtime_checkable
class PrivateInbox(Protocol):
    """Optional: a community where members write to CardBridge privately and get an answer there (Discourse PMs).

    ``messages_since`` is the polling fallback for the ``post_created`` webhook; ``reply`` answers in the same
    conversation; ``replied`` reads the conversation back (read before retry: a reply carries ``marker``)."""

    def messages_since(self, cursor: str | None) -> tuple[list[InboxMessage], str | None]:
        """Messages written to CardBridge after ``cursor`` (None: the newest page only), oldest first, and the new
        cursor. CardBridge's own replies are left out."""
        ...

    def message(self, message_id: str) -> InboxMessage | None:
        """One message by id (a webhook named it), or None if it is not a private message to CardBridge."""
        ...

    def reply(self, conversation_id: str, text: str) -> str:
        """Answer in the conversation; returns the reply's post id."""
        ...

    def replied(self, conversation_id: str, marker: str) -> str | None:
        """The id of CardBridge's reply in the conversation that contains ``marker``, or None."""
        ...


@dataclass(frozen=True)
class Interaction:
    """A slash command a member ran (a verified Discord interaction of type APPLICATION_COMMAND)."""

    interaction_id: str
    #: The interaction token: valid 15 minutes for follow-ups (``PATCH …/messages/@original``); never logged.
    token: str
    user_id: str
    username: str
    #: ``points`` or ``redeem``.
    command: str
    #: The option ``points`` of ``/redeem`` (None for ``/points``, or when missing).
    amount: int | None
    guild_id: str | None


class ReplyExpired(Exception):
    """The interaction's reply can no longer be edited (its token expired or is unknown)."""


class MalformedInteraction(ValueError):
    """A verified body that is not a command CardBridge can read; the message never holds the token."""


@runtime_checkable
class InteractionEndpoint(Protocol):
    """Optional: a community that sends members' slash commands to CardBridge's HTTP endpoint (Discord).

    The daemon serves the endpoint; the adapter verifies and reads requests and answers follow-ups."""

    def verify_interaction(self, signature: str, timestamp: str, body: bytes) -> bool:
        """Whether the request is signed by the application's key (Ed25519 over ``timestamp + body``)."""
        ...

    def read_interaction(self, body: bytes) -> Interaction | None:
        """The command in a verified body, or None for a PING or a type CardBridge does not handle;
        :class:`MalformedInteraction` for a body no real client sends."""
        ...

    def edit_reply(self, token: str, text: str) -> None:
        """Replace the (deferred, ephemeral) first reply to an interaction (``PATCH /webhooks/{app}/{token}/
        messages/@original``), with no mentions parsed; :class:`ReplyExpired` once that is no longer possible."""
        ...

    def register_commands(self) -> None:
        """Create or update ``/points`` and ``/redeem`` (one bulk overwrite of the guild's commands)."""
        ...
