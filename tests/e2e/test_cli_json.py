"""Issue 14: ``--json`` on every command that prints a result. Each document is the whole of stdout, valid against its
schema (``connector/cli/schemas``), carries the values an operator relies on, and names no buyer's email; errors
stay one line on stderr with stdout empty, and the exit codes are those of the text output."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from datetime import UTC, datetime

import pytest
from jsonschema import Draft202012Validator, validate

from connector.cli.output import dumps, report_data, schema
from connector.flow import PassReport, PlannedAction
from tests.e2e.test_cli_behaviour import HELD, MARKUP_REVIEW
from tests.e2e.test_reviews_points import post_of, reviews_world  # noqa: F401  (the fixture)

LOCKED = 75
BADGE, GROUP = "Verified Buyer", "verified-buyers"
EMAILS = ("alice@example.com", "bob@example.com", "carol@example.com", "guest@example.com", "mallory@example.com")
#: Keys whose values are timestamps: ISO-8601, in UTC.
TIMESTAMPS = ("created_at", "updated_at", "next_attempt_at", "recorded_at", "next_at")


def document(run, command: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """The run's stdout as the one JSON document of ``command``, checked against its schema."""
    assert run.stdout.endswith("}\n"), run.output
    doc = json.loads(run.stdout)  # the whole of stdout: nothing printed before or after the document
    validate(doc, schema(command))
    assert doc["schema"] == f"cardbridge.{command}/1"
    for when in _timestamps(doc):
        assert datetime.fromisoformat(when).utcoffset().total_seconds() == 0, when
    for email in EMAILS:
        assert email not in run.stdout, email
    return doc


def _timestamps(value: object) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in TIMESTAMPS and isinstance(inner, str):
                found.append(inner)
            elif key in ("deferred_until", "failing", "communities_failing") and isinstance(inner, dict):
                found.extend(inner.values())
            else:
                found.extend(_timestamps(inner))
    elif isinstance(value, list):
        for inner in value:
            found.extend(_timestamps(inner))
    return found


