"""Groups: ``Admin::GroupsController`` (create, destroy) and ``GroupsController`` (show, update, members,
``add_members``, ``remove_member``).

``add_members`` (discourse/discourse app/controllers/groups_controller.rb ``add_members`` → app/services/
group_member_adder.rb ``GroupMemberAdder#add``, :46-81; ``AlreadyMembers`` :18-31, raised at :63-66) answers 422
``groups.errors.member_already_exist`` (a bare ``render_json_error``: no ``error_type``, text in the forum's locale)
only when *every* resolved user already belongs, caps at 1000 users and turns unknown ``emails`` into invitations.
Users are picked by ``usernames``, ``user_id``, ``user_ids`` or ``user_emails`` (``GroupMutations.resolve_users``,
app/services/group_mutations.rb:24-61, ``found`` :67-75): names or ids that resolve to nobody are dropped without a
word (a renamed user's old name included) and the answer lists only who resolved; only when *none* resolves is it 400
``invalid_parameters``. ``remove_member`` (``GroupMemberRemover``) reports ``skipped_usernames``; group edits
propagate through ``Group#update_title``/``update_primary_group`` (membership side effects are in ``membership``)."""

from __future__ import annotations

import re
from typing import Any

from sandbox.discourse import serializers as ser
from sandbox.discourse.errors import (
    MSG_PARAM_MISSING,
    MSG_REMOVE_NEEDS_USERS,
    Answer,
    fetch_int,
    forbidden,
    invalid_params,
    json_error,
    not_found,
    require,
)
from sandbox.discourse.locales import t
from sandbox.discourse.membership import add_member, destroy_group, remove_member
from sandbox.discourse.rails import blank, cast_bool, cast_int, ruby_int, strict_int
from sandbox.discourse.routing import Ctx, Endpoint, J, route
from sandbox.discourse.state import ForumState, Row, is_staff, new_group

#: ``GroupsController::ADD_MEMBERS_LIMIT``
ADD_MEMBERS_LIMIT = 1000
#: ``GroupsController::MEMBERS_DEFAULT_PAGE_SIZE`` / ``MEMBERS_MAX_PAGE_SIZE``
MEMBERS_DEFAULT_LIMIT, MEMBERS_MAX_LIMIT = 50, 1000
GROUP_WRITABLE = (
    "name", "full_name", "title", "flair_icon", "flair_upload_id", "flair_bg_color", "flair_color", "primary_group",
    "bio_raw", "visibility_level", "members_visibility_level", "mentionable_level", "messageable_level",
    "public_admission", "public_exit", "allow_membership_requests", "default_notification_level",
    "grant_trust_level", "automatic_membership_email_domains", "membership_request_template", "publish_read_state",
    "incoming_email",
)  # fmt: skip
GROUP_BOOLEANS = {"primary_group", "public_admission", "public_exit", "allow_membership_requests", "publish_read_state"}
GROUP_INTEGERS = {"visibility_level", "members_visibility_level", "mentionable_level", "messageable_level",
                  "default_notification_level", "grant_trust_level", "flair_upload_id"}  # fmt: skip


