"""The Discord adapter as an interactions endpoint (adapters.contributions.InteractionEndpoint): verification, reading
commands, the answers, editing the reply and registering the commands, against the sandbox over loopback."""

from __future__ import annotations

import io
import json

import httpx
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from adapters.communities.discord import DiscordCommunity, DiscordSettings
from adapters.communities.discord_interactions import (
    COMMANDS,
    MalformedInteraction,
    deferred_ephemeral,
    ephemeral,
    is_ping,
    pong,
)
from adapters.communities.discord_webhooks import ReplyExpired, alias_of
from adapters.contributions import ContributionSource, InteractionEndpoint
from connector.core.config import ConfigError, validate_table
from connector.core.http import RemoteError
from connector.core.logs import configure
from sandbox.discord import API, DiscordSandbox
from sandbox.server import SandboxServer

NOW = 1_800_000_000.0


@pytest.fixture
def discord():
    now = [NOW]
    sandbox = DiscordSandbox(bot_token="t0k", route_limit=1000, global_per_second=100_000, clock=lambda: now[0])
    sandbox.tick = lambda s: now.__setitem__(0, now[0] + s)  # type: ignore[attr-defined]
    with SandboxServer(sandbox.app) as server:
        sandbox.url = server.url + API  # type: ignore[attr-defined]
        yield sandbox


def community(discord, **keys):
    values = {
        "kind": "discord",
        "bot_token": "t0k",
        "guild_id": discord.guild_id,
        "api_base": discord.url,
        "application_id": discord.client_id,
        "public_key": discord.public_key,
    } | keys
    return DiscordCommunity("chat", DiscordSettings(**values), sleep=lambda s: None, clock=lambda: discord.clock())


def signed(key: Ed25519PrivateKey, body: bytes, timestamp: str) -> str:
    return key.sign(timestamp.encode() + body).hex()


def command_body(**changes) -> bytes:
    document = {
        "id": "1300000000000000001",
        "application_id": "700000000000000001",
        "type": 2,
        "data": {"id": "1", "name": "redeem", "type": 1, "options": [{"name": "points", "type": 4, "value": 500}]},
        "guild_id": "800000000000000001",
        "channel_id": "800000000000000002",
        "member": {"user": {"id": "600000000000000042", "username": "alice"}, "roles": []},
        "token": "aW50ZXJhY3Rpb246abc-def_1",
        "version": 1,
    }
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    return json.dumps(document).encode()


# ---- settings and capabilities ---------------------------------------------------------------------------------------


def test_public_key_is_validated_and_named(discord):
    with pytest.raises(ConfigError, match=r"communities.chat.public_key: .*64 hexadecimal characters"):
        validate_table(
            DiscordSettings,
            {"kind": "discord", "bot_token": "t", "guild_id": "1", "public_key": "abc"},
            "communities.chat",
        )
    settings = DiscordSettings(kind="discord", bot_token="t", guild_id="1")
    assert settings.missing_for("interactions") == ["application_id", "public_key"]
    adapter = community(discord)
    assert isinstance(adapter, InteractionEndpoint) and isinstance(adapter, ContributionSource)


# ---- verifying -------------------------------------------------------------------------------------------------------


def test_verify_accepts_discords_signature_and_refuses_everything_else(discord):
    adapter = community(discord)
    key = discord.state.signing_key
    body, ts = command_body(), str(int(NOW))
    good = signed(key, body, ts)
    assert adapter.verify_interaction(good, ts, body) is True
    assert adapter.verify_interaction(good.upper(), ts, body) is True  # hex is hex
    forged = signed(Ed25519PrivateKey.generate(), body, ts)
    for signature, timestamp, payload in [
        (forged, ts, body),  # another key
        (good, ts, body + b" "),  # the body changed
        (good, str(int(NOW) + 1), body),  # the timestamp changed
        ("", ts, body),  # missing
        (good[:-2], ts, body),  # short
        ("zz" + good[2:], ts, body),  # not hex
        (good, "", body),
        (good, "12a", body),
        (good, ts + "\n", body),
    ]:
        assert adapter.verify_interaction(signature, timestamp, payload) is False, (signature[:8], timestamp)
    unkeyed = community(discord, public_key="")
    assert unkeyed.verify_interaction(good, ts, body) is False


def test_a_replayed_body_is_refused_after_15_minutes(discord):
    adapter = community(discord)
    body, ts = command_body(), str(int(NOW))
    signature = signed(discord.state.signing_key, body, ts)
    discord.tick(14 * 60)
    assert adapter.verify_interaction(signature, ts, body)
    discord.tick(2 * 60)
    assert not adapter.verify_interaction(signature, ts, body)


# ---- reading ---------------------------------------------------------------------------------------------------------


