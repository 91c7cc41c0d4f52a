"""Interactions for the fake Discord: a user runs a slash command or clicks a button, and the bot answers.

Discord delivers an interaction over the gateway (INTERACTION_CREATE) and the bot answers it over REST,
without its bot token: once through `POST /interactions/{id}/{token}/callback` (within 3 seconds, never
twice), then through the interaction's webhook (`POST /webhooks/{app}/{token}` for follow-ups,
`/webhooks/{app}/{token}/messages/@original` for the first answer). This module keeps those rules, so a
bot that answers late, twice, or with a message Discord would refuse fails here as it would there:

- callback types 4 (a message), 5 (deferred: a "thinking" message that the first follow-up becomes),
  6 (deferred update) and 7 (update the clicked message); 6 and 7 only for a component;
- flag 64 makes a message ephemeral: seen by the one user, never in the channel or its history;
- a click is only possible on an enabled button of a message that holds it;
- every message body is checked against Discord's limits (`message_problem`).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from hit_bot.testing.fake_discord import FakeDiscord, FakeUser, RecordedPost

JSON = dict[str, Any]
EPHEMERAL = 1 << 6
LOADING = 1 << 7
APPLICATION_COMMAND, MESSAGE_COMPONENT = 2, 3
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
OPTION_TYPES: dict[int, type] = {3: str, 4: int, 5: bool, 10: float}
# Discord's limits on a message (https://discord.com/developers/docs/resources/message)
EMBED_LIMITS = {"title": 256, "description": 4096}
EMBED_TOTAL, EMBED_FIELDS, FIELD_NAME, FIELD_VALUE, FOOTER = 6000, 25, 256, 1024, 2048


def error(status: int, code: int, message: str, errors: JSON | None = None) -> web.Response:
    body: JSON = {"message": message, "code": code}
    if errors:
        body["errors"] = errors
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def invalid_form(where: str, problem: str) -> web.Response:
    return error(
        400,
        50035,
        "Invalid Form Body",
        {where: {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH", "message": problem}]}},
    )


def _embed_problem(embed: JSON) -> str | None:
    for key, limit in EMBED_LIMITS.items():
        if len(embed.get(key) or "") > limit:
            return f"embed {key} longer than {limit}"
    fields = embed.get("fields") or []
    if len(fields) > EMBED_FIELDS:
        return f"more than {EMBED_FIELDS} embed fields"
    for item in fields:
        name, value = len(item.get("name") or ""), len(item.get("value") or "")
        if not 0 < name <= FIELD_NAME or not 0 < value <= FIELD_VALUE:
            return f"an embed field's name (1-{FIELD_NAME}) or value (1-{FIELD_VALUE}) has a bad length"
    if len((embed.get("footer") or {}).get("text") or "") > FOOTER:
        return f"embed footer longer than {FOOTER}"
    return None


def _embeds_total(embeds: list[JSON]) -> int:
    total = 0
    for embed in embeds:
        total += len(embed.get("title") or "") + len(embed.get("description") or "")
        total += len((embed.get("footer") or {}).get("text") or "")
        total += sum(len(f.get("name") or "") + len(f.get("value") or "") for f in embed.get("fields") or [])
    return total


def _components_problem(rows: list[JSON]) -> str | None:
    if len(rows) > 5:
        return "more than 5 action rows"
    for row in rows:
        items = row.get("components") or []
        if row.get("type") != 1 or not 1 <= len(items) <= 5:
            return "an action row holds 1 to 5 components"
        for item in items:
            custom_id = item.get("custom_id") or ""
            if item.get("type") == 2 and item.get("style") != 5 and not 0 < len(custom_id) <= 100:
                return "a button needs a custom_id of 1 to 100 characters"
            if len(item.get("label") or "") > 80:
                return "a button label is longer than 80"
    return None


def message_problem(body: JSON, *, creating: bool) -> tuple[str, str] | None:
    """(field, problem) when Discord would refuse this message body, else None."""
    if len(body.get("content") or "") > 2000:
        return "content", "Must be 2000 or fewer in length."
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        return "embeds", "Must be 10 or fewer in length."
    for i, embed in enumerate(embeds):
        problem = _embed_problem(embed)
        if problem:
            return f"embeds.{i}", problem
    if _embeds_total(embeds) > EMBED_TOTAL:
        return "embeds", f"Embed size exceeds maximum size of {EMBED_TOTAL}"
    problem = _components_problem(body.get("components") or [])
    if problem:
        return "components", problem
    if creating and not (body.get("content") or embeds or body.get("components")):
        return "content", "Cannot send an empty message"
    return None


def message_text(message: JSON) -> str:
    """Content and every embed's visible text, for assertions."""
    parts = [message.get("content") or ""]
    for embed in message.get("embeds") or []:
        parts += [embed.get("title", ""), embed.get("description", "")]
        for item in embed.get("fields", []):
            parts += [item.get("name", ""), item.get("value", "")]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(p for p in parts if p)


