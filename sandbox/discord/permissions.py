"""Discord's permission bits (discord/discord-api-docs developers/topics/permissions.mdx:46-81) and the sandbox
guild's default role permissions; the bot's effective permissions are ``DiscordState.bot_permissions``."""

from __future__ import annotations

# developers/topics/permissions.mdx:46-81
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_ROLES = 1 << 28
MANAGE_THREADS = 1 << 34
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL = (1 << 53) - 1

#: What a new guild's @everyone may do in the sandbox (see and talk), and the bot's own role (what an invite with
#: Manage Roles + Manage Threads + Send Messages gives it).
EVERYONE_DEFAULT = VIEW_CHANNEL | SEND_MESSAGES | SEND_MESSAGES_IN_THREADS | READ_MESSAGE_HISTORY
BOT_DEFAULT = MANAGE_ROLES | MANAGE_THREADS | VIEW_CHANNEL | SEND_MESSAGES | SEND_MESSAGES_IN_THREADS
