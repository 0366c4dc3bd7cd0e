"""The quarantine boundary every shop record is read through: a record that cannot be read is set aside alone, with its
id and a reason, and the rest of its page goes on.

Whatever a parse function raises for one record (an unknown status, a list where a string belongs, a date no calendar
has, an amount of ``1e30``, an overflow deep in a library) is caught here, for that record only. The reason is written
for the operator and never carries the record's content:

- a :class:`~adapters.base.MalformedRecord`: its message (adapters name the field, never its value; an unknown status
  is shown when it is a short text, as it is what the operator adds to a status map);
- a canonical model's refusal: the fields and pydantic's messages, without the input;
- anything else: the exception's type and where it was raised.

A third-party adapter gets the same boundary by reading its records through :func:`read_records`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from pathlib import PurePath
from typing import Any, TypeVar

from pydantic import ValidationError

from adapters.base import MalformedRecord
from connector.core.models import Quarantined

T = TypeVar("T")

#: The state store keeps record ids of at most this many characters.
MAX_ID = 64
MAX_REASON = 500


def reason_for(error: BaseException) -> str:
    """Why a record was set aside, without the record's content."""
    if isinstance(error, MalformedRecord):
        text = str(error)
    elif isinstance(error, ValidationError):
        problems = error.errors(include_url=False, include_input=False, include_context=False)
        text = "; ".join(f"{'.'.join(str(part) for part in p['loc']) or 'record'}: {p['msg']}" for p in problems)
    else:
        frames = traceback.extract_tb(error.__traceback__)
        where = f" in {frames[-1].name} ({PurePath(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
        text = f"unreadable record: {type(error).__name__}{where}"
    return text[:MAX_REASON] or type(error).__name__


def record_id(value: object) -> str:
    """A record's id as the quarantine keeps it: a string or an integer, printable, at most 64 characters; ``?``
    when the record has none (or something else where its id belongs)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "?"
    try:
        text = str(value)
    except ValueError:  # an integer of more digits than Python converts
        return "?"
    text = "".join(ch for ch in text if ch.isprintable()).strip()[:MAX_ID]
    return text or "?"


def shown(value: object, limit: int = 40) -> str:
    """A value for a reason where the operator needs it (an unknown status): short text or a number as it is, the
    type's name for anything else."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int) and abs(value) < 10**limit:
        return str(value)
    if isinstance(value, str) and len(value) <= limit and value.isprintable():
        return repr(value)
    return f"a {type(value).__name__}"


def quarantine(stream: str, record: Any, error: BaseException, id_of: Callable[[Any], object]) -> Quarantined:
    """The quarantine entry for ``record``, which raised ``error``; ``id_of`` finds its id (it may raise too)."""
    try:
        found = record_id(id_of(record))
    except Exception:  # a record too broken to have an id is still quarantined, as "?"
        found = "?"
    return Quarantined(stream=stream, record_id=found, reason=reason_for(error))


def read_records(
    stream: str,
    records: Iterable[Any],
    parse: Callable[[Any], T],
    id_of: Callable[[Any], object],
) -> tuple[list[T], list[Quarantined]]:
    """Each record through ``parse`` on its own: (what was read, what was quarantined). Nothing one record raises
    reaches the caller (``Exception``, not ``BaseException``: an interrupt still stops the pass)."""
    read: list[T] = []
    quarantined: list[Quarantined] = []
    for record in records:
        try:
            read.append(parse(record))
        except Exception as error:  # the boundary: whatever one record raises stays with that record
            quarantined.append(quarantine(stream, record, error, id_of))
    return read, quarantined


def json_id(name: str) -> Callable[[Any], object]:
    """``id_of`` for JSON objects: the value under ``name`` (nothing for anything but an object)."""
    return lambda record: record.get(name) if isinstance(record, dict) else None


def row_id(name: str) -> Callable[[Any], object]:
    """``id_of`` for database rows: the column ``name``."""
    return lambda row: getattr(row, name, None)


def known_id(value: object) -> Callable[[Any], object]:
    """``id_of`` when the caller knows the id (it asked the shop for that record)."""
    return lambda _record: value
