"""Replay: a file of messages through parse -> forward -> outcome, without Discord."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hit_bot.pipeline import Parser, Verdict, verdict
from hit_bot.replay import ReplayFileError, format_table, read_messages, replay, signal_prefix
from hit_bot.testing.fake_trading_server import FakeTradingServer
from hit_bot.testing.samples import API_KEY, CHATTER, INVALID, SHORT_SIGNAL, SIGNAL
from hit_bot.trading_client import TradingClient


@pytest.fixture
async def client(trading_server: FakeTradingServer) -> AsyncIterator[TradingClient]:
    async with httpx.AsyncClient() as http:
        yield TradingClient(http, trading_server.url, API_KEY, deadline=2)


def test_replay_reads_blank_line_separated_text_and_jsonl(tmp_path: Path) -> None:
    text = tmp_path / "day one.txt"
    text.write_text(f"{SIGNAL}\n\n\n{CHATTER}\nsecond line\n  \n{INVALID}\n")
    lines = tmp_path / "day.jsonl"
    lines.write_text(json.dumps({"text": SIGNAL}) + "\n\n" + json.dumps({"text": "a\n\nb", "id": 3}) + "\n")
    assert read_messages(text) == [SIGNAL, f"{CHATTER}\nsecond line", INVALID]
    assert read_messages(lines) == [SIGNAL, "a\n\nb"]
    assert signal_prefix(text) == "replay:day-one"
    lines.write_text('{"txt": 1}\n')
    with pytest.raises(ReplayFileError, match=r"day.jsonl:1 needs a \"text\" string"):
        read_messages(lines)


async def test_replay_sends_each_signal_once_and_tabulates_outcomes(
    tmp_path: Path, client: TradingClient, trading_server: FakeTradingServer, parse: Parser
) -> None:
    path = tmp_path / "batch.txt"
    path.write_text("\n\n".join([SIGNAL, CHATTER, INVALID, SHORT_SIGNAL]))
    trading_server.reject_symbols.add("ETH-USDT")
    rows = await replay(path, parse=parse, client=client)
    assert [verdict(r.outcome) for r in rows] == [Verdict.PLACED, Verdict.NOT_SIGNAL, Verdict.INVALID,
                                                  Verdict.REJECTED]
    assert [a["signal_id"] for a in trading_server.signal_attempts] == ["replay:batch:1", "replay:batch:4"]
    table = format_table(rows)
    assert "1  placed" in table and "long BTC-USDT" in table
    assert "the risk rules refuse ETH-USDT" in table
    assert table.splitlines()[-1] == "total: 1 invalid, 1 not a signal, 1 placed, 1 rejected"
    again = await replay(path, parse=parse, client=client)
    assert "(already received)" in format_table(again) and len(trading_server.trades) == 2


async def test_replay_cli_needs_no_discord_token(tmp_path: Path, trading_server: FakeTradingServer) -> None:
    path = tmp_path / "cli.jsonl"
    path.write_text(json.dumps({"text": SIGNAL}) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("DISCORD_", "TRADING_"))}
    env.update(TRADING_SERVER_URL=trading_server.url, TRADING_SERVER_API_KEY=API_KEY)
    empty = tmp_path / "none.env"
    empty.write_text("")
    command = [sys.executable, "-m", "hit_bot", "--env-file", str(empty), "replay", str(path)]
    process = await _run(command, env)
    assert process.returncode == 0, process.stderr
    assert "placed" in process.stdout and "total: 1 placed" in process.stdout
    assert [a["signal_id"] for a in trading_server.signal_attempts] == ["replay:cli:1"]


async def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import asyncio

    proc = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return subprocess.CompletedProcess(cmd, proc.returncode or 0, out.decode(), err.decode())
