"""Discourse badge and group actions against the sandbox forum over loopback: what a member notices when the forum
speaks Chinese, when accounts were renamed or deleted, and when an admin deleted the badge."""

from __future__ import annotations

import pytest

from adapters.base import CURRENT_USERNAME, Action
from adapters.communities.discourse import DiscourseCommunity, DiscourseSettings
from sandbox.discourse import DiscourseSandbox
from sandbox.server import SandboxServer

KEY = "grants-key"
GROUP = "verified-buyers"
BADGE = "Verified Buyer"


@pytest.fixture
def forum():
    sandbox = DiscourseSandbox(api_key=KEY, api_username="system")
    sandbox.locale = "zh_CN"
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url
        yield sandbox


@pytest.fixture
def community(forum):
    settings = DiscourseSettings(kind="discourse", base_url=forum.url, api_key=KEY, requests_per_minute=10_000)
    adapter = DiscourseCommunity("forum", settings, sleep=lambda s: None)
    yield adapter
    adapter.close()


def act(action_id, kind, op, username, user_id=None, target=None, ref=None):
    target = target or (GROUP if kind == "group" else BADGE)
    return Action(action_id, kind, target, op, username, remote_ref=ref, user_id=str(user_id) if user_id else None)


def test_a_group_batch_settles_renamed_deleted_and_present_accounts_each_on_its_own(forum, community):
    ids = {name: forum.add_user(name, f"{name}@example.com") for name in ("amy", "ben", "cai", "dee")}
    assert community.apply([act(1, "group", "grant", "amy", ids["amy"])])[0].ok  # creates the group, adds Amy
    forum.rename_user("ben", "ben_w")
    with forum.state.lock:
        forum.state.users.pop(ids["dee"])  # an account deleted since it was matched

    outcomes = community.apply(
        [
            act(2, "group", "grant", "amy", ids["amy"]),  # already a member
            act(3, "group", "grant", "ben", ids["ben"]),  # renamed
            act(4, "group", "grant", "cai", ids["cai"]),
            act(5, "group", "grant", "dee", ids["dee"]),  # gone
        ]
    )
    by_id = {o.action_id: o for o in outcomes}
    assert [by_id[i].ok for i in (2, 3, 4, 5)] == [True, True, True, False]
    assert by_id[3].data == {CURRENT_USERNAME: "ben_w"} and by_id[2].data == {}
    assert {n for n in ("amy", "ben_w", "cai") if GROUP in forum.groups_of(n)} == {"amy", "ben_w", "cai"}

    # all of them in already: the forum's 422 is in Chinese; the group is read back, nothing fails
    again = community.apply([act(6, "group", "grant", "amy", ids["amy"]), act(7, "group", "grant", "ben", ids["ben"])])
    assert all(o.ok for o in again) and {o.action_id: o.data for o in again}[7] == {CURRENT_USERNAME: "ben_w"}
    assert any(r["status"] == 422 for r in forum.requests)

    # revokes reach the renamed account by id; a revoke for an account that is gone holds already
    gone = community.apply([act(8, "group", "revoke", "ben", ids["ben"]), act(9, "group", "revoke", "dee", ids["dee"])])
    assert all(o.ok for o in gone) and GROUP not in forum.groups_of("ben_w")


def test_an_account_addressed_by_name_only_is_never_reported_renamed(forum, community):
    forum.add_user("eve", "eve@example.com")
    assert community.apply([act(1, "group", "grant", "eve")])[0].ok
    forum.rename_user("eve", "eve_2")
    outcome = community.apply([act(2, "group", "revoke", "eve")])[0]
    assert not outcome.ok and outcome.data == {}  # by name, the forum cannot say who "eve" was
    assert GROUP in forum.groups_of("eve_2")


def test_badges_reach_a_renamed_account_and_a_badge_deleted_by_an_admin_is_made_again(forum, community):
    fay = forum.add_user("fay", "fay@example.com")
    gus = forum.add_user("gus", "gus@example.com")
    first = community.apply([act(1, "badge", "grant", "fay", fay)])[0]
    assert first.ok and forum.badges_of("fay") == [BADGE]

    forum.rename_user("fay", "fay_x")
    revoke = community.apply([act(2, "badge", "revoke", "fay", fay)])[0]  # no stored ref: found by id
    assert revoke.ok and revoke.data == {CURRENT_USERNAME: "fay_x"} and forum.badges_of("fay_x") == []
    regrant = community.apply([act(3, "badge", "grant", "fay", fay)])[0]
    assert regrant.ok and regrant.data == {CURRENT_USERNAME: "fay_x"} and forum.badges_of("fay_x") == [BADGE]

    forum.delete_badge_by_hand(BADGE)  # the cached badge id now answers 404, as an unknown user would
    granted = community.apply([act(4, "badge", "grant", "gus", gus)])[0]
    assert granted.ok and forum.badges_of("gus") == [BADGE]

    with forum.state.lock:
        forum.state.users.pop(gus)  # the account is deleted
    missing = community.apply([act(5, "badge", "grant", "gus", gus)])[0]
    assert not missing.ok and forum.badge(BADGE) is not None  # the user is gone, not the badge: it is kept


def test_many_renamed_accounts_in_one_add_are_settled_by_one_read_of_the_group(forum, community):
    ids = {f"user{i:02d}": forum.add_user(f"user{i:02d}", f"user{i:02d}@example.com") for i in range(15)}
    for name in ids:
        forum.rename_user(name, name + "_new")
    forum.reset_log()
    outcomes = community.apply([act(i, "group", "grant", name, uid) for i, (name, uid) in enumerate(ids.items(), 1)])
    assert all(o.ok for o in outcomes)
    assert {o.data[CURRENT_USERNAME] for o in outcomes} == {name + "_new" for name in ids}
    assert forum.count("GET", r"^/admin/users/\d+") == 0 and forum.count("GET", r"/members") == 1
