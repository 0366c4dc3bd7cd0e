"""Logging: structlog, JSON when stderr is not a terminal, console otherwise; secrets and emails redacted.

Redaction is a processor, so it applies to every event whatever code emitted it: values under secret-looking keys are
replaced, and email addresses inside any string are masked (emails match identities; they are never shown).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(
    r"(api[_-]?key|token|secret|password|authorization|consumer_key|consumer_secret|cookie)", re.I
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
#: WooCommerce keys have a recognisable shape; mask them wherever they appear (e.g. inside a URL).
_WC_KEY = re.compile(r"\b(ck|cs)_[0-9a-f]{8,}\b")
#: A redeemed coupon's code (``connector.core.redemption``) is the member's secret: masked wherever it appears, in any
#: case and URL-quoted (adapters keep it out of their errors; this is the second line).
_COUPON = re.compile(r"\bCB(?:-|%2D)[A-Z2-7]{12}\b", re.IGNORECASE)
REDACTED = "[redacted]"


def mask_email(text: str) -> str:
    """``alice@example.com`` → ``a***@example.com``."""
    return _EMAIL.sub(lambda m: m.group(0)[0] + "***@" + m.group(0).split("@", 1)[1], text)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _COUPON.sub(REDACTED, _WC_KEY.sub(REDACTED, mask_email(value)))
    if isinstance(value, dict):
        return {k: REDACTED if _SECRET_KEYS.search(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v) for v in value)
    return value


def redact(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: drop secret values, mask emails and shop keys."""
    for key in list(event_dict):
        if _SECRET_KEYS.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def configure(level: str = "info", json: bool | None = None, stream: Any = None) -> None:
    """Set up structlog once per process. ``json=None`` picks JSON unless the stream is a terminal."""
    stream = stream or sys.stderr
    if json is None:
        json = not stream.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            # After the traceback is text: what an exception's message carries is redacted too.
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


log = structlog.get_logger("cardbridge")
