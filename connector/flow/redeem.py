"""Redeem: members ask privately for their balance or a coupon; CardBridge answers, exactly once (积分兑换).

Requests arrive as private messages (Discourse PMs to the API user: the ``post_created`` webhook, and polling as the
fallback) or slash commands (Discord interactions, served by the daemon). :class:`RedeemDesk` stores each request
once (``connector.state.redemptions``: a redemption is reserved in the ledger in the same transaction), then works
the stored rows step by step:

1. a reserved redemption gets its coupon: the shop is asked for the code derived from the request
   (``connector.core.redemption``) and the coupon is made only when the shop does not have it (read before create);
2. the answer is sent: a PM reply carries a reference line and is looked for before it is sent again after a crash;
   a Discord answer edits the interaction's first reply (the same edit again is harmless) while its token lives.

A step that fails is retried with back-off (``[delivery]``), then parked and listed by ``cardbridge redemptions``.
The stage runs at the end of every pass, under the pass lock, so one process works the rows at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal

import httpx

from adapters.base import CommunityAdapter, ShopAdapter
from adapters.contributions import InboxMessage, Interaction, InteractionEndpoint, PrivateInbox, ReplyExpired
from adapters.coupons import CouponIssuer, CouponRefused, CouponSpec
from connector.core.clock import utcnow
from connector.core.config import Config
from connector.core.logs import log
from connector.core.redemption import coupon_code, reference
from connector.features.base import Run
from connector.state import State
from connector.state.identities import contact_email
from connector.state.redemptions import RedemptionRow, Request
from mappings.redeem import (
    Offer,
    balance_text,
    cancelled_text,
    help_text,
    issued_text,
    read_command,
    refused_text,
    waiting_text,
)

#: A Discord interaction token can edit the first reply for 15 minutes (docs: interactions/Receiving_and_Responding,
#: "Interaction tokens are valid for 15 minutes"); a little margin for the request itself.
INTERACTION_TOKEN_LIFE = timedelta(minutes=14)
#: ``/points`` and ``积分`` list the codes of this many recent days again.
RECENT_CODES = timedelta(days=30)
#: Rows worked per pass at most (the rest wait for the next).
ROUND = 200


def failure(error: BaseException) -> str:
    """A failed step in words that never carry a coupon code or an email: the error's type and HTTP status only
    (an httpx error's text holds the URL, and a look-up URL holds the code)."""
    if isinstance(error, httpx.HTTPStatusError):
        return f"HTTP {error.response.status_code}"
    return type(error).__name__


class RedeemDesk:
    """Takes members' requests from every channel and works them to the end."""

    def __init__(
        self, state: State, config: Config, shop: ShopAdapter, communities: Mapping[str, CommunityAdapter]
    ) -> None:
        self.state, self.config, self.shop = state, config, shop
        redeem = config.redeem
        wanted = set(redeem.communities) if redeem and redeem.communities else set(communities)
        #: Communities members redeem on, with the channel each has.
        self.inboxes: dict[str, PrivateInbox] = {}
        self.endpoints: dict[str, InteractionEndpoint] = {}
        if redeem is not None:
            for name, community in communities.items():
                settings = config.communities.get(name)
                if name not in wanted or (settings is not None and settings.missing_for("redeem")):
                    continue  # not asked for, or (without redeem.communities) not set up for it: no channel
                if isinstance(community, PrivateInbox):
                    self.inboxes[name] = community
                if isinstance(community, InteractionEndpoint):
                    self.endpoints[name] = community

    @property
    def enabled(self) -> bool:
        return self.config.redeem is not None

    def offers(self) -> list[Offer]:
        redeem = self.config.redeem
        if redeem is None:
            return []
        return [Offer(o.points, o.coupon.value, o.coupon.type) for o in redeem.options]

    # ---- taking requests ---------------------------------------------------------------------------------------------

    def _request(
        self, key: str, community: str, member_id: str, command: str, points: int, language: str, **where: str | None
    ) -> Request:
        redeem = self.config.redeem
        assert redeem is not None
        customer = self.state.earnings.customers_of(community, [member_id]).get(member_id)
        option = redeem.option(points) if command == "redeem" else None
        earn = self.config.earn.communities.get(community) if self.config.earn else None
        return Request(
            key=key,
            community=community,
            member_id=member_id,
            customer_key=customer,
            command=command,
            language=language,
            points=points,
            amount=option.coupon.amount if option else None,
            coupon_type=option.coupon.type if option else None,
            needs_approval=redeem.approve_over is not None and points > redeem.approve_over,
            buyers_only=bool(earn and earn.verified_buyers_only),
            **where,
        )

    def take_message(self, community: str, message: InboxMessage) -> RedemptionRow | None:
        """Store a private message's request (once per message); None when ``community`` takes no requests."""
        redeem = self.config.redeem
        if redeem is None or community not in self.inboxes:
            return None
        command = read_command(message.title, message.body, redeem.language)
        request = self._request(
            f"{community}:pm:{message.message_id}",
            community,
            message.sender_id,
            command.name,
            command.points,
            command.language,
            conversation=message.conversation_id,
        )
        return self._store(request)

    def take_interaction(self, community: str, interaction: Interaction) -> RedemptionRow | None:
        """Store a slash command's request (once per interaction id)."""
        redeem = self.config.redeem
        if redeem is None or community not in self.endpoints:
            return None
        name = "redeem" if interaction.command == "redeem" else "points"
        request = self._request(
            f"{community}:ix:{interaction.interaction_id}",
            community,
            interaction.user_id,
            name,
            max(interaction.amount or 0, 0) if name == "redeem" else 0,
            redeem.language,
            token=interaction.token,
        )
        return self._store(request)

    def _store(self, request: Request) -> RedemptionRow:
        row, new = self.state.redemptions.record(request)
        if new and row.status == "refused" and row.reason in ("balance", "debt"):
            row = self._found_in_shop(row)
        if new:
            log.info(
                "member request",
                community=request.community,
                command=request.command,
                points=request.points,
                status=row.status,
                reason=row.reason,
            )
        return row

    def _found_in_shop(self, row: RedemptionRow) -> RedemptionRow:
        """Read before answering a refusal: a state store that lost the first one reads an old message again, and
        its coupon may be in the shop already; then the redemption was issued, and is recorded so (its points
        deducted), and the member's answer is the one already sent."""
        if not isinstance(self.shop, CouponIssuer):
            return row
        try:
            coupon = self.shop.find_coupon(self.code(row))
        except Exception as error:  # the shop cannot tell now: the refusal stands
            log.warning("coupon look-up failed", id=row.id, error=failure(error))
            return row
        if coupon is None or not self.state.redemptions.recovered(row.id or 0, coupon.remote_id):
            return row
        found = self.state.redemptions.by_id(row.id or 0)
        return found or row

    def poll(self, community: str) -> int:
        """Read the private messages written since the last poll (the webhook's fallback); how many were new."""
        inbox = self.inboxes[community]
        cursor = self.state.remote_ids.remote_id(community, "inbox", "cursor")
        messages, after = inbox.messages_since(cursor)
        taken = 0
        for message in messages:
            row = self.take_message(community, message)
            taken += 1 if row is not None else 0
        if after is not None and after != cursor:
            self.state.remote_ids.set_remote_id(community, "inbox", "cursor", after)
        return taken

    # ---- working requests --------------------------------------------------------------------------------------------

    def work(self, run: Run | None = None, now: datetime | None = None) -> int:
        """Take every due step of every stored request; the number of rows worked."""
        if not self.enabled:
            return 0
        done = 0
        for row in self.state.redemptions.due(now or utcnow(), ROUND):
            if run is not None and run.stop.is_set():
                break
            try:
                self._work(row)
            except Exception as error:  # one request failing never stops the others
                reason = failure(error)
                delivery = self.config.delivery
                parked = self.state.redemptions.failed(
                    row.id or 0,
                    reason,
                    max_attempts=1 if isinstance(error, CouponRefused) else delivery.max_attempts,
                    base_seconds=delivery.retry_base_seconds,
                )
                log.warning("redemption step failed", id=row.id, error=reason, parked=parked)
                if run is not None and parked:
                    run.report.failures.append(f"redemption #{row.id} parked: {reason}")
            done += 1
        return done

    def _work(self, row: RedemptionRow) -> None:
        if row.status == "reserved":
            self._issue(row)
            fresh = self.state.redemptions.by_id(row.id or 0)
            assert fresh is not None
            row = fresh
        if row.reply in ("pending", "sending") and row.status != "reserved":
            self._answer(row)

    def code(self, row: RedemptionRow) -> str:
        redeem = self.config.redeem
        assert redeem is not None
        return coupon_code(redeem.secret, row.key)

    def expires(self, row: RedemptionRow) -> datetime | None:
        redeem = self.config.redeem
        days = redeem.expires_days if redeem else 0
        return row.created_at + timedelta(days=days) if days else None

    def _issue(self, row: RedemptionRow) -> None:
        shop = self.shop
        if not isinstance(shop, CouponIssuer):
            raise CouponRefused("the shop cannot make coupons")
        code = self.code(row)
        coupon = shop.find_coupon(code)
        if coupon is None:
            key = row.customer_key or ""
            email = contact_email(key, self.state.identities.customer_email(key)) if key else None
            coupon = shop.create_coupon(
                CouponSpec(
                    code=code,
                    amount=Decimal(row.amount or "0"),
                    type="percent" if row.coupon_type == "percent" else "fixed_cart",
                    email=email,
                    expires_at=self.expires(row),
                    description=f"CardBridge redemption R{row.id} ({row.points} points)",
                )
            )
        self.state.redemptions.issued(row.id or 0, coupon.remote_id)
        log.info("coupon issued", id=row.id, points=row.points)

    def text(self, row: RedemptionRow) -> str:
        """The answer to a request as the store has it now, in the member's language."""
        zh = row.language == "zh"
        offers = self.offers()
        balance = self.state.redemptions.balance(row.customer_key) if row.customer_key else 0
        if row.command == "points":
            if row.customer_key is None:
                return refused_text("not-linked", 0, 0, offers, zh)
            recent = self.state.redemptions.recent_for(row.customer_key, utcnow() - RECENT_CODES)
            return balance_text(balance, offers, [self.code(r) for r in recent], zh)
        if row.command == "help":
            return help_text(offers, zh)
        if row.status == "issued":
            offer = Offer(row.points, Decimal(row.amount or "0"), row.coupon_type or "fixed_cart")
            expires = self.expires(row)
            return issued_text(
                row.points, offer, self.code(row), expires.date().isoformat() if expires else None, balance, zh
            )
        if row.status == "waiting":
            return waiting_text(row.points, zh)
        if row.status == "cancelled":
            return cancelled_text(row.points, zh)
        if row.status == "refused":
            return refused_text(row.reason or "not-linked", row.points, balance, offers, zh)
        return help_text(offers, zh)

    def _answer(self, row: RedemptionRow) -> None:
        redemptions = self.state.redemptions
        rid = row.id or 0
        inbox = self.inboxes.get(row.community)
        if row.conversation and inbox is not None:
            marker = reference(row.key, row.status)
            # Look before sending, always: a try may have gone out before a crash, and a state store that lost the
            # first one reads old messages again (one read of the conversation per answer).
            found = inbox.replied(row.conversation, marker)
            if found is not None:
                redemptions.replied(rid, found)
                return
            redemptions.sending(rid)
            posted = inbox.reply(row.conversation, f"{self.text(row)}\n\n<small>{marker}</small>")
            redemptions.replied(rid, posted)
            return
        endpoint = self.endpoints.get(row.community)
        if row.token and endpoint is not None:
            if utcnow() - row.created_at > INTERACTION_TOKEN_LIFE:
                redemptions.replied(rid, None, expired=True)  # /points shows the code again
                return
            try:
                endpoint.edit_reply(row.token, self.text(row))
            except ReplyExpired:
                redemptions.replied(rid, None, expired=True)  # /points shows the code again
                return
            redemptions.replied(rid, None)
            return
        redemptions.replied(rid, None, expired=True)  # no channel to answer on any more (config changed)


class RedeemStage:
    """The end of a pass: read private messages (the webhook's fallback) and work the stored requests."""

    name = "redeem"

    def __init__(self, desk: RedeemDesk) -> None:
        self.desk = desk

    def run(self, run: Run) -> None:
        if not self.desk.enabled or run.dry_run:
            return
        self.desk.state.redemptions.prune(utcnow() - RECENT_CODES)
        for community in self.desk.inboxes:
            if run.stop.is_set():
                return
            try:
                self.desk.poll(community)
            except Exception as error:
                log.warning("private messages could not be read", community=community, error=failure(error))
                run.report.errors.append(f"redeem {community}: private messages could not be read ({failure(error)})")
        self.desk.work(run)
