"""``POST /interactions/<community>``: members' slash commands (``/points``, ``/redeem``) from Discord, over HTTP.

Discord sends each interaction to the endpoint URL set on the application and expects an answer within 3 seconds
(discord-api-docs, docs/interactions/Receiving_and_Responding.mdx, "Responding to an Interaction"). Every request is
verified with the application's Ed25519 public key first; a bad or missing signature is answered 401 (Discord itself
sends such requests when the URL is saved, and refuses an endpoint that accepts them: same document, "Security and
Authorization"). A PING gets a PONG.

``/points`` is answered at once (type 4, ephemeral). ``/redeem`` is stored first (the redemption is reserved in the
ledger, once per interaction id); a refusal or a wait for approval is answered at once, and a reserved redemption
gets a deferred ephemeral answer (type 5) that the redeem stage edits with the code once the shop made the coupon.
Nothing an answer says is parsed for mentions (``allowed_mentions.parse = []``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.contributions import InteractionEndpoint, MalformedInteraction
from connector.core.logs import log
from connector.flow.redeem import RedeemDesk
from connector.server.bodies import BodyError, read_body

#: Interaction bodies are small (a few kB); anything larger is not Discord.
MAX_BODY = 64 * 1024
#: Discord waits 3 seconds for the answer; a body that takes longer to arrive is not worth waiting for.
READ_SECONDS = 2.0
#: Interaction callback types and the message flag (discord-api-docs, docs/interactions/Receiving_and_Responding.mdx:
#: "Interaction Callback Type": PONG 1, CHANNEL_MESSAGE_WITH_SOURCE 4, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE 5;
#: docs/resources/Message.mdx "Message Flags": EPHEMERAL 1 << 6).
PONG, MESSAGE, DEFERRED, EPHEMERAL = 1, 4, 5, 64
#: Discord message content is at most 2000 characters.
MAX_CONTENT = 2000


def ephemeral(text: str) -> dict[str, Any]:
    return {
        "type": MESSAGE,
        "data": {"content": text[:MAX_CONTENT], "flags": EPHEMERAL, "allowed_mentions": {"parse": []}},
    }


class InteractionRoute:
    def __init__(self, community: str, endpoint: InteractionEndpoint, desk: RedeemDesk, wake: Callable[[], None]):
        self.community, self.endpoint, self.desk, self.wake = community, endpoint, desk, wake

    async def receive(self, request: Request) -> Response:
        try:
            body = await read_body(request, MAX_BODY, READ_SECONDS)
        except BodyError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status, headers={"Connection": "close"})
        signature = request.headers.get("x-signature-ed25519", "")
        timestamp = request.headers.get("x-signature-timestamp", "")
        if not self.endpoint.verify_interaction(signature, timestamp, body):
            log.warning("interaction refused: bad signature", community=self.community)
            return JSONResponse({"error": "invalid request signature"}, status_code=401)
        try:
            interaction = self.endpoint.read_interaction(body)
        except MalformedInteraction as error:
            log.warning("interaction refused: malformed", community=self.community, error=str(error))
            return JSONResponse({"error": "malformed interaction"}, status_code=400)
        if interaction is None:
            if _is_ping(body):
                return JSONResponse({"type": PONG})
            return JSONResponse(ephemeral("?"))
        answer = await run_in_threadpool(self._take, interaction)
        return JSONResponse(answer)

    def _take(self, interaction: Any) -> dict[str, Any]:
        row = self.desk.take_interaction(self.community, interaction)
        if row is None:
            return ephemeral("Redemptions are not enabled here.")
        if row.status == "reserved" or (row.status == "issued" and row.reply != "sent"):
            self.wake()  # the coupon is made by the redeem stage; its answer edits this deferred one
            return {"type": DEFERRED, "data": {"flags": EPHEMERAL}}
        text = self.desk.text(row)
        if row.reply != "sent":
            self.desk.state.redemptions.replied(row.id or 0, None)
        return ephemeral(text)


def _is_ping(body: bytes) -> bool:
    import json

    try:
        return json.loads(body).get("type") == 1
    except (ValueError, AttributeError):
        return False


def interaction_routes(desk: RedeemDesk, wake: Callable[[], None]) -> list[Route]:
    """One route per community whose members redeem with slash commands."""
    return [
        Route(f"/interactions/{name}", InteractionRoute(name, endpoint, desk, wake).receive, methods=["POST"])
        for name, endpoint in desk.endpoints.items()
    ]