def buttons_of(message: JSON) -> list[JSON]:
    rows = message.get("components") or []
    return [c for row in rows for c in row.get("components") or [] if c.get("type") == 2]


@dataclass
class FakeInteraction:
    """One interaction and what the bot did with it."""

    id: int
    token: str
    type: int
    user: FakeUser
    channel_id: int
    created: float = field(default_factory=time.monotonic)
    message_id: int | None = None  # the message whose button was clicked
    callback: int | None = None  # how the bot acknowledged it (4, 5, 6 or 7)
    original_id: int | None = None  # the message that @original names
    answers: list[RecordedPost] = field(default_factory=list)  # messages it posted, ephemeral ones too

    @property
    def acknowledged(self) -> bool:
        return self.callback is not None


class Interactions:
    """The interaction side of a `FakeDiscord` (which routes the REST calls here)."""

    def __init__(self, fake: FakeDiscord, ack_within: float = 3.0) -> None:
        self.fake = fake
        self.ack_within = ack_within
        self.by_id: dict[int, FakeInteraction] = {}
        self.ephemeral: dict[int, JSON] = {}
        self.late: list[int] = []  # interactions the bot tried to acknowledge after `ack_within`

    # ---- what tests do ----------------------------------------------------------------------------

    async def slash(self, name: str, user: FakeUser, channel_id: int, options: dict[str, Any]) -> int:
        """A user runs /name with these options, as Discord's client lets them: the command must be
        synced, every option declared, the required ones given, each of its declared type."""
        command = next((c for c in self.fake.synced_commands if c["name"] == name), None)
        if command is None:
            raise ValueError(f"/{name} is not a synced command; Discord would not offer it")
        declared = {o["name"]: o for o in command.get("options", [])}
        unknown = set(options) - set(declared)
        missing = {n for n, o in declared.items() if o.get("required") and n not in options}
        if unknown or missing:
            raise ValueError(f"/{name}: unknown options {sorted(unknown)}, missing {sorted(missing)}")
        given = [
            {"name": n, "type": declared[n]["type"], "value": OPTION_TYPES[declared[n]["type"]](v)}
            for n, v in options.items()
            if v is not None
        ]
        data = {"id": command["id"], "name": name, "type": 1, "options": given}
        return await self._deliver(APPLICATION_COMMAND, user, channel_id, data)

    async def click(self, message_id: int, label: str, user: FakeUser) -> int:
        """A user clicks the enabled button labelled `label` (or with that custom_id) on a message."""
        message = self.message(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} to click on")
        button = next((b for b in buttons_of(message) if label in (b.get("label"), b.get("custom_id"))), None)
        if button is None or button.get("disabled") or "custom_id" not in button:
            raise ValueError(f"message {message_id} has no enabled button {label!r}: {buttons_of(message)}")
        data = {"custom_id": button["custom_id"], "component_type": 2}
        return await self._deliver(MESSAGE_COMPONENT, user, int(message["channel_id"]), data, message)

    def message(self, message_id: int) -> JSON | None:
        """A message as it is now (after edits), in a channel or ephemeral."""
        if message_id in self.ephemeral:
            return self.ephemeral[message_id]
        return next((found for cid in self.fake.messages if (found := self.fake.find(cid, message_id))), None)

    # ---- delivering -------------------------------------------------------------------------------

    async def _deliver(
        self, kind: int, user: FakeUser, channel_id: int, data: JSON, message: JSON | None = None
    ) -> int:
        fake = self.fake
        inter = FakeInteraction(
            fake.next_id(),
            secrets.token_urlsafe(24),
            kind,
            user,
            channel_id,
            message_id=int(message["id"]) if message else None,
        )
        self.by_id[inter.id] = inter
        names = {v: k for k, v in fake.world.channels.items()}
        guild = str(fake.world.guild_id)
        payload: JSON = {
            "id": str(inter.id),
            "application_id": str(fake.world.application_id),
            "type": kind,
            "token": inter.token,
            "version": 1,
            "guild_id": guild,
            "channel_id": str(channel_id),
            "channel": {
                "id": str(channel_id),
                "type": 0,
                "name": names.get(channel_id, "?"),
                "guild_id": guild,
            },
            "member": {**user.as_member(), "permissions": "0"},
            "data": data,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": "0",
            "entitlements": [],
            "context": 0,
            "authorizing_integration_owners": {"0": guild},
            "attachment_size_limit": 8 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = message
        await fake.dispatch("INTERACTION_CREATE", payload)
        return inter.id

    def _post(self, inter: FakeInteraction, data: JSON, *, original: bool) -> JSON:
        """A message the bot posts through an interaction: in the channel, or ephemeral."""
        fake = self.fake
        bot = fake.world.bot_user
        flags = int(data.get("flags") or 0)
        message = fake.make_message(
            inter.channel_id, bot, data.get("content") or "", fake.next_id(), datetime.now(UTC)
        )
        message.update(
            type=20 if original and inter.type == APPLICATION_COMMAND else 0,
            flags=flags,
            embeds=data.get("embeds") or [],
            components=data.get("components") or [],
            webhook_id=str(fake.world.application_id),
            application_id=str(fake.world.application_id),
            interaction_metadata={
                "id": str(inter.id),
                "type": inter.type,
                "user": inter.user.as_user(),
                "authorizing_integration_owners": {"0": str(fake.world.guild_id)},
            },
        )
        if flags & EPHEMERAL:
            self.ephemeral[int(message["id"])] = message
        else:
            fake.store(message)
        inter.answers.append(fake.record_post(inter.channel_id, data, message))
        return message

    # ---- REST: the callback -----------------------------------------------------------------------

    def route(self, method: str, parts: list[str]) -> Any:
        """The handler of an /interactions/ or /webhooks/ request, None when there is no such route."""
        n = len(parts)
        if parts[0] == "interactions" and n == 4 and parts[3] == "callback" and method == "POST":
            return self.callback
        if parts[0] == "webhooks" and n == 3 and method == "POST":
            return self.followup
        editing = method in {"GET", "PATCH", "DELETE"}
        if parts[0] == "webhooks" and n == 5 and parts[3] == "messages" and editing:
            return self.webhook_message
        return None

    async def callback(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        inter = self.by_id.get(int(parts[1])) if parts[1].isdigit() else None
        if inter is None or inter.token != parts[2]:
            return error(404, 10062, "Unknown interaction")
        if inter.acknowledged:
            return error(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - inter.created > self.ack_within:
            self.late.append(inter.id)
            return error(404, 10062, "Unknown interaction")
        body = json.loads(await request.text())
        kind, data = int(body.get("type", 0)), body.get("data") or {}
        if kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and inter.type != MESSAGE_COMPONENT:
            return invalid_form("type", "Interaction response type is only valid for a component")
        if kind not in (MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE):
            return invalid_form("type", f"Unsupported interaction response type {kind}")
        if kind in (MESSAGE, UPDATE_MESSAGE):
            problem = message_problem(data, creating=kind == MESSAGE)
            if problem:
                return invalid_form(*problem)
        message = await self._acknowledge(inter, kind, data)
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        flags = int((message or {}).get("flags") or 0)
        answer: JSON = {
            "interaction": {
                "id": str(inter.id),
                "type": inter.type,
                "response_message_id": str(inter.original_id) if inter.original_id else None,
                "response_message_loading": bool(flags & LOADING),
                "response_message_ephemeral": bool(flags & EPHEMERAL),
            },
            "resource": {"type": kind, **({"message": message} if message else {})},
        }
        return self.fake.json_response(answer)

    async def _acknowledge(self, inter: FakeInteraction, kind: int, data: JSON) -> JSON | None:
        inter.callback = kind
        if kind == MESSAGE:
            message = self._post(inter, data, original=True)
        elif kind == DEFERRED_MESSAGE:
            flags = (int(data.get("flags") or 0) & EPHEMERAL) | LOADING
            message = self._post(inter, {"flags": flags}, original=True)
        else:
            inter.original_id = inter.message_id
            if kind == UPDATE_MESSAGE and inter.message_id is not None:
                await self.fake.edit_stored(inter.message_id, data)
            return self.message(inter.message_id) if inter.message_id else None
        inter.original_id = int(message["id"])
        if not int(message.get("flags") or 0) & EPHEMERAL:
            await self.fake.dispatch("MESSAGE_CREATE", message)
        return message

    # ---- REST: the interaction's webhook ----------------------------------------------------------

    def _by_token(self, parts: list[str]) -> FakeInteraction | None:
        if parts[1] != str(self.fake.world.application_id):
            return None
        return next((i for i in self.by_id.values() if i.token == parts[2] and i.acknowledged), None)

    async def followup(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        inter = self._by_token(parts)
        if inter is None:
            return error(404, 10015, "Unknown Webhook")
        data = json.loads(await request.text())
        problem = message_problem(data, creating=True)
        if problem:
            return invalid_form(*problem)
        original = self.message(inter.original_id) if inter.original_id else None
        if original is not None and int(original.get("flags") or 0) & LOADING:
            # the first follow-up after a deferred answer takes the place of the "thinking" message
            data = {**data, "flags": int(original["flags"]) & EPHEMERAL}
            message = await self.fake.edit_stored(int(original["id"]), data)
        else:
            message = self._post(inter, data, original=False)
            if not int(message.get("flags") or 0) & EPHEMERAL:
                await self.fake.dispatch("MESSAGE_CREATE", message)
        if request.query.get("wait") in ("1", "true", "True"):
            return self.fake.json_response(message)
        return web.Response(status=204)

    async def webhook_message(self, request: web.Request, parts: list[str]) -> web.StreamResponse:
        """GET, PATCH or DELETE /webhooks/{app}/{token}/messages/{id or @original}."""
        inter = self._by_token(parts)
        if inter is None:
            return error(404, 10015, "Unknown Webhook")
        named = parts[4]
        target = inter.original_id if named == "@original" else int(named) if named.isdigit() else None
        mine = {inter.original_id, *(int(p.message["id"]) for p in inter.answers)}
        message = self.message(target) if target is not None and target in mine else None
        if message is None or target is None:
            return error(404, 10008, "Unknown Message")
        if request.method == "GET":
            return self.fake.json_response(message)
        if request.method == "DELETE":
            self.fake.remove(target)
            self.ephemeral.pop(target, None)
            return web.Response(status=204)
        data = json.loads(await request.text())
        problem = message_problem(data, creating=False)
        if problem:
            return invalid_form(*problem)
        if "flags" not in data:
            data["flags"] = int(message.get("flags") or 0) & ~LOADING
        return self.fake.json_response(await self.fake.edit_stored(target, data))
