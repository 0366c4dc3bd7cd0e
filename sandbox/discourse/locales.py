"""The forum's language: the server strings CardBridge can meet, in English and Simplified Chinese, and the lock that
makes a forum's locale the current one while a request is answered.

A real forum answers an API request in its ``default_locale``: ``ApplicationController#with_resolved_locale`` takes
the acting user's ``effective_locale``, which is ``SiteSetting.default_locale`` unless ``allow_user_locale`` is on
(discourse/discourse app/controllers/application_controller.rb ``with_resolved_locale``; app/models/user.rb
``effective_locale``), and ``rescue_discourse_actions`` renders ``not_found``/``invalid_access``/``invalid_params``
under ``with_resolved_locale(check_current_user: false)``, i.e. the site default. The strings are from
config/locales/server.en.yml and config/locales/server.zh_CN.yml (zh_CN as of 02e998c0: Chinese has only the
``other`` plural form, so ``member_already_exist`` reads "以下用户已是此群组的成员：…" even for one user).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

#: ``I18n.t`` tables: a plain string, or ``{"one": ..., "other": ...}`` for keys pluralised on ``count``.
Entry = str | dict[str, str]

EN: dict[str, Entry] = {
    "not_found": "The requested URL or resource could not be found.",
    "invalid_access": "You are not permitted to view the requested resource.",
    "invalid_api_credentials": (
        "You are not permitted to view the requested resource. The API username or key is invalid."
    ),
    "invalid_params": "You supplied invalid parameters to the request: %{message}",
    "not_logged_in": "You need to be logged in to do that.",
    "edit_conflict": "That post was edited by another user and your changes can no longer be saved.",
    "topic_not_found": "Something has gone wrong. Perhaps this topic was closed or deleted while you were looking at it?",
    "invalid_grant_badge_reason_link": "External or invalid discourse link is not allowed in badge reason",
    "groups.errors.can_not_modify_automatic": "You cannot modify an automatic group",
    "groups.errors.member_already_exist": {
        "one": "'%{username}' is already a member of this group.",
        "other": "The following users are already members of this group: %{username}",
    },
    "groups.errors.cant_allow_membership_requests": "You cannot allow membership requests for a group without any owners.",
    # only the ``other`` form is ever rendered (count is the 1000-user limit)
    "groups.errors.adding_too_many_users": {"other": "Maximum %{count} users can be added at once"},
    "groups.errors.usernames_or_emails_required": "Usernames or emails must be present",
}

ZH_CN: dict[str, Entry] = {
    "not_found": "找不到请求的 URL 或资源。",
    "invalid_access": "您没有权限查看请求的资源。",
    "invalid_api_credentials": "您没有权限查看请求的资源。API 用户名或者密钥无效。",
    "invalid_params": "您为请求提供了无效参数：%{message}",
    "not_logged_in": "您需要登录才能执行此操作。",
    "edit_conflict": "该帖子已由其他用户编辑，您的变更无法再保存。",
    "topic_not_found": "出了点问题。或许此话题在您查看时已被关闭或删除。",
    "invalid_grant_badge_reason_link": "徽章原因中不允许外部或无效的 Discourse 链接",
    "groups.errors.can_not_modify_automatic": "您不能修改自动生成的群组",
    "groups.errors.member_already_exist": {"other": "以下用户已是此群组的成员：%{username}"},
    "groups.errors.cant_allow_membership_requests": "您不能允许没有任何所有者的组的成员资格请求。",
    "groups.errors.adding_too_many_users": {"other": "一次最多可以添加 %{count} 个用户"},
    "groups.errors.usernames_or_emails_required": "必须存在用户名或电子邮件",
}

LOCALES: dict[str, dict[str, Entry]] = {"en": EN, "zh_CN": ZH_CN}
DEFAULT_LOCALE = "en"

_current = threading.local()


def current_locale() -> str:
    """The locale of the forum whose lock this thread holds (``en`` outside any forum)."""
    stack: list[str] = getattr(_current, "stack", [])
    return stack[-1] if stack else DEFAULT_LOCALE


def _plural(entry: Entry, count: Any) -> str:
    if isinstance(entry, str):
        return entry
    # rails-i18n: English has one/other; Chinese only other
    if count == 1 and "one" in entry:
        return entry["one"]
    return entry["other"]


def t(key: str, locale: str | None = None, **params: Any) -> str:
    """``I18n.t(key, **params)`` in the current forum's locale; a key missing there falls back to English, as
    ``I18n.fallbacks`` does."""
    table = LOCALES.get(locale or current_locale(), EN)
    entry = table.get(key) or EN[key]
    text = _plural(entry, params.get("count"))
    return re.sub(r"%\{(\w+)\}", lambda m: str(params.get(m.group(1), m.group(0))), text)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"%\{(\w+)\}", template)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.*?)" for i, part in enumerate(parts))
    return re.compile(rf"\A{regex}\Z", re.S)


_ENGLISH: list[tuple[re.Pattern[str], str]] = [
    (_pattern(text), key)
    for key, entry in EN.items()
    for text in ([entry] if isinstance(entry, str) else list(entry.values()))
]


def localise(text: str) -> str:
    """A message a handler built in English, in the current locale: handlers that hold an English constant
    (``MSG_*``) answer as the real server's ``I18n.t`` would. Text that is not one of the known strings is kept."""
    if current_locale() == DEFAULT_LOCALE:
        return text
    for pattern, key in _ENGLISH:
        found = pattern.match(text)
        if found:
            params: dict[str, Any] = dict(found.groupdict())
            if "count" in params and str(params["count"]).isdigit():
                params["count"] = int(params["count"])
            return t(key, **params)
    return text


class LocaleLock:
    """The forum's re-entrant lock; while a thread holds it, the forum's locale is that thread's current locale, so
    every answer rendered under the lock (every request is) speaks the forum's language."""

    def __init__(self, locale: Callable[[], str]) -> None:
        self._lock = threading.RLock()
        self._locale = locale

    def __enter__(self) -> LocaleLock:
        self._lock.acquire()
        stack: list[str] = getattr(_current, "stack", None) or []
        stack.append(self._locale())
        _current.stack = stack
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        stack: list[str] = getattr(_current, "stack", [])
        if stack:
            stack.pop()
        self._lock.release()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()
