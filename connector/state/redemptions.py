"""Members' requests to CardBridge (``兑换 500``, ``/points``) and redemptions of points for shop coupons.

One row per request, keyed by where it came from (``<community>:pm:<post id>``, ``<community>:ix:<interaction
id>``), so the same message read twice (webhook and polling, two replicas, a second state store) is one request.
The row is its own outbox: it is committed before any remote call, the coupon and the answer are separate steps, and
a step interrupted by a crash is read back before it is tried again.

A redemption is **reserved** in the ledger first: the row and a negative point event (``redeem:<key>``) are written
in one transaction that holds the customer's row lock and refuses when the balance would go below zero. The coupon
code is never stored: it is derived from the key and ``[redeem] secret`` when needed (``connector.core.redemption``).

``status``: ``waiting`` (for approval), ``reserved`` (coupon to make), ``issued``, ``refused`` (``reason`` says why;
nothing deducted), ``cancelled`` (points given back), ``parked`` (the shop kept failing; points still reserved),
``answered`` (not a redemption: a balance or help answer). ``reply``: ``pending``, ``sending``, ``sent``,
``expired`` (a Discord interaction token outlived: the member sees the code with ``/points``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Index, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, SQLModel

from connector.core.clock import utcnow
from connector.state.sql import customers_t, mark_customers_dirty, orders_t, table_of
from connector.state.tables import PointEventRow


class RedemptionRow(SQLModel, table=True):
    """One member request: a redemption, or a question answered privately."""

    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_status", "status"),
        Index("ix_redemptions_reply", "reply"),
        Index("ix_redemptions_customer", "customer_key"),
    )
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=128, unique=True)
    community: str = Field(max_length=40)
    member_id: str = Field(max_length=64)
    customer_key: str | None = Field(default=None, max_length=320)
    #: ``redeem``, ``points`` or ``help``.
    command: str = Field(max_length=16)
    points: int = 0
    amount: str | None = Field(default=None, max_length=32)
    coupon_type: str | None = Field(default=None, max_length=16)
    status: str = Field(max_length=16)
    #: Why a redemption was refused (``balance``, ``option``, ``not-linked``, ``not-buyer``, ``debt``).
    reason: str | None = Field(default=None, max_length=32)
    #: ``zh`` or ``en``: the language the member wrote in.
    language: str = Field(default="en", max_length=4)
    #: The shop's id of the coupon once it exists.
    coupon_ref: str | None = Field(default=None, max_length=64)
    #: Where the answer goes: the private message topic id.
    conversation: str | None = Field(default=None, max_length=64)
    #: A Discord interaction token (valid 15 minutes), cleared once the answer is sent or expired.
    token: str | None = Field(default=None, max_length=512)
    reply: str = Field(default="pending", max_length=16)
    reply_ref: str | None = Field(default=None, max_length=64)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=255)
    next_attempt_at: datetime | None = None
    created_at: datetime
    updated_at: datetime


redemptions_t = table_of(RedemptionRow)
points_t = table_of(PointEventRow)

#: Statuses from which the points can still be given back (no coupon was made).
CANCELLABLE = ("waiting", "reserved", "parked")


@dataclass(frozen=True)
class Request:
    """What a member asked, as the flow read it (a parsed PM or slash command)."""

    key: str
    community: str
    member_id: str
    customer_key: str | None
    command: str
    language: str
    points: int = 0
    amount: str | None = None
    coupon_type: str | None = None
    conversation: str | None = None
    token: str | None = None
    #: Reserve, but wait for ``cardbridge redemptions approve`` before the coupon is made.
    needs_approval: bool = False
    #: Only a customer with a paid order may redeem.
    buyers_only: bool = False


def redeem_event_key(key: str) -> str:
    return f"redeem:{key}"


class Redemptions:
    """The ``redemptions`` table and the point events a redemption writes; each public method is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, key: str) -> RedemptionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(redemptions_t).where(redemptions_t.c.key == key)).first()
        return RedemptionRow.model_validate(dict(row._mapping)) if row else None

    def by_id(self, redemption_id: int) -> RedemptionRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(redemptions_t).where(redemptions_t.c.id == redemption_id)).first()
        return RedemptionRow.model_validate(dict(row._mapping)) if row else None

    def record(self, request: Request) -> tuple[RedemptionRow, bool]:
        """Store the request (a redemption is reserved or refused here); (the row, whether it is new).

        The same key again returns the stored row untouched: a message read twice is answered once."""
        existing = self.get(request.key)
        if existing is not None:
            return existing, False
        try:
            with self.engine.begin() as conn:
                now = utcnow()
                status, reason = "answered", None
                if request.command == "redeem":
                    status, reason = self._reserve(conn, request, now)
                conn.execute(
                    insert(redemptions_t).values(
                        key=request.key,
                        community=request.community,
                        member_id=request.member_id,
                        customer_key=request.customer_key,
                        command=request.command,
                        points=request.points,
                        amount=request.amount,
                        coupon_type=request.coupon_type,
                        status=status,
                        reason=reason,
                        language=request.language,
                        conversation=request.conversation,
                        token=request.token,
                        reply="pending",
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:  # the same request stored meanwhile by another process: theirs stands
            pass
        row = self.get(request.key)
        assert row is not None
        return row, True

    def _reserve(self, conn: Connection, request: Request, now: datetime) -> tuple[str, str | None]:
        """Deduct the points if the balance allows, under the customer's row lock; (status, refusal reason)."""
        key = request.customer_key
        if key is None:
            return "refused", "not-linked"
        if request.amount is None:
            return "refused", "option"
        # Write first: the UPDATE takes the customer's row lock on PostgreSQL and SQLite's write lock, so two
        # redemptions of one member are serialised here and the second reads the balance the first left.
        locked = conn.execute(
            update(customers_t).where(customers_t.c.key == key).values(dirty=customers_t.c.dirty)
        ).rowcount
        if not locked:
            return "refused", "not-linked"
        if (
            request.buyers_only
            and not conn.execute(
                select(orders_t.c.id).where(and_(orders_t.c.customer_key == key, orders_t.c.status == "paid")).limit(1)
            ).first()
        ):
            return "refused", "not-buyer"
        balance = _balance(conn, key)
        if balance < 0:
            return "refused", "debt"
        if balance < request.points:
            return "refused", "balance"
        conn.execute(
            insert(points_t).values(
                key=redeem_event_key(request.key),
                customer_key=key,
                points=-request.points,
                reason=f"redeemed for a coupon ({request.community})",
                created_at=now,
            )
        )
        return ("waiting" if request.needs_approval else "reserved"), None

    def balance(self, customer_key: str) -> int:
        with self.engine.connect() as conn:
            return _balance(conn, customer_key)

    def due(self, now: datetime, limit: int = 50) -> list[RedemptionRow]:
        """Rows with a step to take: a coupon to make, or an answer to send (a ``sending`` one is read back first)."""
        ready = or_(redemptions_t.c.next_attempt_at.is_(None), redemptions_t.c.next_attempt_at <= now)
        work = or_(
            redemptions_t.c.status == "reserved",
            and_(
                redemptions_t.c.reply.in_(("pending", "sending")),
                redemptions_t.c.status.in_(("issued", "refused", "answered", "waiting", "cancelled")),
            ),
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(redemptions_t).where(and_(work, ready)).order_by(redemptions_t.c.id).limit(limit)
            ).all()
        return [RedemptionRow.model_validate(dict(r._mapping)) for r in rows]

    def _set(self, redemption_id: int, when: Sequence[str] | None = None, **values: Any) -> bool:
        where = redemptions_t.c.id == redemption_id
        if when is not None:
            where = and_(where, redemptions_t.c.status.in_(list(when)))
        with self.engine.begin() as conn:
            return bool(conn.execute(update(redemptions_t).where(where).values(updated_at=utcnow(), **values)).rowcount)

    def issued(self, redemption_id: int, coupon_ref: str) -> None:
        self._set(
            redemption_id,
            ("reserved",),
            status="issued",
            coupon_ref=coupon_ref,
            reply="pending",
            attempts=0,
            last_error=None,
            next_attempt_at=None,
        )

    def sending(self, redemption_id: int) -> None:
        """The answer is about to be sent: after a crash, it is looked for before it is sent again."""
        self._set(redemption_id, reply="sending")

    def replied(self, redemption_id: int, reply_ref: str | None, *, expired: bool = False) -> None:
        self._set(
            redemption_id,
            reply="expired" if expired else "sent",
            reply_ref=reply_ref,
            token=None,
            attempts=0,
            last_error=None,
            next_attempt_at=None,
        )

    def failed(self, redemption_id: int, error: str, *, max_attempts: int, base_seconds: float) -> bool:
        """Count a failed step and back off; after ``max_attempts`` a coupon step is parked (its points stay
        reserved, ``redemptions cancel`` gives them back). True when it was parked."""
        row = self.by_id(redemption_id)
        if row is None:
            return False
        attempts = row.attempts + 1
        park = attempts >= max_attempts
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": error[:255],
            "next_attempt_at": utcnow() + timedelta(seconds=base_seconds * 2 ** min(attempts - 1, 10)),
        }
        if park and row.status == "reserved":
            values["status"] = "parked"
        elif park:
            values["reply"] = "parked"
        self._set(redemption_id, **values)
        return park

    def recovered(self, redemption_id: int, coupon_ref: str) -> bool:
        """A refused redemption whose coupon the shop already has (a state store that lost the first one read the
        message again): it was issued, so its points are deducted whatever the balance says now."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(redemptions_t).where(
                    and_(redemptions_t.c.id == redemption_id, redemptions_t.c.status == "refused")
                )
            ).first()
            if row is None or row.customer_key is None or row.amount is None:
                return False
            now = utcnow()
            conn.execute(
                update(redemptions_t)
                .where(redemptions_t.c.id == redemption_id)
                .values(status="issued", reason=None, coupon_ref=coupon_ref, updated_at=now)
            )
            conn.execute(
                insert(points_t).values(
                    key=redeem_event_key(row.key),
                    customer_key=row.customer_key,
                    points=-row.points,
                    reason=f"redeemed for a coupon ({row.community}), found in the shop",
                    created_at=now,
                )
            )
            return True

    def approve(self, redemption_id: int) -> bool:
        return self._set(redemption_id, ("waiting",), status="reserved")

    def retry(self, redemption_id: int) -> bool:
        """A parked redemption tried again (its points are still reserved), or a parked answer sent again."""
        if self._set(redemption_id, ("parked",), status="reserved", attempts=0, next_attempt_at=None):
            return True
        where = and_(redemptions_t.c.id == redemption_id, redemptions_t.c.reply == "parked")
        with self.engine.begin() as conn:
            done = conn.execute(
                update(redemptions_t)
                .where(where)
                .values(reply="pending", attempts=0, next_attempt_at=None, updated_at=utcnow())
            ).rowcount
        return bool(done)

    def prune(self, before: datetime) -> int:
        """Delete answered questions (balance, help) asked before ``before``; redemptions are kept for good."""
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    delete(redemptions_t).where(
                        and_(
                            redemptions_t.c.command != "redeem",
                            redemptions_t.c.reply.in_(("sent", "expired")),
                            redemptions_t.c.created_at < before,
                        )
                    )
                ).rowcount
            )

    def cancel(self, redemption_id: int) -> bool:
        """Give the points back (one reversal event) unless a coupon was made; the member is told."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(redemptions_t).where(
                    and_(redemptions_t.c.id == redemption_id, redemptions_t.c.status.in_(CANCELLABLE))
                )
            ).first()
            if row is None:
                return False
            now = utcnow()
            conn.execute(
                update(redemptions_t)
                .where(redemptions_t.c.id == redemption_id)
                .values(status="cancelled", reply="pending", attempts=0, next_attempt_at=None, updated_at=now)
            )
            if row.customer_key:
                conn.execute(
                    insert(points_t).values(
                        key=f"{redeem_event_key(row.key)}:reversal",
                        customer_key=row.customer_key,
                        points=row.points,
                        reason="redemption cancelled",
                        created_at=now,
                    )
                )
                mark_customers_dirty(conn, [row.customer_key])
            return True

    def listing(self, *, commands: Sequence[str] = ("redeem",), limit: int = 200) -> list[RedemptionRow]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(redemptions_t)
                .where(redemptions_t.c.command.in_(list(commands)))
                .order_by(redemptions_t.c.id.desc())
                .limit(limit)
            ).all()
        return [RedemptionRow.model_validate(dict(r._mapping)) for r in rows]

    def recent_for(self, customer_key: str, since: datetime) -> list[RedemptionRow]:
        """A member's issued redemptions since ``since`` (``/points`` lists their codes again)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(redemptions_t)
                .where(
                    and_(
                        redemptions_t.c.customer_key == customer_key,
                        redemptions_t.c.status == "issued",
                        redemptions_t.c.created_at >= since,
                    )
                )
                .order_by(redemptions_t.c.id)
            ).all()
        return [RedemptionRow.model_validate(dict(r._mapping)) for r in rows]

    def counts(self) -> dict[str, int]:
        """Redemptions by status, and points redeemed (``points_redeemed``: issued, waiting or reserved)."""
        with self.engine.connect() as conn:
            by_status: dict[Any, Any] = dict(
                conn.execute(
                    select(redemptions_t.c.status, func.count())
                    .where(redemptions_t.c.command == "redeem")
                    .group_by(redemptions_t.c.status)
                ).all()
            )
            spent = conn.execute(
                select(func.coalesce(func.sum(redemptions_t.c.points), 0)).where(
                    and_(
                        redemptions_t.c.command == "redeem",
                        redemptions_t.c.status.in_(("issued", "waiting", "reserved", "parked")),
                    )
                )
            ).scalar_one()
        return {**{str(k): int(v) for k, v in by_status.items()}, "points_redeemed": int(spent)}


def _balance(conn: Connection, customer_key: str) -> int:
    return int(
        conn.execute(
            select(func.coalesce(func.sum(points_t.c.points), 0)).where(points_t.c.customer_key == customer_key)
        ).scalar_one()
    )
