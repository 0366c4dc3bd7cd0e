"""Pure rules of member requests: reading a command from a private message, and the answers, in Chinese or English.

Real Discourse refuses a personal message whose body is shorter than ``min_personal_message_post_length`` (10 on a
default English site), so members are told to put the command in the title: both are read, title first.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

_REDEEM = re.compile(r"(?:兑换|兌換|redeem)\s*[:：]?\s*(\d{1,12})", re.IGNORECASE)
_POINTS = re.compile(r"积分|積分|余额|餘額|\bpoints?\b|\bbalance\b", re.IGNORECASE)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
#: A command is read from the start of a message only: a long letter with "redeem 500" on line 40 is not one.
_READ_CHARS = 200


@dataclass(frozen=True)
class Command:
    #: ``redeem``, ``points`` or ``help``.
    name: str
    points: int = 0
    language: str = "en"


def read_command(title: str, body: str, default_language: str = "en") -> Command:
    """The command in a message (title first), and the language to answer in."""
    text = unicodedata.normalize("NFKC", f"{title}\n{body}")[:_READ_CHARS]
    language = "zh" if _CJK.search(text) else default_language
    redeem = _REDEEM.search(text)
    if redeem:
        return Command("redeem", min(int(redeem.group(1)), 10**12), language)
    if _POINTS.search(text):
        return Command("points", 0, language)
    return Command("help", 0, language)


@dataclass(frozen=True)
class Offer:
    points: int
    amount: Decimal
    type: str


def _offer(offer: Offer, zh: bool) -> str:
    value = f"{offer.amount}%" if offer.type == "percent" else f"{offer.amount}"
    return f"{offer.points} 积分 → {value} 优惠券" if zh else f"{offer.points} points → a {value} coupon"


def catalogue(offers: list[Offer], zh: bool) -> str:
    return ("；" if zh else "; ").join(_offer(o, zh) for o in offers)


def how_to_ask(zh: bool, command: str = "500") -> str:
    if zh:
        return (
            f"私信标题写「兑换 {command}」（或「积分」查看余额），正文随便写一句话即可"
            "（论坛要求私信正文至少有几个字）。"
        )
    return (
        f'Put "redeem {command}" (or "points" for your balance) in the message title and write any sentence in '
        "the body (the forum asks for a minimum length)."
    )


def balance_text(balance: int, offers: list[Offer], codes: list[str], zh: bool) -> str:
    lines = [f"你的积分余额：{balance}。" if zh else f"Your points balance: {balance}."]
    lines.append(("可兑换：" if zh else "You can redeem: ") + catalogue(offers, zh) + ("。" if zh else "."))
    if codes:
        lines.append(("你最近的优惠码：" if zh else "Your recent coupon codes: ") + ", ".join(codes))
    if balance < 0:
        lines.append(
            "退款后积分为负，暂时不能兑换。" if zh else "After a refund your balance is negative: redeeming waits."
        )
    return "\n".join(lines)


def issued_text(points: int, offer: Offer, code: str, expires: str | None, balance: int, zh: bool) -> str:
    value = f"{offer.amount}%" if offer.type == "percent" else f"{offer.amount}"
    if zh:
        until = f"，{expires} 前有效" if expires else ""
        return (
            f"兑换成功：{points} 积分 → 优惠码 {code}（{value}{until}，用你的商店账号邮箱下单时可用一次）。"
            f"剩余积分：{balance}。"
        )
    until = f", valid until {expires}" if expires else ""
    return (
        f"Done: {points} points → coupon code {code} ({value}{until}; usable once, with your shop account's email). "
        f"Points left: {balance}."
    )


def refused_text(reason: str, points: int, balance: int, offers: list[Offer], zh: bool) -> str:
    if reason == "balance":
        return (
            f"积分不足：需要 {points}，你有 {balance}。"
            if zh
            else f"Not enough points: {points} needed, you have {balance}."
        )
    if reason == "debt":
        return (
            f"退款后你的积分为负（{balance}），暂时不能兑换。"
            if zh
            else f"After a refund your balance is negative ({balance}); redeeming waits until it is positive."
        )
    if reason == "option":
        return (
            f"没有 {points} 积分的兑换项。可选：{catalogue(offers, True)}。"
            if zh
            else f"There is no option for {points} points. Options: {catalogue(offers, False)}."
        )
    if reason == "not-buyer":
        return "只有在商店下过单的会员可以兑换。" if zh else "Only members who bought in the shop can redeem points."
    return (
        "没有找到与你的账号关联的商店账号：请用下单时的邮箱确认论坛账号，或通过关联页面关联。"
        if zh
        else "No shop account is linked to yours: confirm your forum email with the one you order with, or use the "
        "link page."
    )


def waiting_text(points: int, zh: bool) -> str:
    return (
        f"已收到兑换申请（{points} 积分），管理员审核通过后会在这里发给你优惠码。"
        if zh
        else f"Your redemption of {points} points waits for an admin's approval; the code will follow here."
    )


def cancelled_text(points: int, zh: bool) -> str:
    return (
        f"兑换已取消，{points} 积分已退回。"
        if zh
        else f"The redemption was cancelled; {points} points were given back."
    )


def help_text(offers: list[Offer], zh: bool) -> str:
    return how_to_ask(zh, str(offers[0].points) if offers else "500") + "\n" + catalogue(offers, zh)