class Groups:
    def __init__(self, forum: ForumState) -> None:
        self.forum = forum

    def routes(self) -> list[Endpoint]:
        return [
            route("POST", rf"/admin/groups{J}", self.create, admin_only=True),
            route("DELETE", rf"/admin/groups/(?P<id>\d+){J}", self.destroy, admin_only=True),
            route("PUT", rf"/admin/groups/(?P<id>[^/]+?)/members{J}", self.add_members, admin_only=True),
            route("DELETE", rf"/admin/groups/(?P<id>[^/]+?)/members{J}", self.remove_members, admin_only=True),
            route("GET", rf"/groups/by-id/(?P<id>\d+){J}", self.show_by_id),
            route("GET", rf"/groups/(?P<name>[^/]+?)/members{J}", self.members),
            route("PUT", rf"/groups/(?P<id>[^/]+?)/members{J}", self.add_members),
            route("DELETE", rf"/groups/(?P<id>[^/]+?)/members{J}", self.remove_members),
            route("GET", rf"/groups/(?P<name>[^/]+?){J}", self.show),
            route("PUT", rf"/groups/(?P<id>[^/]+?){J}", self.update),
        ]

    def _name_errors(self, name: Any, exclude_id: int | None) -> list[str]:
        """``Group#name_format_validator`` (``UsernameValidator``) + case-insensitive uniqueness, usernames included."""
        if blank(name):
            return ["Name can't be blank"]
        name = str(name).strip()
        errors = []
        if len(name) < 3:
            errors.append("Name must be at least 3 characters")
        if len(name) > 20:
            errors.append("Name must be no more than 20 characters")
        if re.search(r"[^\w.-]", name):
            errors.append("Name must only include numbers, letters, dashes, dots, and underscores")
        if not re.match(r"[^\W]", name):
            errors.append("Name must begin with a letter, a number or an underscore")
        if not re.search(r"[^\W_]\Z", name):
            errors.append("Name must end with a letter or a number")
        if re.search(r"[-_.]{2,}", name):
            errors.append("Name must not contain a sequence of 2 or more special chars (.-_)")
        if re.search(r"\.(json|png|jpe?g|gif|js|css|html?|xml|svg)\Z", name, re.I):
            errors.append("Name must not end with a confusing suffix like .json or .png etc.")
        if errors:
            return errors
        taken = any(g["name"].lower() == name.lower() and g["id"] != exclude_id for g in self.forum.groups.values())
        if taken or self.forum.find_user(name) is not None:
            return ["Name has already been taken"]
        return []

    def create(self, ctx: Ctx) -> Any:
        forum = self.forum
        raw = require(ctx.params, "group")
        if not isinstance(raw, dict):
            raise Answer(400, {"errors": [MSG_PARAM_MISSING.format("group")]})
        values = _group_values(raw, automatic=False)
        errors = self._name_errors(values.get("name"), None)
        if values.get("grant_trust_level") is not None and not 0 <= values["grant_trust_level"] <= 4:
            errors.append(f"'{values['grant_trust_level']}' is not a valid trust level.")
        if errors:
            raise json_error(errors)  # render_json_error(group): 422 without error_type
        found = [forum.find_user(n) for n in str(raw.get("owner_usernames") or "").split(",") if n.strip()]
        owners = [o for o in found if o is not None]
        if values.get("allow_membership_requests") and not owners:
            raise Answer(422, {"failed": "FAILED", "errors": [t("groups.errors.cant_allow_membership_requests")]})
        group = new_group(forum.take_id("group"), values.pop("name"))
        group.update({k: v for k, v in values.items() if v is not None or k in {"title", "full_name"}})
        forum.groups[group["id"]] = group
        for owner in owners:
            add_member(forum, group, owner, owner=True)
        for name in str(raw.get("usernames") or "").split(","):
            member = forum.find_user(name.strip()) if name.strip() else None
            if member is not None:
                add_member(forum, group, member)
        return {"basic_group": ser.basic_group(forum, group, ctx.actor)}

    def destroy(self, ctx: Ctx) -> Any:
        group = self.forum.groups.get(int(ctx.path_params["id"]))
        if group is None:
            raise not_found()
        if group["automatic"]:
            raise json_error(t("groups.errors.can_not_modify_automatic"))
        destroy_group(self.forum, group)
        return {"success": "OK"}

    def _visible_group_names(self, viewer: Row) -> list[str]:
        groups = sorted(self.forum.groups.values(), key=lambda g: g["name"])
        return [g["name"] for g in groups if is_staff(viewer) or not g["automatic"] or g["id"] == 2]

    def show(self, ctx: Ctx) -> Any:
        group = self.forum.group_by_name(ctx.path_params["name"])
        if group is None:
            raise not_found()
        return {
            "group": ser.group_show_json(self.forum, group, ctx.actor),
            "extras": {"visible_group_names": self._visible_group_names(ctx.actor)},
        }

    def show_by_id(self, ctx: Ctx) -> Any:
        group = self.forum.groups.get(int(ctx.path_params["id"]))
        if group is None:
            raise not_found()
        return {
            "group": ser.group_show_json(self.forum, group, ctx.actor),
            "extras": {"visible_group_names": self._visible_group_names(ctx.actor)},
        }

    def _group_by_id_param(self, ctx: Ctx) -> Row:
        group_id = strict_int(ctx.path_params["id"])
        group = self.forum.groups.get(group_id) if group_id is not None else None
        if group is None:
            raise not_found()
        return group

    def update(self, ctx: Ctx) -> Any:
        """``GroupsController#update``; a changed title or primary flag propagates to members (``Group`` callbacks)."""
        group = self._group_by_id_param(ctx)
        if not ctx.actor["admin"]:
            raise forbidden()
        raw = require(ctx.params, "group")
        if not isinstance(raw, dict):
            raise Answer(400, {"errors": [MSG_PARAM_MISSING.format("group")]})
        values = _group_values(raw, automatic=group["automatic"])
        if "name" in values and values["name"] != group["name"]:
            errors = self._name_errors(values["name"], group["id"])
            if errors:
                raise json_error(errors)
        old_title, old_primary = group["title"], group["primary_group"]
        group.update(values)
        members = [self.forum.users[uid] for uid in group["_members"] if uid in self.forum.users]
        if group["title"] != old_title:  # Group#update_title
            for user in members:
                if user["title"] in (old_title, "", None) and (user["title"] or "") != (group["title"] or ""):
                    user["title"] = group["title"]
        if group["primary_group"] != old_primary:  # Group#update_primary_group
            for user in members:
                if group["primary_group"]:
                    user["primary_group_id"] = group["id"]
                    if user["flair_group_id"] is None:
                        user["flair_group_id"] = group["id"]
                else:
                    if user["primary_group_id"] == group["id"]:
                        user["primary_group_id"] = None
                    if user["flair_group_id"] == group["id"]:
                        user["flair_group_id"] = None
        return {"success": "OK"}

    def _users_from_params(self, p: dict[str, Any]) -> list[Row]:
        """``GroupMutations.resolve_users`` (app/services/group_mutations.rb): the first selector present wins;
        values that resolve to nobody are dropped; none resolving is 400 ``InvalidParameters.new(<selector>)``."""

        def split(value: Any) -> list[str]:  # GroupMutations.split_values
            items = value if isinstance(value, list) else [] if value is None else [value]
            return [v.strip() for item in items for v in str(item).split(",") if v.strip()]

        ordered = sorted(self.forum.users.values(), key=lambda u: u["id"])
        if split(p.get("usernames")):
            wanted = {n.lower() for n in split(p["usernames"])}
            users = [u for u in ordered if u["username"].lower() in wanted]
            key = "usernames"
        elif not blank(p.get("user_id")):
            users = [u for u in ordered if u["id"] == ruby_int(p["user_id"])]
            key = "user_id"
        elif split(p.get("user_ids")):
            wanted_ids = {strict_int(i) for i in split(p["user_ids"])}
            users = [u for u in ordered if u["id"] in wanted_ids]
            key = "user_ids"
        elif not blank(p.get("user_emails")):
            wanted = {e.lower() for e in split(p["user_emails"])}
            users = [u for u in ordered if u["email"] in wanted or wanted & set(u["secondary_emails"])]
            key = "user_emails"
        else:
            return []
        if not users:
            raise invalid_params(key)
        return users

    def add_members(self, ctx: Ctx) -> Any:
        forum = self.forum
        group = self._group_by_id_param(ctx)
        if not is_staff(ctx.actor) or group["automatic"]:
            raise forbidden()  # guardian.ensure_can_edit!(group)
        p = ctx.params
        users = self._users_from_params(p)
        emails: list[str] = []
        if not blank(p.get("emails")):
            for email in str(p["emails"]).split(","):
                existing = forum.user_by_primary_email(email) if email.strip() else None
                if existing is not None:
                    users.append(existing)
                elif email.strip():
                    emails.append(email.strip())
        if not users and not emails:
            raise invalid_params(t("groups.errors.usernames_or_emails_required"))
        if len(users) > ADD_MEMBERS_LIMIT:
            raise json_error(t("groups.errors.adding_too_many_users", count=ADD_MEMBERS_LIMIT))
        already = sorted({u["username"] for u in users if forum.is_member(group, u)})
        distinct = list({u["id"]: u for u in users}.values())
        if already and len(already) == len(users) and not emails:
            # GroupMemberAdder::AlreadyMembers → render_json_error(error.message): 422, no error_type, translated
            raise json_error(t("groups.errors.member_already_exist", username=", ".join(already), count=len(already)))
        for user in distinct:
            add_member(forum, group, user)
        for email in emails:  # Invite.generate: a real forum emails an invitation
            forum.invites.append({"email": email, "group_ids": [group["id"]], "invited_by": ctx.actor["username"]})
        return {"success": "OK", "usernames": [u["username"] for u in distinct], "emails": emails}

    def remove_members(self, ctx: Ctx) -> Any:
        group = self._group_by_id_param(ctx)
        if not is_staff(ctx.actor) or group["automatic"]:
            raise forbidden()
        p = dict(ctx.params)
        if not blank(p.get("username")):
            p["usernames"] = p["username"]
        if not blank(p.get("user_email")):
            p["user_emails"] = p["user_email"]
        users = self._users_from_params(p)
        if not users:
            raise invalid_params(MSG_REMOVE_NEEDS_USERS)
        removed, skipped = [], []
        for user in users:
            if remove_member(self.forum, group, user):
                removed.append(user["username"])
            else:
                skipped.append(user["username"])
        return {"success": "OK", "usernames": removed, "skipped_usernames": skipped}

    def members(self, ctx: Ctx) -> Any:
        """``GroupsController#members``: owners first, then ``username_lower`` DESC unless ``asc``; total before filter."""
        forum = self.forum
        group = forum.group_by_name(ctx.path_params["name"])
        if group is None:
            raise not_found()
        p = ctx.params
        limit = fetch_int(p, "limit", MEMBERS_DEFAULT_LIMIT, maximum=MEMBERS_MAX_LIMIT)
        offset = ruby_int(p.get("offset"))
        if offset < 0:
            raise invalid_params("offset")
        users = [forum.users[uid] for uid in forum.member_ids(group) if uid in forum.users and uid > 0]
        total = len(users)
        if not blank(p.get("filter")):
            users = _filter_by_username_or_email(users, str(p["filter"]), admin=bool(ctx.actor["admin"]))
        descending = blank(p.get("asc"))

        def meta_of(user: Row) -> dict[str, Any]:
            meta: dict[str, Any] = group["_members"].get(user["id"], {"added_at": user["created_at"], "owner": False})
            return meta

        users.sort(key=lambda u: u["username"].lower(), reverse=descending)
        order = p.get("order")
        if order == "added_at":
            users.sort(key=lambda u: meta_of(u)["added_at"], reverse=descending)
        users.sort(key=lambda u: not meta_of(u)["owner"])

        def member_json(user: Row) -> dict[str, Any]:
            return {**ser.basic_user(user), "title": user["title"], "last_posted_at": None,
                    "last_seen_at": user["last_seen_at"], "added_at": meta_of(user)["added_at"], "timezone": "UTC"}  # fmt: skip

        return {
            "members": [member_json(u) for u in users[offset : offset + limit]],
            "owners": [member_json(u) for u in users if meta_of(u)["owner"]],
            "meta": {"total": total, "limit": limit, "offset": offset},
        }


