"""Users: ``Admin::UsersController`` (the list with ``AdminUserIndexQuery``, one user) and ``UsersController``
(``/u/{username}``: show, emails, update through ``UserUpdater``, rename through ``UsernameChanger``).

A renamed user is found by the new name only: every ``/u/{username}``, ``/user-badges/{username}`` and
``POST /user_badges`` with the old name is 404 (``fetch_user_from_params`` → ``User.find_by_username``), group adds by
the old name drop it; ``GET /admin/users/{id}.json`` finds the account by its id whatever its name."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.errors import MSG_MISSING_USER_FIELD, forbidden, invalid_params, json_error, not_found, require
from sandbox.discourse.membership import set_primary_group
from sandbox.discourse.rails import blank, ruby_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route, user_from_params
from sandbox.discourse.state import ForumState, Row, is_staff

#: ``AdminUserIndexQuery#find_users`` page size
USERS_PAGE_SIZE = 100
#: ``UserField.max_length``
USER_FIELD_MAX_LENGTH = 2048
TRUST_LEVELS = {"newuser": 0, "basic": 1, "member": 2, "regular": 3, "leader": 4}


class Users:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("GET", rf"/admin/users/list/(?P<flag>[^/.]+){J}", self.index, admin_only=True),
            route("GET", rf"/admin/users/(?P<id>-?\d+){J}", self.admin_show, admin_only=True),
            route("GET", rf"/u/(?P<username>[^/]+?)/emails{J}", self.emails),
            route("PUT", rf"/u/(?P<username>[^/]+?)/preferences/username{J}", self.rename),
            route("GET", rf"/u/(?P<username>[^/]+?){J}", self.show),
            route("PUT", rf"/u/(?P<username>[^/]+?){J}", self.update),
        ]

    def index(self, ctx: Ctx) -> Any:
        """``Admin::UsersController#index`` + ``AdminUserIndexQuery`` (line numbers: lib/admin_user_index_query.rb,
        the newest discourse/discourse version the source index holds, 7287 characters; the repository snapshot is
        too large to fetch whole)."""
        p = ctx.params
        flag = ctx.path_params["flag"]
        users = list(self.forum.users.values())
        if flag in TRUST_LEVELS:
            users = [u for u in users if u["trust_level"] == TRUST_LEVELS[flag]]
        classifications: dict[str, Callable[[Row], Any]] = {
            "staff": lambda u: u["admin"] or u["moderator"],
            "admins": lambda u: u["admin"],
            "moderators": lambda u: u["moderator"],
            "silenced": lambda u: u["silenced"],
            "suspended": lambda u: u["suspended"],
            "pending": lambda u: not u["suspended"] and not u["approved"] and u["active"],
            "staged": lambda u: u["staged"],
        }
        classification = classifications.get(flag)
        if classification is not None:
            users = [u for u in users if classification(u)]
        # The ``active`` in the path (``query`` = "active") filters nothing: it only orders by last seen
        # (lib/admin_user_index_query.rb:60-61). Accounts whose owner never confirmed the email are listed unless
        # ``activation=activated`` is sent (``filter_by_activation``, :85-92, appended in ``find_users_query``, :246;
        # ``User.activated`` is ``where(active: true)``); older forums ignore the parameter (``activation_filter``).
        if self.forum.activation_filter and p.get("activation") == "activated":
            users = [u for u in users if u["active"]]
        elif self.forum.activation_filter and p.get("activation") == "not_activated":
            users = [u for u in users if not u["active"]]
        if not blank(p.get("exclude")):
            users = [u for u in users if str(u["id"]) != str(p["exclude"])]
        if not blank(p.get("email")):
            # exact, primary email only: user_emails.email = the downcased param (:114-115), on top of the filters above
            wanted = str(p["email"]).lower()
            users = [u for u in users if u["email"] == wanted]
        elif not blank(p.get("filter")):
            terms = [t for t in re.split(r"[,\s]+", str(p["filter"])) if t]
            if len(terms) > 100:
                raise invalid_params("filter")
            users = [u for u in users if _matches_filter(u, terms)]
        users = self._order(users, flag, p)
        page = max(ruby_int(p.get("page")) - 1, 0)
        users = users[page * USERS_PAGE_SIZE : (page + 1) * USERS_PAGE_SIZE]
        emails = p.get("show_emails") == "true"
        if emails:
            self.forum.staff_actions.append({"action": "check_email", "acting_user": ctx.actor["username"],
                                             "context": ctx.path, "user_ids": [u["id"] for u in users]})  # fmt: skip
        return [ser.admin_list_user(self.forum, u, emails) for u in users]

    def _order(self, users: list[Row], flag: str, p: dict[str, Any]) -> list[Row]:
        order = p.get("order")
        descending = blank(p.get("asc"))
        columns: dict[str, Callable[[Row], Any]] = {
            "created": lambda u: u["_created"],
            "last_emailed": lambda u: 0,
            "seen": lambda u: u["last_seen_at"] or "1970-01-01",
            "username": lambda u: u["username"],
            "email": lambda u: u["email"],
            "trust_level": lambda u: u["trust_level"],
            "days_visited": lambda u: 0,
            "posts_read": lambda u: 0,
            "topics_viewed": lambda u: 0,
            "posts": lambda u: self.forum.post_count(u),
            "read_time": lambda u: 0,
        }
        by_id = sorted(users, key=lambda u: u["id"])
        if not blank(order):
            column = columns.get(re.sub(r" (asc|desc)\Z", "", str(order).lower()))
            if column is None:
                return by_id
            return sorted(by_id, key=column, reverse=descending)
        by_name = sorted(by_id, key=lambda u: u["username"].lower())
        if flag == "active":  # users.last_seen_at DESC NULLS LAST, users.username
            seen = sorted((u for u in by_name if u["last_seen_at"]), key=lambda u: u["last_seen_at"], reverse=True)
            return seen + [u for u in by_name if not u["last_seen_at"]]
        return sorted(by_name, key=lambda u: u["_created"], reverse=True)  # users.created_at DESC, users.username

    def admin_show(self, ctx: Ctx) -> Any:
        """``Admin::UsersController#show``: the account by id (``fetch_user``: 404 when there is none), serialized
        by ``AdminDetailedUserSerializer`` (``id``, ``username``, … and ``groups``)."""
        forum = self.forum
        user = forum.users.get(int(ctx.path_params["id"]))
        if user is None:
            raise not_found()
        data = ser.admin_list_user(forum, user, emails=False)
        data.update(
            {
                "primary_group_id": user["primary_group_id"],
                "badge_count": sum(1 for ub in forum.user_badges.values() if ub["user_id"] == user["id"]),
                "groups": [ser.basic_group(forum, g, ctx.actor) for g in forum.groups_of(user, automatic=True)],
                "external_ids": dict(user["external_ids"]),
                "single_sign_on_record": None,
                "can_be_deleted": user["id"] > 0 and not user["admin"],
                "approved_by": None,
            }
        )
        return data

    def rename(self, ctx: Ctx) -> Any:
        """``UsersController#username``: ``params.require(:new_username)``, then ``UsernameChanger.change``; answers
        ``{"id", "username"}``, or 422 with the validation messages (``render_json_error``, no ``error_type``)."""
        new_username = require(ctx.params, "new_username")
        user = user_from_params(self.forum, ctx)
        if not is_staff(ctx.actor) and ctx.actor["id"] != user["id"]:
            raise forbidden()  # guardian.ensure_can_edit_username!
        errors = rename_user(self.forum, user, str(new_username))
        if errors:
            raise json_error(",".join(errors))
        return {"id": user["id"], "username": user["username"]}

    def emails(self, ctx: Ctx) -> Any:
        user = user_from_params(self.forum, ctx)
        if not is_staff(ctx.actor) and ctx.actor["id"] != user["id"]:
            raise forbidden()
        self.forum.staff_actions.append(
            {"action": "check_email", "acting_user": ctx.actor["username"], "user_ids": [user["id"]]}
        )
        return {"email": user["email"], "secondary_emails": list(user["secondary_emails"]), "unconfirmed_emails": [],
                "associated_accounts": []}  # fmt: skip

    def show(self, ctx: Ctx) -> Any:
        forum = self.forum
        user = user_from_params(forum, ctx)
        grants = forum.grants_of(user)
        result: dict[str, Any] = {"user_badges": [ser.detailed_user_badge(forum, ub, ctx.actor) for ub in grants[:3]]}
        if grants:
            badges = [forum.badges[ub["badge_id"]] for ub in grants[:3]]
            result["badges"] = [ser.badge_json(b, admin=False) for b in {b["id"]: b for b in badges}.values()]
        result["user"] = ser.user_json(forum, user, ctx.actor)
        return result

    def update(self, ctx: Ctx) -> Any:
        """``UsersController#update`` through ``UserUpdater``: invalid primary/flair/title choices are ignored."""
        forum = self.forum
        user = user_from_params(forum, ctx)
        actor = ctx.actor
        if not is_staff(actor) and actor["id"] != user["id"]:
            raise forbidden()
        p = ctx.params
        if "name" in p:
            user["name"] = p["name"]
        fields = p.get("user_fields")
        if isinstance(fields, dict) and fields:
            values: dict[str, Any] = {}
            for field_id, definition in sorted(forum.user_fields.items()):
                if not definition["editable"] and not is_staff(actor):
                    continue
                if str(field_id) not in fields:
                    continue
                value = fields[str(field_id)]
                value = None if value == "false" else value
                if isinstance(value, str):
                    value = value[:USER_FIELD_MAX_LENGTH]
                if blank(value) and definition["required"]:
                    raise json_error(MSG_MISSING_USER_FIELD)
                values[str(field_id)] = value
            user["user_fields"].update(values)
        if "title" in p and p["title"] != user["title"] and is_staff(actor):
            user["title"] = p["title"] or None
        if not blank(p.get("primary_group_id")):
            group = forum.groups.get(ruby_int(p["primary_group_id"]))
            if group is not None and not group["automatic"] and forum.is_member(group, user):
                set_primary_group(forum, user, group["id"])
        if "flair_group_id" in p:
            if blank(p["flair_group_id"]):
                user["flair_group_id"] = None
            else:
                group = forum.groups.get(ruby_int(p["flair_group_id"]))
                if (
                    group is not None
                    and forum.is_member(group, user)
                    and (group["flair_icon"] or group["flair_upload_id"])
                ):
                    user["flair_group_id"] = group["id"]
        external = p.get("external_ids")
        if isinstance(external, dict) and actor["admin"]:
            for provider, uid in external.items():
                if blank(uid):
                    user["external_ids"].pop(provider, None)
                else:
                    user["external_ids"][provider] = str(uid)
        return {"success": "OK", "user": ser.user_json(forum, user, actor)}