def said(stderr: str) -> list[str]:
    """What the CLI printed on stderr besides its JSON log lines."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


def test_every_schema_is_a_valid_draft_2020_12_schema_that_refuses_unknown_keys():
    for command in (
        "sync",
        "backfill",
        "reconcile",
        "status",
        "check",
        "conflicts",
        "conflicts-resolve",
        "points-show",
        "reviews-held",
        "reviews-approve",
        "outbox-list",
        "outbox-retry",
        "insights",
        "insights-demand",
    ):
        Draft202012Validator.check_schema(schema(command))
        assert schema(command)["additionalProperties"] is False, command


def test_a_pass_document_has_every_count_of_the_pass_and_its_plan_whole():
    """A count added to PassReport must reach the schema too: the document would no longer validate."""
    report = PassReport()
    for field in fields(report):
        if field.type == "int":
            setattr(report, field.name, 1)
    report.errors.append("forum: identity look-up failed: bob@example.com not found")
    report.deferred_until["forum"] = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
    report.requests["forum"] = {"requests": 3, "writes": 1, "rate_limited": 0, "retries": 0}
    text = "line one\n\n> 秒发货 [quote]x[/quote] " + "long " * 100
    report.plan.append(PlannedAction("forum", "shop", None, "review", "501", "create", text))
    report.plan.append(PlannedAction("forum", "e:guest@example.com", None, "badge", BADGE, "grant"))
    data = report_data(report, dry_run=True)
    doc = json.loads(dumps("backfill", data))
    validate(doc, schema("backfill"))
    assert set(doc["counts"]) == {f.name for f in fields(report) if f.type == "int"}
    assert all(value == 1 for value in doc["counts"].values())
    assert doc["deferred_until"] == {"forum": "2026-11-30T18:00:00+00:00"}
    assert doc["errors"] == ["forum: identity look-up failed: b***@example.com not found"]
    review, badge = doc["plan"]
    assert review["detail"] == text and review["customer"] is None  # whole, verbatim; a review is the shop's
    assert badge["customer"] == "g***@example.com" and badge["detail"] is None
    real = json.loads(dumps("sync", report_data(report)))
    validate(real, schema("sync"))
    assert real["plan"] is None and real["dry_run"] is False


def test_sync_json_counts_what_the_forum_then_shows(world):
    card = world.shop.add_product("王者荣耀 点券 60元", "60.00")
    for name in ("alice", "bob", "carol"):
        world.forum.add_user(name, f"{name}@example.com")
        world.shop.add_order(email=f"{name}@example.com", items=[(card, 1)], status="completed")
    world.shop.add_order(email="guest@example.com", items=[(card, 1)], status="completed")  # no forum account
    run = world.cli("sync", "--json")
    assert run.code == 0, run.output
    doc = document(run, "sync")
    assert doc["ok"] is True and doc["dry_run"] is False and doc["plan"] is None
    counts = doc["counts"]
    shown = sum(
        world.forum.badges_of(name).count(BADGE) + world.forum.groups_of(name).count(GROUP)
        for name in ("alice", "bob", "carol")
    )
    assert counts["delivered"] == shown == 6, doc
    assert counts["orders_read"] == 4 and counts["unmatched"] == 1
    assert doc["requests"]["forum"]["writes"] >= 6
    assert "orders read" not in run.stderr  # the text summary is not printed anywhere
    again = world.cli("sync", "--json")
    assert again.code == 0 and document(again, "sync")["counts"]["delivered"] == 0


def test_dry_run_json_plans_every_action_the_real_backfill_then_does(reviews_world):  # noqa: F811
    # Relies on the complete dry run (41a56b7: review posts and points in the plan); fails if the plan loses a kind.
    world = reviews_world
    dry = world.cli("backfill", "--dry-run", "--json")
    assert dry.code == 0, dry.output
    plan_doc = document(dry, "backfill")
    assert plan_doc["dry_run"] is True and plan_doc["counts"]["delivered"] == 0
    assert world.forum.writes() == [] and not world.db_path.exists()
    plan = plan_doc["plan"]
    kinds = {action["kind"] for action in plan}
    assert {"badge", "group", "review", "points"} <= kinds, kinds
    reviews = [a for a in plan if a["kind"] == "review"]
    assert all(a["customer"] is None for a in reviews)
    assert any("Verified purchase" in a["detail"] and "秒发货" in a["detail"] for a in reviews), reviews
    assert all(a["detail"].startswith("+") for a in plan if a["kind"] == "points" and a["op"] == "award")
    real = world.cli("backfill", "--json")
    assert real.code == 0, real.output
    done = document(real, "backfill")
    assert done["dry_run"] is False and done["plan"] is None
    assert len(plan) == done["counts"]["delivered"] == done["counts"]["actions_planned"], (plan, done)
    assert done["counts"]["orders_changed"] == 2  # the dry run stored nothing


def test_outbox_list_json_lists_the_dead_action_with_its_error(world):
    world.write_config(max_attempts=1)
    card = world.shop.add_product("Steam 充值卡 100", "100.00")
    world.forum.add_user("alice", "alice@example.com")
    world.shop.add_order(email="alice@example.com", items=[(card, 1)], status="completed")
    world.forum.knobs.add_fault(r"^/user_badges\.json$", kind="status", status=422, method="POST", times=-1)
    failed = world.cli("sync", "--json")
    assert failed.code == 1, failed.output  # the exit code of the text output
    sync_doc = document(failed, "sync")
    assert sync_doc["ok"] is False and sync_doc["counts"]["died"] == 1 and len(sync_doc["failures"]) == 1

    dead = world.cli("outbox", "list", "--status", "dead", "--json")
    assert dead.code == 0, dead.output
    doc = document(dead, "outbox-list")
    assert doc["filter"] == {"status": "dead", "community": None, "limit": 50} and doc["total"] == 1
    [action] = doc["actions"]
    assert (action["kind"], action["op"], action["target"], action["status"]) == ("badge", "grant", BADGE, "dead")
    assert action["customer"] == "a***@example.com" and action["user"] == "alice" and action["attempts"] == 1
    assert "422" in action["last_error"] and action["next_attempt_at"] is None  # nothing sends a dead action
    text = world.cli("outbox", "list", "--status", "dead")
    assert text.code == 0 and "1 action(s)" in text.stdout and "a***@example.com" in text.stdout
    assert re.search(rf"│ {action['id']}\s+│ forum\s+│ badge\s+│ grant\s+│ {BADGE}", text.stdout), text.stdout

    everything = document(world.cli("outbox", "list", "--community", "forum", "--limit", "1", "--json"), "outbox-list")
    assert everything["total"] == 2 and len(everything["actions"]) == 1  # the group grant went through
    assert "1 of 2 action(s)" in world.cli("outbox", "list", "--limit", "1").stdout
    typo = world.cli("outbox", "list", "--community", "froum", "--json")  # neither configured nor in the store
    assert typo.code == 2 and typo.stdout == "" and "--community" in typo.stderr and "forum" in typo.stderr
    bad = world.cli("outbox", "list", "--status", "stuck", "--json")
    assert bad.code == 2 and bad.stdout == "" and "--status" in bad.stderr

    retry = world.cli("outbox", "retry", str(action["id"]), "99999", "--json")
    assert retry.code == 1, retry.output  # as without --json: an unknown id is a failure
    assert document(retry, "outbox-retry") == {
        "schema": "cardbridge.outbox-retry/1",
        "queued": 1,
        "unknown": [99999],
        "not_dead": [],
    }
    assert said(retry.stderr) == ["no such action: 99999 (see `cardbridge status`)"]
    pending = document(world.cli("outbox", "list", "--status", "pending", "--json"), "outbox-list")
    assert [a["id"] for a in pending["actions"]] == [action["id"]]
    assert pending["actions"][0]["attempts"] == 0


def test_points_show_json_total_is_the_sum_of_its_rows(reviews_world):  # noqa: F811
    world = reviews_world
    assert world.cli("sync").code == 0
    world.shop.set_status(world.alice_order, "refunded")  # an award and its reversal
    assert world.cli("sync").code == 0  # the refund's revokes and the points' reversal
    run = world.cli("points", "show", "alice@example.com", "--json")
    assert run.code == 0, run.output
    doc = document(run, "points-show")
    points = [event["points"] for event in doc["events"]]
    assert doc["total"] == sum(points)
    assert any(p < 0 for p in points) and any(p > 0 for p in points), doc  # the reversal is a row of its own
    assert {e["key"] for e in doc["events"]} >= {"order:" + str(world.alice_order), f"review:{world.r_alice}"}
    assert doc["customers"] and all("@" not in c or "***@" in c for c in doc["customers"])
    text = world.cli("points", "show", "alice@example.com")
    assert f"Total: {doc['total']}" in text.stdout
    missing = world.cli("points", "show", "nobody-at-all", "--json")
    assert missing.code == 1 and missing.stdout == "" and len(said(missing.stderr)) == 1
    stranger = world.cli("points", "show", "stranger.name@example.org")
    assert stranger.code == 1 and "stranger.name@example.org" not in stranger.output  # a typed email is masked


@pytest.fixture
def held_world(world):
    world.write_config(extra=HELD)
    key = world.shop.add_product("Elden Ring Steam Key", "199.00")
    world.shop.add_order(email="alice@example.com", items=[(key, 1)], status="completed")
    world.forum.add_user("alice", "alice@example.com")
    world.review = world.shop.add_review(key, "Alice", "alice@example.com", 5, MARKUP_REVIEW)
    return world


def test_reviews_held_json_gives_member_text_whole_and_approve_names_what_it_did(held_world):
    world = held_world
    assert world.cli("sync").code == 0
    run = world.cli("reviews", "held", "--json")
    assert run.code == 0, run.output
    doc = document(run, "reviews-held")
    assert doc["hold"] is True
    [review] = doc["reviews"]
    assert review["id"] == str(world.review) and review["rating"] == 5
    assert review["text"] == MARKUP_REVIEW  # verbatim: [/b], [quote], [x](url) as the member wrote them
    approve = world.cli("reviews", "approve", str(world.review), "nope", "--json")
    assert approve.code == 1, approve.output
    assert document(approve, "reviews-approve")["approved"] == [str(world.review)]
    assert json.loads(approve.stdout)["unknown"] == ["nope"]
    assert said(approve.stderr) == ["Unknown review id(s): nope (run `cardbridge sync` first?)"]
    assert document(world.cli("reviews", "held", "--json"), "reviews-held")["reviews"] == []
    ok = world.cli("reviews", "approve", str(world.review), "--json")
    assert ok.code == 0 and document(ok, "reviews-approve")["unknown"] == []
    world.write_config(extra=HELD.replace("hold = true", "hold = false"))
    off = world.cli("reviews", "held", "--json")
    assert off.code == 0 and document(off, "reviews-held") == {
        "schema": "cardbridge.reviews-held/1",
        "hold": False,
        "reviews": [],
    }


def test_conflicts_json_lists_and_resolves(reviews_world):  # noqa: F811
    world = reviews_world
    assert world.cli("sync").code == 0
    assert document(world.cli("conflicts", "--json"), "conflicts")["conflicts"] == []
    post = post_of(world.forum, world.r_bob)
    world.forum.edit_post_by_hand(post["id"], post["raw"].replace("recharge worked", "recharge worked (mod)"))
    world.shop.edit_review(world.r_bob, text="Changed my mind, it took an hour.")
    assert world.cli("sync").code == 0
    listing = world.cli("conflicts", "--json")
    assert listing.code == 0, listing.output
    [conflict] = document(listing, "conflicts")["conflicts"]
    assert conflict["community"] == "forum" and conflict["target"] == str(world.r_bob)
    assert "edited on the forum" in conflict["reason"]
    unknown = world.cli("conflicts", "resolve", "9999", "--keep", "forum", "--json")
    assert unknown.code == 1 and unknown.stdout == "" and said(unknown.stderr) == ["No open conflict with id 9999."]
    resolved = world.cli("conflicts", "resolve", str(conflict["id"]), "--keep", "forum", "--json")
    assert resolved.code == 0, resolved.output
    doc = document(resolved, "conflicts-resolve")
    assert (doc["id"], doc["keep"], doc["target"]) == (conflict["id"], "forum", str(world.r_bob))
    assert doc["message"]
    assert document(world.cli("conflicts", "--json"), "conflicts")["conflicts"] == []


def test_reconcile_json_names_the_hand_removal_and_status_masks_the_guest_it_keeps(world):
    world.write_config(extra="[policy]\nrespect_manual_removal = true\n")
    card = world.shop.add_product("月卡", "15.00")
    world.forum.add_user("alice", "alice@example.com")
    world.shop.add_order(email="alice@example.com", items=[(card, 1)], status="completed")  # a guest: keyed by email
    assert world.cli("sync").code == 0
    world.forum.revoke_by_hand("alice", BADGE)
    run = world.cli("reconcile", "--json")
    assert run.code == 0, run.output
    doc = document(run, "reconcile")
    assert doc["manual_removals"] == 1 and doc["counts"]["members_left"] == 0
    assert any("removed from alice by hand" in line for line in doc["drift"]), doc["drift"]
    status = world.cli("status", "--json")
    assert status.code == 0
    data = document(status, "status")  # the guest's email is not in the overrides (it was, before: e:alice@…)
    [override] = data["overrides"]
    assert override["what"] == f"badge {BADGE}" and override["customer"] == "a***@example.com"
    assert data["totals"]["granted"] == 1  # the group; the badge stays removed


def test_with_json_an_error_is_one_line_on_stderr_and_stdout_stays_empty(world):
    card = world.shop.add_product("Steam 充值卡 100", "100.00")
    world.forum.add_user("alice", "alice@example.com")
    world.shop.add_order(email="alice@example.com", items=[(card, 1)], status="completed")
    # Long enough for the three commands below to meet the lock the first backfill holds.
    first = world.hold_pass("backfill", "--json", seconds=20)
    for command in ("sync", "backfill", "reconcile"):
        locked = world.cli(command, "--json")
        assert locked.code == LOCKED, locked.output
        assert locked.stdout == "" and len(said(locked.stderr)) == 1, locked.stderr
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0 and json.loads(out)["counts"]["delivered"] == 2
    # A mistake in [state], which every command reads (`status` and the like read nothing else).
    world.config_path.write_text(world.config_path.read_text().replace("url = ", "uri = ", 1), encoding="utf-8")
    for args in (("sync",), ("backfill", "--dry-run"), ("status",), ("outbox", "list"), ("points", "show", "1")):
        broken = world.cli(*args, "--json")
        assert broken.code == 2, (args, broken.output)
        lines = said(broken.stderr)
        assert broken.stdout == "" and len(lines) == 1 and "state.uri" in lines[0], broken.stderr
