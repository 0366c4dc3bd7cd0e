"""Small Rails-isms the forum's answers depend on: Ruby's ``blank?``/``to_i``, ActiveModel casts, ``Slug.for``, and
Rails' nested parameter parsing of query strings, form bodies and multipart bodies."""

from __future__ import annotations

import html
import json
import re
import unicodedata
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def blank(value: Any) -> bool:
    """Ruby's ``blank?``: nil, false, whitespace-only strings and empty collections."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict)):
        return len(value) == 0
    return False


def ruby_int(value: Any) -> int:
    """Ruby's ``to_i``: leading digits, else 0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    match = re.match(r"\s*([+-]?\d+)", str(value if value is not None else ""))
    return int(match.group(1)) if match else 0


def strict_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def cast_bool(value: Any) -> bool | None:
    """``ActiveModel::Type::Boolean``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    return str(value) not in {"0", "f", "F", "false", "FALSE", "off", "OFF"}


def cast_int(value: Any) -> int | None:
    """``ActiveModel::Type::Integer`` (lenient: ``"12abc"`` is 12, junk is nil)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    match = re.match(r"\s*([+-]?\d+)", str(value))
    return int(match.group(1)) if match else None


def slug(text: str, default: str = "topic") -> str:
    """``Slug.for`` with the default ``ascii`` method: non-ASCII is dropped; empty or all-digit slugs fall back."""
    ascii_text = unicodedata.normalize("NFKD", text.replace("'", "")).encode("ascii", "ignore").decode()
    found = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if not found or found.isdigit():
        return default
    return found


def cook(raw: str) -> str:
    """A crude stand-in for PrettyText: escaped paragraphs."""
    paragraphs = [p for p in re.split(r"\n\s*\n", raw.strip()) if p.strip()]
    return "\n".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>" for p in paragraphs)


def clean_raw(raw: str) -> str:
    """``PostRevisor#cleanup_whitespaces``: normalise odd spaces, strip trailing whitespace."""
    return re.sub(r"\s+\Z", "", raw.replace("\u00a0", " ").replace("\u200b", ""))


def time_left(seconds: int) -> str:
    """``RateLimiter::LimitExceeded#time_left``."""
    if seconds <= 3:
        return "a few seconds"
    if seconds < 60:
        return f"{seconds} second" if seconds == 1 else f"{seconds} seconds"
    if seconds < 3600:
        minutes = seconds // 60
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    hours = seconds // 3600
    return f"{hours} hour" if hours == 1 else f"{hours} hours"


def _set_nested(target: dict[str, Any], key: str, value: Any) -> None:
    """Rails nested parameters: ``a[b][c]=v``, ``a[]=v``, ``a[][b]=v``."""
    match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", key)
    if not match:
        target[key] = value
        return
    parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
    current: Any = target
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        following = None if last else parts[index + 1]
        if isinstance(current, list):
            if last:
                current.append(value)
                return
            if current and isinstance(current[-1], dict) and following not in current[-1]:
                current = current[-1]
            else:
                fresh: dict[str, Any] = {}
                current.append(fresh)
                current = fresh
            if part != "":
                current = current.setdefault(part, [] if following == "" else {})
            continue
        if last:
            current[part] = value
            return
        wanted: type = list if following == "" else dict
        if not isinstance(current.get(part), wanted):
            current[part] = wanted()
        current = current[part]


def rails_params(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        _set_nested(result, key, value)
    return result


class UploadedFile(str):
    """A multipart part sent as a file (it has a ``filename``): Rails gives an ``ActionDispatch::Http::UploadedFile``
    (with a ``tempfile``), not a string, so a controller can tell an upload from a plain field."""

    filename: str = ""


def parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        value = json.loads(raw.decode("utf-8"))
        return value if isinstance(value, dict) else {"_json": value}
    if kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        pairs: list[tuple[str, str]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name is None:
                continue
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            text = data.decode(part.get_content_charset() or "utf-8", "replace")
            filename = part.get_param("filename", header="content-disposition")
            if filename is not None:
                upload = UploadedFile(text)
                upload.filename = str(filename)
                text = upload
            pairs.append((str(name), text))
        return rails_params(pairs)
    return rails_params(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
