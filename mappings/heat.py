"""Keyword heat (热度分析), pure: posts' text → counts per term, product and week; counts → rising terms.

Nothing here stores or returns member text: a post's text goes in, term and product counts come out. A term is a
word, never a sentence: terms are capped at :data:`TERM_MAX` characters and whatever looks like an address, a link or
a long number (an order or QQ number, a phone) is dropped before counting.

Chinese is cut with jieba (its own :class:`jieba.Tokenizer`, so the shop's product names added as a user dictionary
stay in this instance and "原神月卡" stays one term); other text with a plain word tokenizer. A term counts once per
post, so one member repeating a word does not make it hot.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import jieba

# jieba announces building its dictionary on stderr at DEBUG; that is noise in a CLI's output.
jieba.setLogLevel(logging.WARNING)

#: The longest term kept (characters); longer "words" are pasted noise (hashes, keys, base64).
TERM_MAX = 24
#: Digits in a row from which a token is someone's number (order, QQ, phone), not a word.
LONG_NUMBER = 6

_URL = re.compile(r"(?:https?|ftp)://\S+|www\.\S+", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
#: Markdown/HTML leftovers in ``raw``: tags, quote blocks' ``[quote=…]`` markers, code fences.
_MARKUP = re.compile(r"<[^>]{0,200}>|\[/?[a-z]+(?:=[^\]]{0,100})?\]|```|`", re.IGNORECASE)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[a-z0-9][a-z0-9+#'._-]*[a-z0-9+#]|[a-z0-9]")
_DIGITS = re.compile(rf"\d{{{LONG_NUMBER},}}")

#: Words that carry no topic in either language (a short list on purpose: the floor and the trailing average do
#: most of the filtering, since a stop word is frequent every week and so never rises).
_STOP_TEXT = """
    的 了 是 我 你 他 她 它 们 我们 你们 他们 这 那 这个 那个 就 都 也 还 和 与 或 在 有 没有 没 不 很 吗 吧 呢 啊 呀 哦 一个 一下 什么 怎么 为什么 可以 可能 因为 所以 但是
    如果 然后 还是 已经 现在 时候 今天 大家 自己 请问 谢谢 感谢 求 想 要 能 会 有人 一些 这样 那样 就是 不是 觉得 知道 需要 希望 请 吗 么 啦 嘛 哈 哈哈 哈哈哈 嗯
    a an the and or but if then so to of in on at by for with from as is are was were be been being it its this
    that these those i you he she we they me my your our their them his her do does did done have has had not
    no yes can could would should will just get got any some what when where which who why how there here about
    into than too very also more most only please thanks thank hi hello anyone someone does don't i'm it's
"""
STOP_WORDS: frozenset[str] = frozenset(_STOP_TEXT.split())


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits to ASCII) and lower case, as both tokenisers and matchers see text."""
    return unicodedata.normalize("NFKC", text).lower()


def week_of(moment: datetime | date) -> date:
    """The Monday (UTC, ISO week) a post counts for."""
    day = (moment.astimezone(UTC) if moment.tzinfo else moment).date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def keepable(term: str) -> bool:
    """Whether a token may be stored as a term: a word, not a stop word, an address or someone's number."""
    if not term or len(term) > TERM_MAX or term in STOP_WORDS:
        return False
    if _DIGITS.search(term) or "@" in term or "://" in term or term.startswith("www."):
        return False
    if term.isdigit():
        return False  # a bare number ("2", "30") is never a topic by itself
    # One Han character alone is mostly grammar (的, 了); one Latin letter always is.
    return len(term) >= 2


class Tokenizer:
    """Cuts a post into terms; the shop's product names are a user dictionary (one term each) and are also found as
    product mentions (a name with spaces, "netflix premium", is found in the text even though it is two words)."""

    def __init__(self, products: Mapping[str, str]) -> None:
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self.products: dict[str, str] = {}
        for product_id, name in products.items():
            key = normalise(name).strip()
            if len(key) < 2:
                continue  # a one-character name would match everywhere
            self.products[product_id] = key
            if _HAN.search(key) and " " not in key:
                # A high frequency so the name wins over jieba's own cut ("原神" + "月卡").
                self._jieba.add_word(key, freq=100_000)

    def terms(self, text: str) -> set[str]:
        """The distinct keepable terms of one post."""
        clean = _MARKUP.sub(" ", _EMAIL.sub(" ", _URL.sub(" ", normalise(text))))
        found: set[str] = set()
        for token in self._jieba.lcut(clean, HMM=True):
            token = token.strip()
            if not token:
                continue
            if _HAN.search(token):
                if keepable(token):
                    found.add(token)
                continue
            for word in _WORD.findall(token):
                if keepable(word):
                    found.add(word)
        return found

    def mentions(self, text: str) -> set[str]:
        """Ids of the products a post names (case-, width- and space-insensitive: Chinese writers put spaces
        anywhere, "原神 月卡")."""
        clean = normalise(text).replace(" ", "")
        return {product_id for product_id, key in self.products.items() if key.replace(" ", "") in clean}


