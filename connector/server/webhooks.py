"""``POST /webhooks/<source>``: the receivers, one per webhook format of the configured shop and communities.

What every receiver does, whatever the format (:mod:`adapters.webhooks`): the body is limited while it is read
(:mod:`connector.server.bodies`: 413 past ``max_body_bytes``, chunked or not, 408 past ``read_timeout_seconds``; the
connection is closed after either), the signature is compared with the secret's in constant time (401, nothing
stored), the body is parsed (400 when malformed), and the event is stored before the 200, deduplicated by its
delivery id and, within ``webhook_dedup_seconds``, by its content (a replay under a fresh delivery id re-reads
nothing); then the worker is woken.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.webhooks import Ignored, MalformedWebhook, WebhookEvent, WebhookFormat, webhook_format
from connector.core.config import Config
from connector.core.logs import log
from connector.server.bodies import BodyError, read_body
from connector.server.metrics import Metrics
from connector.state.webhooks import WebhookStore

#: The metrics result of a body refused while it was read, by status.
REFUSALS = {413: "too_large", 408: "too_slow"}


def configured_formats(config: Config) -> dict[str, WebhookFormat]:
    """source → format, for the configured shop's and communities' kinds that send webhooks."""
    kinds = [config.shop.kind, *(c.kind for c in config.communities.values())]
    found = [f for f in map(webhook_format, kinds) if f is not None]
    return {f.source: f for f in found}


def webhook_secret(config: Config, source: str) -> str:
    """The secret set on the sender's webhook (``[server] <source>_webhook_secret``); "" refuses every delivery."""
    server = config.server
    secrets = {
        "woocommerce": server.woocommerce_webhook_secret,
        "sellix": server.sellix_webhook_secret,
        "discourse": server.discourse_webhook_secret,
    }
    return secrets.get(source, "")


def check_stored_fields(event: WebhookEvent) -> None:
    """What is stored fits its column whole (a delivery id cut short could pass for another's)."""
    for what, value, limit in (("delivery id", event.delivery_id, 128), ("resource", event.resource, 320)):
        if len(value) > limit or not value.isprintable():
            raise MalformedWebhook(f"{what} longer than {limit} characters or not printable")


class Receiver:
    """One ``POST /webhooks/<source>`` endpoint."""

    def __init__(
        self,
        form: WebhookFormat,
        secret: str,
        max_body_bytes: int,
        read_timeout: float,
        dedup_window: timedelta | None,
        store: WebhookStore,
        metrics: Metrics,
        on_accepted: Callable[[], None],
    ) -> None:
        self.form = form
        self.source = form.source
        self.secret = secret
        self.limit = max_body_bytes
        self.read_timeout = read_timeout
        self.dedup_window = dedup_window
        self.store = store
        self.metrics = metrics
        self.on_accepted = on_accepted

    def route(self) -> Route:
        return Route(f"/webhooks/{self.source}", self.receive, methods=["POST"])

    def _refuse(self, result: str, status: int, message: str) -> Response:
        self.metrics.webhook(self.source, result)
        return JSONResponse({"error": message}, status_code=status)

    def _signed(self, request: Request, body: bytes) -> bool:
        """The signature is the HMAC the secret gives (compared in constant time); no secret, no delivery."""
        presented = self.form.signature(request.headers)
        return (
            bool(self.secret)
            and presented is not None
            and hmac.compare_digest(presented.encode(), self.form.sign(self.secret, body).encode())
        )

    async def receive(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.limit, self.read_timeout)
        except BodyError as error:
            # The rest of the body is left unread: the connection is closed after the answer.
            self.metrics.webhook(self.source, REFUSALS.get(error.status, "bad_body"))
            return JSONResponse({"error": str(error)}, status_code=error.status, headers={"Connection": "close"})
        if self.form.unsigned_ping(request.headers, body):
            self.metrics.webhook(self.source, "ping")
            return JSONResponse({"ok": "ping"})
        if not self._signed(request, body):
            return self._refuse("bad_signature", 401, "invalid signature")
        try:
            event = self.form.parse(request.headers, body)
            if isinstance(event, WebhookEvent):
                check_stored_fields(event)
        except (MalformedWebhook, ValueError, TypeError, KeyError, RecursionError, OverflowError) as error:
            # Signed but not what the format promises: the sender is told, the log gets one line, no traceback.
            message = str(error) if isinstance(error, MalformedWebhook) else "malformed body"
            log.warning("webhook refused", source=self.source, reason=message, error=type(error).__name__)
            return self._refuse("malformed", 400, message)
        if isinstance(event, Ignored):
            self.metrics.webhook(self.source, "ping" if event.ping else "ignored")
            return JSONResponse({"ok": "ping"} if event.ping else {"ok": "ignored", **event.echo})
        # Stored before the 200: an event answered 200 is never lost. A delivery id seen before is a duplicate.
        # The same content under a fresh delivery id within the window is a replay: a duplicate too.
        digest = hashlib.sha256(b"\0".join([event.source.encode(), event.topic.encode(), body])).hexdigest()
        try:
            accepted = await run_in_threadpool(
                self.store.accept,
                event.source,
                event.delivery_id,
                event.topic,
                event.resource,
                digest,
                self.dedup_window,
            )
        except SQLAlchemyError as error:
            # Not stored, so not acknowledged: 503 makes the sender deliver it again later (a 200 would lose it).
            log.error("webhook not stored: the state store is unreachable", kind=type(error).__name__)
            return self._refuse("store_down", 503, "the state store is unreachable; deliver again later")
        self.metrics.webhook(self.source, "accepted" if accepted else "duplicate")
        if accepted:
            self.on_accepted()
        return JSONResponse({"ok": "accepted" if accepted else "duplicate"})


def webhook_routes(
    config: Config,
    formats: Mapping[str, WebhookFormat],
    store: WebhookStore,
    metrics: Metrics,
    on_accepted: Callable[[], None],
) -> list[Route]:
    """A receiver per format, each with its secret from ``[server]``."""
    server = config.server
    window = timedelta(seconds=server.webhook_dedup_seconds) if server.webhook_dedup_seconds else None
    return [
        Receiver(
            form,
            webhook_secret(config, source),
            server.max_body_bytes,
            server.read_timeout_seconds,
            window,
            store,
            metrics,
            on_accepted,
        ).route()
        for source, form in formats.items()
    ]
