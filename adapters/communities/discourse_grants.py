"""Badges and groups for the accounts actions name, decided on what the forum does, never on what its errors say.

A forum answers in its own language (``groups.errors.member_already_exist`` is "以下用户已是此群组的成员：…" on a zh_CN
forum), and its members rename themselves. So:

- Groups are changed by ``user_ids`` when the identity store has the account's id (a rename does not change it), by
  ``usernames`` otherwise. The answer lists every user the forum resolved; anyone sent but not listed was dropped
  without a word (``GroupMutations.resolve_users``, discourse/discourse app/services/group_mutations.rb:24-75): the account
  is looked up by id to learn its name now, or reported missing. A 400 ``invalid_parameters`` means nobody resolved.
  A 422 on an add means every resolved user was a member already (``GroupMemberAdder::AlreadyMembers``,
  app/services/group_member_adder.rb:18-31 and :63-66): the group is read back to see who is in.
- ``POST /user_badges.json`` takes a ``username`` only and answers 404 for a name nobody has now, or for a badge
  that is gone (app/controllers/user_badges_controller.rb ``create``: ``fetch_user_from_params``,
  ``fetch_badge_from_params``). The account is read back by id (``GET /admin/users/{id}.json``): renamed, the grant
  goes to the new name; the same name, the badge is what went missing and is found or created again.

An account found under a new name is reported in the outcome (``data[CURRENT_USERNAME]``) so the connector stores it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from adapters.base import CURRENT_USERNAME, Action, Outcome
from adapters.communities.discourse_client import DiscourseClient
from connector.core.http import RemoteError

#: Unresolved accounts of one group call looked up one by one; more than this, and an add reads the group back once.
LOOKUPS = 10


def _error_type(error: RemoteError) -> Any:
    return error.body.get("error_type") if isinstance(error.body, dict) else None


def renamed(action: Action, current: str | None) -> dict[str, Any]:
    """Outcome data reporting the account's name now; only for an account known by id (the one the customer is
    linked to), never for one addressed by name."""
    return {CURRENT_USERNAME: current} if action.user_id and current and current != action.username else {}


class MemberGrants:
    """Applies badge and group actions; ``badge_id``/``group_id`` find or create the remote objects, ``forget``
    drops a cached id that turned out to be gone."""

    def __init__(
        self,
        client: DiscourseClient,
        badge_id: Callable[[str], int],
        group_id: Callable[[str], int],
        forget: Callable[[str, str], None],
    ) -> None:
        self.client = client
        self.badge_id = badge_id
        self.group_id = group_id
        self.forget = forget

    # ---- who the account is now ----------------------------------------------------------------------------------

    def current_username(self, action: Action) -> str | None:
        """The account's name now: by id when known, else whether the name still exists. None: no such account."""
        if action.user_id:
            user = self.client.user_by_id(action.user_id)
            return user.username if user is not None else None
        found = self.client.user(action.username)
        return str(found["username"]) if found else None

    # ---- badges --------------------------------------------------------------------------------------------------

    def badge(self, action: Action) -> Outcome:
        badge_id = self.badge_id(action.target)
        if action.op == "grant":
            return self._grant_badge(action, badge_id)
        ref, current = (int(action.remote_ref), action.username) if action.remote_ref else self.user_badge(action)
        if ref is not None:
            try:
                self.client.revoke_badge(ref)  # by the grant's id: the account's name does not matter
            except RemoteError as error:
                if error.status != 404:  # already gone (revoked by hand): the goal holds
                    raise
        return Outcome(action.id, True, data=renamed(action, current))

    def _grant_badge(self, action: Action, badge_id: int) -> Outcome:
        try:
            return Outcome(action.id, True, ref=str(self.client.grant_badge(action.username, badge_id)))
        except RemoteError as error:
            if error.status != 404:
                raise
            missing = error
        current = self.current_username(action)  # 404: the account or the badge; read back which
        if current is None:
            return Outcome(action.id, False, error=f"no forum account {self._who(action)} any more ({missing})")
        if current.lower() == action.username.lower():
            self.forget("badge", action.target)  # the account is there: the badge is gone; find or create it again
            badge_id = self.badge_id(action.target)
        ref = self.client.grant_badge(current, badge_id)
        return Outcome(action.id, True, ref=str(ref), data=renamed(action, current))

    def user_badge(self, action: Action) -> tuple[int | None, str | None]:
        """(UserBadge id of the action's badge on its account or None, the account's name now or None if gone)."""
        badge_id = self.badge_id(action.target)
        try:
            return self.client.user_badge_id(action.username, badge_id), action.username
        except RemoteError as error:
            if error.status != 404:
                raise
        current = self.current_username(action)
        if current is None or current.lower() == action.username.lower():
            return None, current
        return self.client.user_badge_id(current, badge_id), current

    # ---- groups --------------------------------------------------------------------------------------------------

    def group(self, group: str, op: str, actions: Sequence[Action]) -> list[Outcome]:
        """Up to 1000 actions of one group and op: one call for those with a user id, one for the others."""
        group_id = self.group_id(group)
        by_id = [a for a in actions if a.user_id]
        by_name = [a for a in actions if not a.user_id]
        outcomes = self._group_call(group, group_id, op, by_id, by_id=True) if by_id else []
        return outcomes + (self._group_call(group, group_id, op, by_name, by_id=False) if by_name else [])

    def _group_call(self, group: str, group_id: int, op: str, actions: Sequence[Action], by_id: bool) -> list[Outcome]:
        values = [str(a.user_id) for a in actions] if by_id else [a.username for a in actions]
        selector = {"user_ids": values} if by_id else {"usernames": values}
        call = self.client.add_members if op == "grant" else self.client.remove_members
        try:
            resolved = call(group_id, **selector)
        except RemoteError as error:
            if error.status == 422 and op == "grant":
                # Every account the forum resolved is in the group already; its words say so in any language, but
                # only the group itself says who that is.
                return self._read_back(group, actions)
            if error.status != 400 or _error_type(error) != "invalid_parameters":
                raise
            resolved = set()  # nobody in the call resolved
        unresolved = [a for a in actions if a.username.lower() not in resolved]
        if op == "grant" and len(unresolved) > LOOKUPS:
            done = [Outcome(a.id, True) for a in actions if a.username.lower() in resolved]
            return done + self._read_back(group, unresolved)
        return [Outcome(a.id, True) for a in actions if a.username.lower() in resolved] + [
            self._unresolved(a, op, resolved) for a in unresolved
        ]

    def _unresolved(self, action: Action, op: str, resolved: set[str]) -> Outcome:
        """An account the forum did not list: renamed (resolved under its new name), or gone."""
        current = self.current_username(action) if action.user_id else None
        if current is not None and current.lower() in resolved:
            return Outcome(action.id, True, data=renamed(action, current))
        if current is None and action.user_id and op == "revoke":
            return Outcome(action.id, True)  # the account is gone: it holds nothing
        return Outcome(action.id, False, error=f"no forum account {self._who(action)} any more")

    def _read_back(self, group: str, actions: Sequence[Action]) -> list[Outcome]:
        """Who of ``actions`` is in the group now, by id where known (a member may have been renamed)."""
        members = self.client.group_member_ids(group)
        names = {name.lower(): name for name in members.values()}
        outcomes = []
        for action in actions:
            user_id = int(action.user_id) if action.user_id and action.user_id.isdigit() else None
            current = members.get(user_id) if user_id is not None else names.get(action.username.lower())
            if current is None:
                outcomes.append(Outcome(action.id, False, error=f"{self._who(action)} is not in group {group!r}"))
            else:
                outcomes.append(Outcome(action.id, True, data=renamed(action, current)))
        return outcomes

    def is_member(self, group: str, action: Action) -> bool:
        current = self.current_username(action) if action.user_id else action.username
        return current is not None and self.client.is_member(group, current)

    @staticmethod
    def _who(action: Action) -> str:
        return f"id {action.user_id} (was {action.username!r})" if action.user_id else f"named {action.username!r}"