@functools.lru_cache(maxsize=4)
def _cached(products: tuple[tuple[str, str], ...]) -> Tokenizer:
    return Tokenizer(dict(products))


def tokenizer_for(products: Mapping[str, str]) -> Tokenizer:
    """A :class:`Tokenizer` for this catalogue, built once per process while the names stay the same (building one
    loads jieba's dictionary: about a second)."""
    return _cached(tuple(sorted(products.items())))


@dataclass
class HeatCounts:
    """What a batch of posts leaves behind: per (term, week) and per (product id, week), posts that had it."""

    terms: Counter[tuple[str, date]] = field(default_factory=Counter)
    products: Counter[tuple[str, date]] = field(default_factory=Counter)
    posts: int = 0


def count_posts(posts: Iterable[tuple[datetime, str]], tokenizer: Tokenizer) -> HeatCounts:
    """Counts for (created at, text) pairs; each term and product counts once per post."""
    counts = HeatCounts()
    for created_at, text in posts:
        week = week_of(created_at)
        counts.posts += 1
        for term in tokenizer.terms(text):
            counts.terms[(term, week)] += 1
        for product_id in tokenizer.mentions(text):
            counts.products[(product_id, week)] += 1
    return counts


@dataclass(frozen=True)
class Rising:
    """A term (or product id) more talked about this week than over the weeks before."""

    term: str
    this_week: int
    #: Mean posts a week over the trailing weeks (absent weeks count as 0).
    trailing: float
    #: this_week / max(trailing, 1): how many times the usual.
    ratio: float


def rising(
    counts: Mapping[str, Mapping[date, int]],
    this_week: date,
    weeks: int = 4,
    floor: int = 3,
    ratio: float = 2.0,
) -> list[Rising]:
    """Terms whose count this week is at least ``floor`` (the significance floor: three posts are a signal, one is
    chance) and at least ``ratio`` times the trailing average of the ``weeks`` weeks before (a quiet average counts as
    1, so a new term needs ``ratio`` posts too). Hottest first: by the rise over the average, then the ratio."""
    if weeks < 1 or floor < 1:
        raise ValueError("weeks and floor must be at least 1")
    before = [this_week - timedelta(weeks=n) for n in range(1, weeks + 1)]
    found: list[Rising] = []
    for term, by_week in counts.items():
        now = by_week.get(this_week, 0)
        if now < floor:
            continue
        trailing = sum(by_week.get(week, 0) for week in before) / weeks
        times = now / max(trailing, 1.0)
        if times >= ratio:
            found.append(Rising(term, now, round(trailing, 2), round(times, 2)))
    found.sort(key=lambda r: (-(r.this_week - r.trailing), -r.ratio, r.term))
    return found


def by_term(rows: Iterable[tuple[str, date, int]]) -> dict[str, dict[date, int]]:
    """(term, week, count) rows as {term: {week: count}}."""
    table: dict[str, dict[date, int]] = {}
    for term, week, count in rows:
        table.setdefault(term, {})[week] = table.get(term, {}).get(week, 0) + count
    return table


def totals(table: Mapping[str, Mapping[date, int]], weeks: Sequence[date]) -> list[tuple[str, int]]:
    """Sum per key over ``weeks``, largest first (ties by key), keys with none left out."""
    summed = [(key, sum(by_week.get(week, 0) for week in weeks)) for key, by_week in table.items()]
    return sorted(((k, n) for k, n in summed if n > 0), key=lambda kn: (-kn[1], kn[0]))


def recent_weeks(this_week: date, weeks: int) -> list[date]:
    """``weeks`` Mondays ending with ``this_week``, oldest first."""
    return [this_week - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]


def log_weight(value: int) -> float:
    """A count's weight on a log scale (views: the thousandth view says less than the tenth)."""
    return math.log1p(max(0, value))
