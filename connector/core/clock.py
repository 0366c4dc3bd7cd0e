"""Time in one place: every timestamp the connector keeps is timezone-aware UTC.

SQLModel's ``UTCDateTime`` column type stores aware values and hands them back in UTC on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    """``2026-11-25T07:00:59Z``: the form cursors and the CLI use."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 timestamp; a value without an offset is taken as UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
