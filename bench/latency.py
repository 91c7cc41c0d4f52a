"""Message-to-order latency: a message dispatched by the fake Discord -> the entry order created at the
simulator.

    .venv/bin/python bench/latency.py [--messages 200] [--interval 0.3] [--server inprocess|demo]

What runs where:
- the bot (`python -m hit_bot`): a real subprocess, as deployed;
- the fake Discord: in THIS process's event loop (aiohttp); the dispatch stamp is taken here;
- the BloFin simulator: in THIS process; its engine's `subscribe` hook stamps the creation of each
  entry order with `time.perf_counter` (the same clock as the dispatch stamp: no cross-process clock);
- the trading server, `--server inprocess` (default): `hit_server.server.create_app` in paper mode,
  served by uvicorn in a thread of this process on a free 127.0.0.1 port, given the simulator as its
  paper exchange (`sim_app`, over ASGI, no client-side BloFin rate limit: the paper exchange has none);
  `--server demo`: `python -m hit_server` as a subprocess in demo mode against the simulator served
  on its own port. Demo mode paces itself by BloFin's limits (500 requests a minute per IP, 30 trading
  writes per 10 s), so there `--interval` must be about 2 s or the limiter, not the code, is measured.

Each message is a market long with a stop and one target on one of the simulator's 16 symbols (distinct
message ids). Messages are spaced by `--interval` seconds and the next one waits for the previous reply,
so they never queue. After every 16 messages the positions are closed through the server's kill switch
(halt with close_positions, then resume, then wait until the server holds no trade open; untimed) so
each symbol is free again for the one-trade-per-symbol rule.

Prints ONE JSON object (p50_ms, p99_ms, ...); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from hit_bot.testing.fake_discord import FakeDiscord
from hit_bot.testing.samples import TOKEN
from hit_server.blofin_sim import SimConfig, create_app
from hit_server.blofin_sim.catalog import FIRST_SYMBOLS, starting_prices
from hit_server.blofin_sim.testing import OrderStamps as Stamps
from hit_server.server import create_app as create_server_app
from hit_server.settings import Settings
from hit_server.testing import UvicornThread, clean_env, close_everything, free_port
from hit_server.trading import ids
from hit_shared.models import TradingMode

TARGET_P50_MS = 25.0
TARGET_P99_MS = 100.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def start(argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def wait_until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)


async def wait_http(http: httpx.AsyncClient, path: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if (await http.get(path)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise SystemExit(f"{path} did not answer within 60 s (see the logs: --keep)")


def message_for(symbol: str) -> str:
    price = starting_prices()[symbol]
    stop_price, target = price * Decimal("0.97"), price * Decimal("1.03")
    return f"LONG {symbol} Entry: market SL: {stop_price.normalize():f} TP: {target.normalize():f}"


async def measure(
    fake: FakeDiscord, stamps: Stamps, server: httpx.AsyncClient, messages: int, interval: float
) -> list[float]:
    symbols = sorted(FIRST_SYMBOLS)  # the symbols the figures were first measured on
    channel = fake.channel("signals")
    latencies: list[float] = []
    for n in range(messages):
        if n % len(symbols) == 0:
            await close_everything(server, "latency bench round")
        started = time.perf_counter()
        mid = await fake.post_user_message(message_for(symbols[n % len(symbols)]))
        cid = ids.entry_id(f"discord:{channel}:{mid}", 1)
        await wait_until(lambda c=cid: c in stamps.created, 30, f"the entry of message {n}")
        await wait_until(lambda m=mid: fake.replies_to(m), 30, f"the reply to message {n}")
        latencies.append((stamps.created[cid] - started) * 1000)
        if (n + 1) % 20 == 0:
            say(f"{n + 1}/{messages}: last {latencies[-1]:.1f} ms, median so far "
                f"{statistics.median(latencies):.1f} ms")
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))
    return latencies


@contextlib.contextmanager
def trading_server(
    mode: str, sim_app: Any, creds: tuple[str, str, str], api_key: str, workdir: Path
) -> Iterator[int]:
    """The trading server for `mode`, yielding its port."""
    journal = f"sqlite:///{workdir / 'journal.db'}"
    if mode == "inprocess":
        settings = Settings(
            _env_file=None, trading_mode=TradingMode.PAPER, api_keys=(SecretStr(api_key),),
            database_url=journal, data_dir=workdir, paper_price_walk=False, max_open_positions=50,
            rate_limit_per_minute=100000, log_level="WARNING",
        )
        with UvicornThread(create_server_app(settings, sim_app=sim_app), lifespan="on") as server:
            yield server.port
        return
    key, secret, phrase = creds
    port = free_port()
    with UvicornThread(sim_app, lifespan="off") as sim:
        env = clean_env(
            TRADING_MODE="demo", BLOFIN_BASE_URL=f"http://127.0.0.1:{sim.port}", BLOFIN_API_KEY=key,
            BLOFIN_API_SECRET=secret, BLOFIN_PASSPHRASE=phrase, API_KEYS=api_key, DATABASE_URL=journal,
            DATA_DIR=str(workdir), HOST="127.0.0.1", PORT=str(port), MAX_OPEN_POSITIONS="50",
            LOG_LEVEL="WARNING", RATE_LIMIT_PER_MINUTE="100000",
        )
        proc = start([sys.executable, "-m", "hit_server"], env, workdir / "server.log", workdir)
        try:
            yield port
        finally:
            stop(proc)


async def bench(messages: int, interval: float, mode: str, workdir: Path) -> dict[str, Any]:
    creds = (f"bench-{secrets.token_hex(10)}", secrets.token_hex(16), secrets.token_hex(8))
    sim_app = create_app(SimConfig(api_key=creds[0], api_secret=creds[1], passphrase=creds[2],
                                   rate_limit_per_min=0, trade_limit_per_10s=0))
    stamps = Stamps(sim_app)
    api_key = secrets.token_hex(20)
    async with FakeDiscord(TOKEN) as fake:
        with trading_server(mode, sim_app, creds, api_key, workdir) as port:
            url = f"http://127.0.0.1:{port}"
            empty = workdir / "empty.env"
            empty.write_text("")
            bot_env = clean_env(
                DISCORD_TOKEN=TOKEN, DISCORD_CHANNEL_IDS=str(fake.channel("signals")),
                DISCORD_API_BASE=fake.api_base, DISCORD_GATEWAY_URL=fake.gateway_url,
                TRADING_SERVER_URL=url, TRADING_SERVER_API_KEY=api_key, STATE_DIR=str(workdir / "bot-state"),
                GUILD_READY_TIMEOUT="0.2", SYNC_SLASH_COMMANDS="false", LOG_LEVEL="WARNING",
            )
            bot: subprocess.Popen[bytes] | None = None
            async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": api_key}, timeout=60) as http:
                try:
                    await wait_http(http, "/health")
                    bot = start([sys.executable, "-m", "hit_bot", "--env-file", str(empty)], bot_env,
                                workdir / "bot.log", workdir)
                    await wait_until(lambda: fake.connected, 60, "the bot to connect")
                    await asyncio.sleep(1.0)  # let the bot's ready handlers (backfill) finish
                    say("warming up (16 messages, not counted)")
                    await measure(fake, stamps, http, 16, interval)
                    say(f"measuring {messages} messages, one every {interval} s")
                    latencies = await measure(fake, stamps, http, messages, interval)
                finally:
                    if bot is not None:
                        stop(bot)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    where = ("server in-process (paper mode, uvicorn thread, the simulator as its paper exchange)"
             if mode == "inprocess" else "server as a subprocess (demo mode, simulator on its own port)")
    return {
        "benchmark": "message-to-order latency: fake Discord dispatch -> bot -> server -> entry at simulator",
        "setup": f"bot as a subprocess; fake Discord and simulator in the bench process; {where}",
        "server": mode,
        "messages": len(ordered),
        "interval_s": interval,
        "p50_ms": round(p50, 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9)], 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "target_p50_ms": TARGET_P50_MS,
        "target_p99_ms": TARGET_P99_MS,
        "target_met": p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS,
        "cpu_count": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between messages")
    parser.add_argument("--server", choices=("inprocess", "demo"), default="inprocess")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) and say where")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hit-latency-"))
    try:
        result = asyncio.run(bench(args.messages, args.interval, args.server, workdir))
    finally:
        if args.keep:
            say(f"logs kept in {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
