"""The fake Discord's rules for interactions, over HTTP: what it refuses is what Discord refuses, so a bot
that answers twice, late, before acknowledging, or with a message over the limits fails in the tests too.
(The bot's own use of them, through the real discord.py client: test_bot_trade_console*.py.)"""

from __future__ import annotations

from typing import Any

import aiohttp

from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.fake_interactions import MESSAGE_COMPONENT, FakeInteraction


async def _post(fake: FakeDiscord, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(fake.api_base + path, json=body) as reply:
        return reply.status, (await reply.json() if reply.status != 204 else {})


def _interaction(fake: FakeDiscord, kind: int = 2) -> FakeInteraction:
    inter = FakeInteraction(fake.next_id(), "tok", kind, fake.user("alice"), fake.channel("chatter"))
    fake.interactions.by_id[inter.id] = inter
    return inter


async def test_a_callback_is_taken_once_and_followups_need_it_first(fake_discord: FakeDiscord) -> None:
    inter = _interaction(fake_discord)
    callback = f"/interactions/{inter.id}/tok/callback?with_response=1"
    followup = f"/webhooks/{fake_discord.world.application_id}/tok?wait=1"

    early, _ = await _post(fake_discord, followup, {"content": "too soon"})
    first, answer = await _post(fake_discord, callback, {"type": 5, "data": {}})
    second, refused = await _post(fake_discord, callback, {"type": 4, "data": {"content": "again"}})
    filled, message = await _post(fake_discord, followup, {"content": "done"})

    assert early == 404 and first == 200 and second == 400 and refused["code"] == 40060
    assert answer["interaction"]["response_message_loading"] is True
    assert (
        filled == 200 and message["id"] == answer["resource"]["message"]["id"]
    )  # it took the loading's place
    assert fake_discord.text_of(int(message["id"])) == "done"


async def test_late_wrong_token_update_of_a_command_and_oversized_answers_are_refused(
    fake_discord: FakeDiscord,
) -> None:
    command = _interaction(fake_discord)
    wrong, _ = await _post(fake_discord, f"/interactions/{command.id}/nottok/callback", {"type": 4})
    update, _ = await _post(fake_discord, f"/interactions/{command.id}/tok/callback", {"type": 7, "data": {}})
    field = {"name": "n", "value": "v" * 1025}
    big, problem = await _post(
        fake_discord,
        f"/interactions/{command.id}/tok/callback",
        {"type": 4, "data": {"embeds": [{"title": "t", "fields": [field]}]}},
    )
    fake_discord.interactions.ack_within = 0.0
    late, _ = await _post(
        fake_discord,
        f"/interactions/{_interaction(fake_discord).id}/tok/callback",
        {"type": 4, "data": {"content": "late"}},
    )
    assert (wrong, update, big, late) == (404, 400, 400, 404)
    assert problem["code"] == 50035 and "embeds.0" in problem["errors"]
    assert not command.acknowledged and not fake_discord.posts


async def test_an_ephemeral_answer_stays_out_of_the_channel(fake_discord: FakeDiscord) -> None:
    click = _interaction(fake_discord, MESSAGE_COMPONENT)
    status, answer = await _post(
        fake_discord,
        f"/interactions/{click.id}/tok/callback?with_response=1",
        {"type": 4, "data": {"content": "only you", "flags": 64}},
    )
    message_id = int(answer["resource"]["message"]["id"])
    assert status == 200 and answer["interaction"]["response_message_ephemeral"] is True
    assert fake_discord.text_of(message_id) == "only you"
    assert all(int(m["id"]) != message_id for m in fake_discord.messages[fake_discord.channel("chatter")])