def _group_values(raw: dict[str, Any], automatic: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    allowed = GROUP_WRITABLE if not automatic else ("bio_raw", "default_notification_level", "messageable_level",
                                                    "mentionable_level", "flair_bg_color", "flair_color",
                                                    "flair_icon", "flair_upload_id", "visibility_level",
                                                    "members_visibility_level")  # fmt: skip
    for key in allowed:
        if key not in raw:
            continue
        value = raw[key]
        if key in GROUP_BOOLEANS:
            values[key] = bool(cast_bool(value))
        elif key in GROUP_INTEGERS:
            values[key] = cast_int(value)
        else:
            values[key] = None if value is None or value == "" else str(value)
    if "name" in values and values["name"] is not None:
        values["name"] = values["name"].strip()
    return values


def _filter_by_username_or_email(users: list[Row], filter_: str, admin: bool) -> list[Row]:
    terms = [t.strip().lower() for t in filter_.split(",")] if "," in filter_ else None
    if terms is None:
        term = filter_.lower()
        if admin and re.fullmatch(r".+@.+", term):
            exact = [u for u in users if u["email"] == term or term in u["secondary_emails"]]
            if exact:
                return exact
        return [u for u in users if term in u["username"].lower() or (admin and term in u["email"])]
    return [u for u in users if any(t and (t in u["username"].lower() or (admin and t in u["email"])) for t in terms)]
