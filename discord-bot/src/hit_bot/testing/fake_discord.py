"""A small fake Discord (REST + gateway on one aiohttp port) that a real discord.py client can log into.

Modelled on shared/reference/discord-testing.md. It holds one guild with channels, roles and members,
serves what the bot uses (login, app info, messages and their edits, history, reactions, members,
slash-command sync, and interactions: slash commands run and buttons clicked by users, answered through
callbacks and the interaction's webhook, see `fake_interactions.py`), refuses message bodies over
Discord's limits, and records every REST request and every message the bot posts. Messages posted while
the bot is disconnected are stored but not delivered, like a real outage: the bot must read them from
history.

Point discord.py at it with `DISCORD_API_BASE=fake.api_base` and `DISCORD_GATEWAY_URL=fake.gateway_url`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from hit_bot.testing.fake_interactions import (
    FakeInteraction,
    Interactions,
    buttons_of,
    invalid_form,
    message_problem,
    message_text,
)

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1420070400000
MESSAGE_CONTENT_INTENT = 1 << 15
JSON = dict[str, Any]


def snowflake_at(when: datetime, sequence: int) -> int:
    ms = int(when.timestamp() * 1000)
    return ((ms - DISCORD_EPOCH_MS) << 22) | (sequence & 0x3FFFFF)


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses JSON only when content-type is exactly application/json (no charset).
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


@dataclass
class FakeUser:
    id: int
    name: str
    role_ids: tuple[int, ...] = ()
    bot: bool = False

    def as_user(self) -> JSON:
        user: JSON = {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "avatar": None,
            "global_name": self.name,
        }
        if self.bot:
            user["bot"] = True
        return user

    def as_member(self, with_user: bool = True) -> JSON:
        member: JSON = {
            "roles": [str(r) for r in self.role_ids],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "flags": 0,
            "deaf": False,
            "mute": False,
        }
        if with_user:
            member["user"] = self.as_user()
        return member


@dataclass
class RecordedPost:
    channel_id: int
    body: JSON
    message: JSON

    @property
    def reply_to(self) -> int | None:
        ref = self.body.get("message_reference")
        return int(ref["message_id"]) if ref else None

    @property
    def text(self) -> str:
        """Content and every embed's visible text as posted (edits later: `FakeDiscord.text_of`)."""
        return message_text(self.body)

    @property
    def id(self) -> int:
        return int(self.message["id"])


@dataclass
class FakeDiscordWorld:
    guild_id: int = 1000
    bot_user: FakeUser = field(default_factory=lambda: FakeUser(9000, "hit-bot", bot=True))
    application_id: int = 9001
    channels: dict[str, int] = field(
        default_factory=lambda: {"signals": 2001, "chatter": 2002, "notify": 2003}
    )
    roles: dict[str, int] = field(default_factory=lambda: {"Trader": 3001, "Admin": 3002, "Guest": 3003})
    users: dict[str, FakeUser] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.users:
            self.users = {
                "alice": FakeUser(4001, "alice", (self.roles["Trader"],)),
                "bob": FakeUser(4002, "bob", (self.roles["Guest"],)),
                "carol": FakeUser(4003, "carol", (self.roles["Admin"], self.roles["Trader"])),
                "robo": FakeUser(4004, "robo", (self.roles["Trader"],), bot=True),
            }


