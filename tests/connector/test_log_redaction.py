"""What the logs never show: emails, shop keys and coupon codes, in an event's fields or in a traceback."""

from __future__ import annotations

import io
import json

from connector.core.logs import configure, log
from connector.core.redemption import coupon_code


def _lines(emit) -> str:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    configure("info", json=True, stream=stream)
    emit()
    return stream.getvalue()


def test_a_coupon_code_is_masked_in_fields_in_urls_and_in_tracebacks():
    code = coupon_code("s" * 40, "forum:pm:1")

    def emit() -> None:
        log.info("made", note=f"coupon {code}", url=f"https://shop/coupons?code={code.replace('-', '%2D').lower()}")
        try:
            raise RuntimeError(f"shop said no to {code} for alice@example.com")
        except RuntimeError:
            log.exception("failed")

    text = _lines(emit)
    assert code not in text and code.lower() not in text and code.replace("-", "%2D").lower() not in text
    assert "alice@example.com" not in text
    records = [json.loads(line) for line in text.splitlines()]
    assert records[0]["note"] == "coupon [redacted]" and "RuntimeError" in records[1]["exception"]
