"""The planner is pure: orders + rules → desired grants; desired − applied − in flight → actions."""

from connector.core.config import Grant, Rule
from connector.core.grants import GrantKey, OpenAction
from mappings.diff import decide
from mappings.grants import desired_grants

BADGE = GrantKey("badge", "Verified Buyer")
GROUP = GrantKey("group", "verified-buyers")
VIP = GrantKey("group", "vip")

ANY = Rule(name="verified-buyer", products="*", grant={"forum": Grant(badge="Verified Buyer", group="verified-buyers")})
STEAM = Rule(name="steam", products=[40, 41], grant={"forum": Grant(group="vip"), "discord": Grant(group="vip")})


def test_any_paid_order_grants_badge_and_group():
    assert desired_grants([ANY], [frozenset({"7"})]) == {"forum": {BADGE, GROUP}}


def test_no_paid_order_grants_nothing():
    assert desired_grants([ANY, STEAM], []) == {}


def test_product_rule_needs_a_matching_product():
    assert desired_grants([STEAM], [frozenset({"7"})]) == {}
    assert desired_grants([STEAM], [frozenset({"7"}), frozenset({"41"})]) == {"forum": {VIP}, "discord": {VIP}}


def test_product_ids_may_be_strings_or_numbers_in_the_config():
    sellix = Rule(name="sellix", products=["demo930bf1", 41], grant={"forum": Grant(group="vip")})
    assert sellix.products == ["demo930bf1", "41"]
    assert desired_grants([sellix], [frozenset({"demo930bf1"})]) == {"forum": {VIP}}


def test_grant_shared_by_two_rules_survives_either():
    both = Rule(name="also-vip", products=[7], grant={"forum": Grant(group="vip")})
    # only the product-7 order is still paid (the Steam order was refunded): vip stays via the other rule
    assert desired_grants([STEAM, both], [frozenset({"7"})])["forum"] == {VIP}


def test_decide_grants_what_is_missing():
    decision = decide({BADGE, GROUP}, set(), [])
    assert decision.new == ((BADGE, "grant"), (GROUP, "grant"))
    assert decision.supersede == ()


def test_decide_nothing_when_in_step():
    assert decide({BADGE}, {BADGE}, []).new == ()


def test_decide_revokes_what_is_no_longer_wanted():
    assert decide(set(), {BADGE, GROUP}, []).new == ((BADGE, "revoke"), (GROUP, "revoke"))


def test_decide_does_not_duplicate_open_actions():
    pending = OpenAction(id=1, key=BADGE, op="grant", status="pending")
    assert decide({BADGE}, set(), [pending]).new == ()


def test_decide_supersedes_unsent_grant_after_refund():
    pending = OpenAction(id=1, key=BADGE, op="grant", status="failed")
    decision = decide(set(), set(), [pending])
    assert decision.new == ()
    assert decision.supersede == (1,)


def test_decide_leaves_a_target_alone_while_it_is_being_sent():
    sending = OpenAction(id=1, key=BADGE, op="grant", status="sending")
    decision = decide(set(), set(), [sending])
    assert decision == decision.__class__(new=(), supersede=())


def test_decide_does_not_replan_a_dead_action():
    dead = OpenAction(id=9, key=BADGE, op="grant", status="dead")
    assert decide({BADGE}, set(), [dead]).new == ()