class FakeDiscord:
    """Start with `await fake.start()`, stop with `await fake.stop()` (or `async with`)."""

    def __init__(self, token: str, world: FakeDiscordWorld | None = None, heartbeat_ms: int = 5000) -> None:
        self.token = token
        self.world = world or FakeDiscordWorld()
        self.heartbeat_ms = heartbeat_ms
        self.port = 0
        self.messages: dict[int, list[JSON]] = {cid: [] for cid in self.world.channels.values()}
        self.posts: list[RecordedPost] = []
        self.reactions: list[tuple[int, int, str]] = []
        self.requests: list[tuple[str, str, str]] = []  # method, path, body text
        self.unhandled: list[str] = []
        self.identifies = 0
        self.resumes = 0
        self.synced_commands: list[JSON] = []
        self.edits: list[tuple[int, JSON]] = []  # (message id, body) of every edit the bot made
        self.interactions = Interactions(self)
        self._ws: web.WebSocketResponse | None = None
        self._intents = 0
        self._seq = 0
        self._snowflake_seq = 0
        self._session = "fake-session"
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self._gateway_open = asyncio.Event()
        self._gateway_open.set()

    # ---- lifecycle --------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._gateway_open.set()
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- what tests do ----------------------------------------------------------------------------

    def channel(self, name: str) -> int:
        return self.world.channels[name]

    def user(self, name: str) -> FakeUser:
        return self.world.users[name]

    def next_id(self, when: datetime | None = None) -> int:
        self._snowflake_seq += 1
        return snowflake_at(when or datetime.now(UTC), self._snowflake_seq)

    async def post_user_message(
        self,
        content: str,
        *,
        channel: str = "signals",
        author: str = "alice",
        at: datetime | None = None,
        reply_to: int | None = None,
    ) -> int:
        """A user posts (as a reply to message `reply_to` of the same channel, if given); the bot hears
        it at once if connected. Returns the message id."""
        user = self.user(author)
        when = at or datetime.now(UTC)
        channel_id = self.channel(channel)
        message = self._message(channel_id, user, content, self.next_id(when), when)
        if reply_to is not None:
            replied = self._find(channel_id, reply_to)
            if replied is None:
                raise KeyError(reply_to)
            message["type"] = 19  # REPLY: Discord sends the replied-to message along
            message["message_reference"] = {
                "type": 0,
                "message_id": str(reply_to),
                "channel_id": str(channel_id),
                "guild_id": str(self.world.guild_id),
            }
            message["referenced_message"] = replied
        self._store(message)
        await self._dispatch("MESSAGE_CREATE", self._as_seen(message, user))
        return int(message["id"])

    async def redeliver(self, channel: str, message_id: int) -> None:
        """The gateway sends a stored user message again (as Discord may after a resume)."""
        stored = self._find(self.channel(channel), message_id)
        if stored is None:
            raise KeyError(message_id)
        user = self._user_by_id(int(stored["author"]["id"]))
        await self._dispatch("MESSAGE_CREATE", self._as_seen(stored, user))

    async def delete_user_message(self, channel: str, message_id: int) -> None:
        """The author deletes their message; the bot hears MESSAGE_DELETE."""
        if self._find(self.channel(channel), message_id) is None:
            raise KeyError(message_id)
        self.remove(message_id)
        where = {"channel_id": str(self.channel(channel)), "guild_id": str(self.world.guild_id)}
        await self._dispatch("MESSAGE_DELETE", {"id": str(message_id), **where})

    async def edit_user_message(self, channel: str, message_id: int, content: str) -> None:
        stored = self._find(self.channel(channel), message_id)
        if stored is None:
            raise KeyError(message_id)
        stored["content"] = content
        stored["edited_timestamp"] = datetime.now(UTC).isoformat()
        user = self._user_by_id(int(stored["author"]["id"]))
        await self._dispatch("MESSAGE_UPDATE", self._as_seen(stored, user))

    async def drop_connection(self, code: int = 4000, *, hold: bool = False) -> None:
        """Close the gateway as Discord does on trouble; discord.py reconnects and resumes.

        With `hold`, new gateway connections wait (no HELLO) until `release_gateway()`: an outage
        during which posted messages are stored but never delivered.
        """
        if hold:
            self._gateway_open.clear()
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close(code=code, message=b"fake outage")

    def release_gateway(self) -> None:
        self._gateway_open.set()

    def posts_in(self, channel: str) -> list[RecordedPost]:
        cid = self.channel(channel)
        return [p for p in self.posts if p.channel_id == cid]

    def replies_to(self, message_id: int) -> list[RecordedPost]:
        return [p for p in self.posts if p.reply_to == message_id]

    def reactions_on(self, message_id: int) -> list[str]:
        return [emoji for _, mid, emoji in self.reactions if mid == message_id]

    async def slash(
        self, name: str, *, author: str = "alice", channel: str = "chatter", **options: Any
    ) -> int:
        """A user runs the slash command /name with these options. Returns the interaction id."""
        return await self.interactions.slash(name, self.user(author), self.channel(channel), options)

    async def click(self, message_id: int, label: str, *, author: str = "alice") -> int:
        """A user clicks a button (by label or custom_id) on a message. Returns the interaction id."""
        return await self.interactions.click(message_id, label, self.user(author))

    async def press(self, message_id: int, label: str, *, author: str = "alice", within: float = 15.0) -> int:
        """Click a button as a person does: again when the click was not taken (the interaction failed).

        A click that reaches the bot in the instant between its message being stored here and discord.py
        registering the message's view goes unanswered; no person is that fast, a test is. A click not
        acknowledged within the acknowledgement window never will be (later answers are refused), so the
        next click can't double one in flight. Returns the id of the click the bot took."""
        deadline = time.monotonic() + within
        while True:
            clicked = await self.click(message_id, label, author=author)
            if await self.wait_until(partial(self._taken, clicked), self.interactions.ack_within):
                return clicked
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot took no click on {label!r} of message {message_id}")

    def _taken(self, interaction_id: int) -> bool:
        return self.interactions.by_id[interaction_id].acknowledged

    def interaction(self, interaction_id: int) -> FakeInteraction:
        return self.interactions.by_id[interaction_id]

    def message_now(self, message_id: int) -> JSON | None:
        """A message as it is now: after the bot's edits; ephemeral ones too."""
        return self.interactions.message(message_id)

    def text_of(self, message_id: int) -> str:
        message = self.message_now(message_id)
        return message_text(message) if message else ""

    def buttons(self, message_id: int) -> list[JSON]:
        message = self.message_now(message_id)
        return buttons_of(message) if message else []

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> bool:
        """Poll until `predicate()` holds; False if it still does not after `within` seconds."""
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # ---- messages ---------------------------------------------------------------------------------

    def _message(self, channel_id: int, user: FakeUser, content: str, mid: int, when: datetime) -> JSON:
        return {
            "id": str(mid),
            "channel_id": str(channel_id),
            "guild_id": str(self.world.guild_id),
            "type": 0,
            "content": content,
            "author": user.as_user(),
            "timestamp": when.isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "components": [],
        }

    # the same, for fake_interactions
    make_message = _message

    def _as_seen(self, message: JSON, user: FakeUser) -> JSON:
        """A gateway copy: with the author's member data, content blank without the intent."""
        seen = dict(message)
        seen["member"] = user.as_member(with_user=False)
        from_bot = int(message["author"]["id"]) == self.world.bot_user.id
        if not self._intents & MESSAGE_CONTENT_INTENT and not from_bot:
            seen["content"] = ""
        return seen

    def _store(self, message: JSON) -> None:
        bucket = self.messages.setdefault(int(message["channel_id"]), [])
        bucket.append(message)
        bucket.sort(key=lambda m: int(m["id"]))

    def _find(self, channel_id: int, message_id: int) -> JSON | None:
        return next((m for m in self.messages.get(channel_id, []) if int(m["id"]) == message_id), None)

    store = _store
    find = _find

    def remove(self, message_id: int) -> None:
        for bucket in self.messages.values():
            bucket[:] = [m for m in bucket if int(m["id"]) != message_id]

    def record_post(self, channel_id: int, body: JSON, message: JSON) -> RecordedPost:
        post = RecordedPost(channel_id, body, message)
        self.posts.append(post)
        return post

    @staticmethod
    def json_response(data: Any) -> web.Response:
        return _json(data)

    async def edit_stored(self, message_id: int, body: JSON) -> JSON:
        """Apply an edit of the bot's (content, embeds, components, flags: those given) to a message."""
        message = self.message_now(message_id)
        if message is None:
            raise KeyError(message_id)
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        message["edited_timestamp"] = datetime.now(UTC).isoformat()
        self.edits.append((message_id, body))
        if not int(message.get("flags") or 0) & 64:  # ephemeral edits reach only their user
            await self._dispatch("MESSAGE_UPDATE", message)
        return message

    def _user_by_id(self, user_id: int) -> FakeUser:
        if user_id == self.world.bot_user.id:
            return self.world.bot_user
        return next(u for u in self.world.users.values() if u.id == user_id)

    # ---- gateway ----------------------------------------------------------------------------------

    async def _send(self, payload: JSON) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.send_str(json.dumps(payload))

    async def _dispatch(self, event: str, data: JSON) -> None:
        if not self.connected:
            return
        self._seq += 1
        await self._send({"op": 0, "t": event, "s": self._seq, "d": data})

    dispatch = _dispatch

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        await self._gateway_open.wait()
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": self.heartbeat_ms}}))
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                await self._on_frame(ws, json.loads(frame.data))
        finally:
            self._sockets.discard(ws)
            if self._ws is ws:
                self._ws = None
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, payload: JSON) -> None:
        op, data = payload.get("op"), payload.get("d") or {}
        if op == 1:
            await ws.send_str(json.dumps({"op": 11}))
        elif op in (2, 6) and data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
        elif op == 2:
            self.identifies += 1
            self._intents = int(data["intents"])
            self._ws, self._seq = ws, 0
            await self._dispatch("READY", self._ready())
            await self._dispatch("GUILD_CREATE", self._guild())
        elif op == 6:
            self.resumes += 1
            self._ws = ws
            await self._dispatch("RESUMED", {})
        elif op == 8:
            members = [u.as_member() for u in self.world.users.values()]
            chunk = {
                "guild_id": str(self.world.guild_id),
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "nonce": data.get("nonce"),
            }
            await self._dispatch("GUILD_MEMBERS_CHUNK", chunk)

    def _ready(self) -> JSON:
        return {
            "v": 10,
            "user": self.world.bot_user.as_user(),
            "guilds": [{"id": str(self.world.guild_id), "unavailable": True}],
            "session_id": self._session,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.world.application_id), "flags": 0},
        }

    def _guild(self) -> JSON:
        w = self.world
        roles = [{"id": str(w.guild_id), "name": "@everyone", "permissions": "0", "position": 0}]
        roles += [
            {"id": str(rid), "name": name, "permissions": "0", "position": i + 1}
            for i, (name, rid) in enumerate(w.roles.items())
        ]
        channels = [
            {"id": str(cid), "type": 0, "name": name, "position": i, "permission_overwrites": []}
            for i, (name, cid) in enumerate(w.channels.items())
        ]
        members = [w.bot_user.as_member()]
        return {
            "id": str(w.guild_id),
            "name": "HIT test guild",
            "unavailable": False,
            "owner_id": "1",
            "roles": roles,
            "channels": channels,
            "members": members,
            "member_count": len(members),
            "emojis": [],
            "stickers": [],
            "features": [],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "large": False,
        }

    # ---- REST -------------------------------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else ""
        self.requests.append((request.method, request.path, body))
        # interactions are answered with their own token, without the bot's (as on Discord)
        by_token = request.path.startswith(("/api/v10/interactions/", "/api/v10/webhooks/"))
        if (
            request.path.startswith("/api/")
            and not by_token
            and request.headers.get("Authorization") != f"Bot {self.token}"
        ):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        parts = request.match_info["tail"].strip("/").split("/")
        route = self._route(request.method, parts)
        if route is None:
            self.unhandled.append(f"{request.method} {request.path}")
            log.warning("fake discord has no route for %s %s", request.method, request.path)
            return _json({"message": "404: Not Found", "code": 0}, status=404)
        response: web.StreamResponse = await route(request, parts)
        return response

    def _route(self, method: str, parts: list[str]) -> Any:
        n = len(parts)
        table: dict[tuple[str, str], Any] = {
            ("GET", "users/@me"): lambda r, p: self._ok(self.world.bot_user.as_user()),
            ("GET", "oauth2/applications/@me"): lambda r, p: self._ok(self._app()),
            ("GET", "gateway"): lambda r, p: self._ok({"url": self.gateway_url}),
        }
        shape = "/".join(parts)
        if (method, shape) in table:
            return table[(method, shape)]
        if parts[0] in ("interactions", "webhooks"):
            return self.interactions.route(method, parts)
        if n >= 2 and parts[0] == "channels":
            if n == 3 and parts[2] == "messages":
                return {"POST": self._create_message, "GET": self._history}.get(method)
            if n == 4 and parts[2] == "messages":
                return {
                    "GET": self._get_message,
                    "PATCH": self._edit_message,
                    "DELETE": self._delete_message,
                }.get(method)
            if n == 7 and parts[4] == "reactions" and method in ("PUT", "DELETE"):
                return self._reaction
            if n == 2 and method == "GET":
                return self._get_channel
        if n == 4 and parts[0] == "guilds" and parts[2] == "members" and method == "GET":
            return self._get_member
        if n == 3 and parts[0] == "applications" and parts[2] == "commands" and method == "PUT":
            return self._sync_commands
        return None

    async def _ok(self, data: Any) -> web.Response:
        return _json(data)

    def _app(self) -> JSON:
        owner = {"id": "1", "username": "owner", "discriminator": "0", "avatar": None}
        return {
            "id": str(self.world.application_id),
            "name": "hit-bot",
            "description": "",
            "icon": None,
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": owner,
            "verify_key": "0" * 64,
            "flags": 0,
        }

    async def _create_message(self, request: web.Request, parts: list[str]) -> web.Response:
        channel_id = int(parts[1])
        if channel_id not in self.messages:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        body = json.loads(await request.text())
        problem = message_problem(body, creating=True)
        if problem:
            return invalid_form(*problem)
        bot = self.world.bot_user
        message = self._message(channel_id, bot, body.get("content") or "", self.next_id(), datetime.now(UTC))
        message["embeds"] = body.get("embeds") or []
        message["components"] = body.get("components") or []
        ref = body.get("message_reference")
        if ref:
            message["message_reference"] = {
                k: str(v) for k, v in ref.items() if k in ("message_id", "channel_id", "guild_id")
            }
        self._store(message)
        self.posts.append(RecordedPost(channel_id, body, message))
        await self._dispatch("MESSAGE_CREATE", self._as_seen(message, bot))
        return _json(message)

    async def _history(self, request: web.Request, parts: list[str]) -> web.Response:
        stored = self.messages.get(int(parts[1]), [])
        limit = min(int(request.query.get("limit", "50")), 100)
        if "after" in request.query:
            after = int(request.query["after"])
            chosen = [m for m in stored if int(m["id"]) > after][:limit]
        else:
            before = int(request.query.get("before", str(2**63)))
            chosen = [m for m in stored if int(m["id"]) < before][-limit:]
        return _json(list(reversed(chosen)))  # Discord answers newest first

    async def _get_message(self, request: web.Request, parts: list[str]) -> web.Response:
        message = self._find(int(parts[1]), int(parts[3]))
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return _json(message)

    async def _edit_message(self, request: web.Request, parts: list[str]) -> web.Response:
        """The bot edits one of its own messages (a user's it may not: 403 Cannot edit, 50005)."""
        message = self._find(int(parts[1]), int(parts[3]))
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        if int(message["author"]["id"]) != self.world.bot_user.id:
            return _json(
                {"message": "Cannot edit a message authored by another user", "code": 50005}, status=403
            )
        body = json.loads(await request.text())
        problem = message_problem(body, creating=False)
        if problem:
            return invalid_form(*problem)
        return _json(await self.edit_stored(int(parts[3]), body))

    async def _delete_message(self, request: web.Request, parts: list[str]) -> web.Response:
        if self._find(int(parts[1]), int(parts[3])) is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        self.remove(int(parts[3]))
        await self._dispatch(
            "MESSAGE_DELETE", {"id": parts[3], "channel_id": parts[1], "guild_id": str(self.world.guild_id)}
        )
        return web.Response(status=204)

    async def _get_channel(self, request: web.Request, parts: list[str]) -> web.Response:
        cid = int(parts[1])
        names = {v: k for k, v in self.world.channels.items()}
        if cid not in names:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        return _json(
            {
                "id": str(cid),
                "type": 0,
                "name": names[cid],
                "guild_id": str(self.world.guild_id),
                "position": 0,
                "permission_overwrites": [],
            }
        )

    async def _get_member(self, request: web.Request, parts: list[str]) -> web.Response:
        try:
            user = self._user_by_id(int(parts[3]))
        except StopIteration:
            return _json({"message": "Unknown Member", "code": 10007}, status=404)
        return _json(user.as_member())

    async def _reaction(self, request: web.Request, parts: list[str]) -> web.Response:
        entry = (int(parts[1]), int(parts[3]), unquote(parts[5]))
        if request.method == "PUT":
            self.reactions.append(entry)
        elif entry in self.reactions:
            self.reactions.remove(entry)
        return web.Response(status=204)

    async def _sync_commands(self, request: web.Request, parts: list[str]) -> web.Response:
        """Discord answers the registered commands with their ids; users can then run them."""
        app = str(self.world.application_id)
        self.synced_commands = [
            {**command, "id": str(self.next_id()), "application_id": app, "version": "1"}
            for command in json.loads(await request.text())
        ]
        return _json(self.synced_commands)