def test_read_a_guild_command_and_a_dm_command(discord):
    adapter = community(discord)
    command = adapter.read_interaction(command_body())
    assert command is not None
    assert (command.command, command.amount, command.user_id, command.username, command.guild_id) == (
        "redeem",
        500,
        "600000000000000042",
        "alice",
        "800000000000000001",
    )
    dm = adapter.read_interaction(
        command_body(
            member=None,
            guild_id=None,
            user={"id": "600000000000000043", "username": "bob"},
            data={"id": "1", "name": "points", "type": 1},
        )
    )
    assert dm is not None and (dm.user_id, dm.username, dm.guild_id, dm.amount) == (
        "600000000000000043",
        "bob",
        None,
        None,
    )


def test_pings_and_foreign_commands_are_none(discord):
    adapter = community(discord)
    ping = b'{"type": 1, "id": "1", "token": "x", "version": 1}'
    assert adapter.read_interaction(ping) is None and is_ping(ping)
    assert not is_ping(command_body()) and not is_ping(b"[1]") and not is_ping(b"{")
    assert adapter.read_interaction(command_body(data={"id": "1", "name": "ban", "type": 1})) is None
    assert adapter.read_interaction(command_body(type=3)) is None  # a button


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        command_body(token="has spaces"),
        command_body(id="12ab"),
        command_body(member={"user": {"id": "x", "username": "a"}}),
        command_body(member=None),
        command_body(data={"name": "redeem", "options": [{"name": "points", "type": 4, "value": True}]}),
        command_body(data={"name": "redeem", "options": [{"name": "points", "type": 4, "value": 2**60}]}),
        command_body(data={"name": "redeem", "options": [{"name": "points", "type": 3, "value": "5"}]}),
        command_body(data={"name": "redeem", "options": [{"name": f"o{i}", "type": 4, "value": 1} for i in range(26)]}),
        command_body(data={"name": "redeem", "options": {"points": 5}}),
        b'{"type": 2, "pad": "' + b"x" * 70_000 + b'"}',
    ],
)
def test_malformed_commands_are_refused_without_the_token(discord, body):
    with pytest.raises(MalformedInteraction) as raised:
        community(discord).read_interaction(body)
    assert "aW50ZXJhY3Rpb246" not in str(raised.value)


def test_usernames_are_bounded_and_stripped_of_control_characters(discord):
    command = community(discord).read_interaction(
        command_body(member={"user": {"id": "600000000000000042", "username": "a\x1b[31mb" + "c" * 100}})
    )
    assert command is not None and command.username.startswith("a[31mb") and len(command.username) == 32


# ---- the answers -----------------------------------------------------------------------------------------------------


def test_answers_are_ephemeral_and_ping_nobody():
    assert pong() == {"type": 1}
    assert deferred_ephemeral() == {"type": 5, "data": {"flags": 64}}
    answer = ephemeral("@everyone you have 5 points")
    assert answer == {
        "type": 4,
        "data": {"content": "@everyone you have 5 points", "flags": 64, "allowed_mentions": {"parse": []}},
    }
    assert len(ephemeral("x" * 5000)["data"]["content"]) == 2000


# ---- editing the reply (over loopback) -------------------------------------------------------------------------------


class Endpoint:
    """A member's command as the daemon would get it: sent by the sandbox, verified and read by the adapter."""

    def __init__(self, discord, adapter):
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        self.received: list = []

        async def route(request: Request) -> Response:
            body = await request.body()
            headers = request.headers
            if not adapter.verify_interaction(
                headers.get("x-signature-ed25519", ""), headers.get("x-signature-timestamp", ""), body
            ):
                return Response(status_code=401)
            command = adapter.read_interaction(body)
            if command is None:
                return JSONResponse(pong())
            self.received.append(command)
            return JSONResponse(deferred_ephemeral())

        self.server = SandboxServer(Starlette(routes=[Route("/i", route, methods=["POST"])])).start()
        self.url = self.server.url + "/i"


def test_edit_reply_replaces_the_thinking_message_and_pings_nobody(discord):
    adapter = community(discord)
    adapter.register_commands()
    endpoint = Endpoint(discord, adapter)
    try:
        member = discord.add_member()
        discord.send_interaction(endpoint.url, "points", member)
        token = endpoint.received[-1].token
        adapter.edit_reply(token, "@everyone <@&1> you have **120** points")
        reply = discord.reply_of(token)
        assert reply["content"] == "@everyone <@&1> you have **120** points" and reply["flags"] == 64
        assert discord.reply_edits(token)[-1]["allowed_mentions"] == {"parse": []}
        assert discord.pings == []
        edit = [r for r in discord.requests if r["method"] == "PATCH"][-1]
        assert token not in edit["user_agent"]
    finally:
        endpoint.server.stop()
        adapter.close()


