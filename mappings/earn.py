"""Pure rules of earning points in the community: what a post is worth, and how much of it a member gets today.

A post is worth ``per_like`` for each counted like once it has ``min_likes`` of them, plus ``accepted_solution``
when it is its topic's solution, at most ``per_post_cap``; a removed post is worth nothing (what it earned is taken
back). Points enter the ledger as deltas towards that worth, one event per change (``earn:<community>:<post>:<n>``),
and a member's positive deltas of one UTC day stay within ``daily_cap``: what is left waits for a later day.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EarnRules:
    per_like: int
    accepted_solution: int
    min_likes: int
    per_post_cap: int
    daily_cap: int


def post_worth(likes: int, accepted: bool, removed: bool, rules: EarnRules) -> int:
    """Points a post is worth now (``likes``: the counted ones)."""
    if removed:
        return 0
    worth = rules.per_like * likes if likes >= max(rules.min_likes, 1) else 0
    if accepted:
        worth += rules.accepted_solution
    return max(0, min(worth, rules.per_post_cap))


def delta(worth: int, recorded: int, allowance: int) -> int:
    """The event to record now for a post: down to its worth at once, up by at most ``allowance`` (today's room)."""
    if worth < recorded:
        return worth - recorded
    return min(worth - recorded, max(allowance, 0))


def counted(likers: list[tuple[str, str | None, bool]], author_id: str, author_key: str | None) -> int:
    """Likes that count: (liker id, liker's customer key or None, old enough), each liker once; not the author, not
    an account linked to the author's shop customer, not a new account."""
    seen: set[str] = set()
    for liker_id, liker_key, old_enough in likers:
        if liker_id == author_id or liker_id in seen or not old_enough:
            continue
        if author_key is not None and liker_key == author_key:
            continue
        seen.add(liker_id)
    return len(seen)