def _matches_filter(user: Row, terms: list[str]) -> bool:
    for term in (t.lower() for t in terms):
        if term in user["username"].lower() or term in user["email"]:
            return True
        if (
            len(terms) > 1
            and re.fullmatch(r".+@.+", term)
            and (term == user["email"] or term in user["secondary_emails"])
        ):
            return True
        if len(terms) == 1 and re.fullmatch(r".+@.+", term) and term in user["secondary_emails"]:
            return True
    return False


def rename_user(forum: ForumState, user: Row, new_username: str) -> list[str]:
    """``UsernameChanger.change``: the ``UsernameValidator`` rules and case-insensitive uniqueness against users and
    groups (``User.username_available?``); returns the validation messages (wording abridged from server.en.yml
    ``user.username.*``), empty when the name changed. Grants and
    memberships stay with the account (they are keyed by user id)."""
    name = new_username.strip()
    if name.lower() == user["username"].lower():
        user["username"] = name
        return []
    errors = []
    if not 3 <= len(name) <= 20:
        errors.append("Username must be between 3 and 20 characters")
    if re.search(r"[^\w.-]", name) or not re.match(r"\w", name) or not re.search(r"[^\W_]\Z", name):
        errors.append("Username must only include numbers, letters, dashes, dots, and underscores")
    taken = forum.find_user(name) is not None or forum.group_by_name(name) is not None
    if taken:
        errors.append("Username has already been taken")
    if not errors:
        user["username"] = name
    return errors