def test_an_expired_reply_raises_reply_expired_without_the_token(discord):
    adapter = community(discord)
    adapter.register_commands()
    endpoint = Endpoint(discord, adapter)
    try:
        discord.send_interaction(endpoint.url, "redeem", discord.add_member(), {"points": 5})
        token = endpoint.received[-1].token
        discord.tick(15 * 60 + 5)
        with pytest.raises(ReplyExpired) as expired:
            adapter.edit_reply(token, "done")
        assert token not in str(expired.value)
        with pytest.raises(ReplyExpired):
            adapter.edit_reply("never-issued-token", "done")
    finally:
        endpoint.server.stop()
        adapter.close()


def test_errors_and_retry_logs_show_an_alias_never_the_token(discord, request):
    stream = io.StringIO()
    configure("debug", json=True, stream=stream)
    request.addfinalizer(structlog.reset_defaults)
    adapter = community(discord)
    token = "aW50ZXJhY3Rpb246secret-token"
    discord.knobs.add_fault(f"/webhooks/{discord.client_id}/", kind="status", status=503, times=1)
    discord.knobs.add_fault(f"/webhooks/{discord.client_id}/", kind="status", status=400, times=1)
    with pytest.raises(RemoteError) as failed:
        adapter.edit_reply(token, "x")
    assert failed.value.status == 400
    assert token not in str(failed.value) and token not in failed.value.url and token not in failed.value.path
    assert alias_of(token) in failed.value.url
    assert "retrying" in stream.getvalue() and token not in stream.getvalue()
    adapter.close()


# ---- registering the commands ----------------------------------------------------------------------------------------


def test_commands_are_registered_once_with_the_right_shape(discord):
    adapter = community(discord)
    adapter.register_commands()
    adapter.register_commands()
    puts = [r for r in discord.requests if r["method"] == "PUT" and r["path"].endswith("/commands")]
    assert (
        len(puts) == 1
        and puts[0]["path"] == f"{API}/applications/{discord.client_id}/guilds/{discord.guild_id}/commands"
    )
    by_name = {c["name"]: c for c in discord.commands()}
    assert set(by_name) == {"points", "redeem"}
    [option] = by_name["redeem"]["options"]
    assert option == option | {"type": 4, "name": "points", "required": True, "min_value": 1}
    assert by_name["points"]["options"] == []
    assert all("dm_permission" not in c and "contexts" not in c for c in puts[0]["body"])  # guild commands: never DMs

    restarted = community(discord)  # a new process: reads, finds them, writes nothing
    discord.reset_log()
    restarted.register_commands()
    assert [r["method"] for r in discord.requests] == ["GET"] and discord.command_creates == 2
    adapter.close()
    restarted.close()


def test_changed_commands_are_overwritten_in_one_request(discord):
    httpx.put(
        f"{discord.url}/applications/{discord.client_id}/guilds/{discord.guild_id}/commands",
        headers={"Authorization": "Bot t0k"},
        json=[COMMANDS[0] | {"description": "old text"}, {"name": "legacy", "description": "x", "type": 1}],
    )
    adapter = community(discord)
    discord.reset_log()
    adapter.register_commands()
    assert [r["method"] for r in discord.requests] == ["GET", "PUT"]
    assert {c["name"] for c in discord.commands()} == {"points", "redeem"}
    adapter.close()


# ---- cardbridge check ------------------------------------------------------------------------------------------------


def test_check_compares_the_public_key_and_reports_the_endpoint(discord):
    adapter = community(discord)
    lines = {c.what: c for c in adapter.check()}
    assert lines["interactions public key"].ok
    assert not lines["interactions endpoint"].ok

    endpoint = Endpoint(discord, adapter)
    try:
        assert discord.verify_endpoint(endpoint.url)
        lines = {c.what: c for c in community(discord).check()}
        assert lines["interactions endpoint"].ok and endpoint.url in lines["interactions endpoint"].detail
    finally:
        endpoint.server.stop()
        adapter.close()

    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
    wrong = {c.what: c for c in community(discord, public_key=other).check()}
    assert not wrong["interactions public key"].ok
    assert "communities.chat.public_key" in wrong["interactions public key"].fix
    assert discord.public_key in wrong["interactions public key"].fix
    assert "interactions public key" not in {c.what for c in community(discord, public_key="").check()}


def test_edit_reply_refuses_what_is_not_a_token_before_any_request(discord):
    adapter = community(discord)
    discord.reset_log()
    for token in ("a/b", "", "x" * 501, "tok en"):
        with pytest.raises(ValueError):
            adapter.edit_reply(token, "hi")
    assert discord.requests == []
    adapter.close()
