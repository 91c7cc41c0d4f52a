"""The dashboard's pages timed over HTTP with a long journal: 1,000 closed trades by default.

    .venv/bin/python bench/dashboard.py [--closed 1000] [--open 10] [--requests 50]

Fill (untimed): the paper server in-process (`hit_server.testing.running_server`) trades `--closed`
market signals through the real path: POST /api/v1/signals, the simulator's price moved past the last
target (a win) or the stop (a loss), the position monitor recording each close with the exchange's P&L
and fees, 50 symbols at a time, from four sources. The server's clock and the simulator's run on a
virtual clock over the last 60 days while they trade, so the journal's dates look like a real one's
(History's dates, Performance's daily bars); then `--open` trades are placed at the real time and left
open. Nothing is written to the journal by hand.

Timed: `python -m hit_server` started on that journal and paper account (its own process, a free
127.0.0.1 port), logged in to the dashboard with its API key, and each page requested `--requests`
times, the pages in turn, one request at a time: Now, Now's polled part, a closed trade's page, History
page 1, History filtered (symbol and outcome), History's last page, the CSV of every closed trade, and
Performance. Each page must answer in under 200 ms (issue #16): `target_met` is every page's p99 under it.

Prints ONE JSON object: per page p50, p99 and max in ms, the page's size, and the server process's CPU
time per request (from /proc, Linux only: it shows the server's own cost when the machine is busy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench` as a package, run as a script

from bench.server import cpu_seconds
from hit_server import clock
from hit_server.blofin_sim.catalog import SUSPENDED_INST, default_instruments, starting_prices
from hit_server.testing import (
    RunningServer,
    free_port,
    paper_settings,
    running_server,
    signal_body,
    start_paper_server,
    wait_healthy,
)

TARGET_MS = 200.0
BATCH = 50  # trades open at once while filling (MAX_OPEN_POSITIONS of the fill)
SOURCES = ("alpha", "beta", "gamma", "delta")
SETTLE_S = 120.0


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class VirtualClock:
    """A clock that runs at real speed from a moment the caller sets (`jump`), for both the server
    (`clock.use_source`) and the simulator (`sim.clock_ms`), so their timestamps agree."""

    def __init__(self, start: datetime) -> None:
        self.base, self.mark = start, time.monotonic()

    def jump(self, to: datetime) -> None:
        self.base, self.mark = to, time.monotonic()

    def now(self) -> datetime:
        return self.base + timedelta(seconds=time.monotonic() - self.mark)

    def ms(self) -> int:
        return int(self.now().timestamp() * 1000)


def symbols() -> list[str]:
    """The paper catalogue's tradable symbols."""
    return sorted(s for s in starting_prices() if s != SUSPENDED_INST)


def market_signal(signal_id: str, symbol: str, side: str, price: Decimal, source: str) -> dict[str, Any]:
    """A market entry with a stop 3% away and targets at 1, 2 and 3%, on the symbol's tick."""
    tick = default_instruments()[symbol].tick_size
    sign = 1 if side == "long" else -1

    def at(percent: str) -> str:
        return format((price * (1 + sign * Decimal(percent) / 100)).quantize(tick).normalize(), "f")

    return signal_body(
        signal_id,
        symbol=symbol,
        side=side,
        stop_loss=at("-3"),
        take_profits=[at("1"), at("2"), at("3")],
        source={"platform": "discord", "channel": source},
        raw_text=f"{symbol.split('-')[0]} {side} now, SL {at('-3')}, TP {at('1')} {at('2')} {at('3')}",
    )


async def until_closed(server: RunningServer, closed: int, within: float = SETTLE_S) -> None:
    deadline = time.monotonic() + within
    while (await server.http.get("/api/v1/stats")).json()["closed_trades"] < closed:
        if time.monotonic() > deadline:
            raise SystemExit(f"the monitor did not record {closed} closed trades within {within:.0f} s")
        await asyncio.sleep(0.05)


async def trade_batch(
    server: RunningServer,
    batch: list[tuple[str, str, str, bool]],
    virtual: VirtualClock,
    step: timedelta,
    closed_before: int,
    wait_every: int,
) -> list[str]:
    """Place each (signal_id, symbol, side, wins) at the starting price, then move each symbol's price
    past its last target or its stop, the clock `step` later each move; every `wait_every` moves, wait
    for the monitor to record those closes (it stamps them with the clock's time when it sees them, so
    this is what spreads the closes over time). Returns the placed ids."""
    prices = starting_prices()
    bodies = [
        market_signal(sid, symbol, side, prices[symbol], SOURCES[n % len(SOURCES)])
        for n, (sid, symbol, side, _) in enumerate(batch)
    ]
    replies = await asyncio.gather(*(server.http.post("/api/v1/signals", json=body) for body in bodies))
    placed = [
        item
        for item, reply in zip(batch, replies, strict=True)
        if reply.status_code == 201 and reply.json()["status"] == "placed"
    ]
    for n, (_, symbol, side, wins) in enumerate(placed, start=1):
        virtual.jump(virtual.now() + step)
        up = (side == "long") == wins
        await server.set_price(symbol, prices[symbol] * Decimal("1.05" if up else "0.95"))
        if n % wait_every == 0 or n == len(placed):
            await until_closed(server, closed_before + n)
    return [signal_id for signal_id, *_ in placed]


async def fill(
    server: RunningServer,
    virtual: VirtualClock,
    closed: int,
    open_symbols: list[str],
    wait_every: int,
    days: float = 60.0,
) -> tuple[list[str], list[str]]:
    """`closed` closed trades over the last `days` days (virtual time), then one trade left open on each
    of `open_symbols` at the real time, long and short in turn. Returns the ids of the closed trades and
    of the open ones."""
    rng = random.Random(16)
    names = symbols()
    done: list[str] = []
    started = time.monotonic()
    batches = (closed + BATCH - 1) // BATCH
    span = timedelta(days=days) / max(batches, 1)
    for number in range(batches):
        virtual.jump(datetime.now(UTC) - timedelta(days=days) + span * number)
        size = min(BATCH, closed - len(done))
        batch = [
            (f"hist-{number:03d}-{n:02d}", names[n], rng.choice(("long", "short")), rng.random() < 0.55)
            for n in range(size)
        ]
        done += await trade_batch(server, batch, virtual, span / (size + 1), len(done), wait_every)
        for symbol in {symbol for _, symbol, _, _ in batch}:  # back to the start for the next batch
            await server.set_price(symbol, starting_prices()[symbol])
        say(f"  {len(done)} closed trades ({time.monotonic() - started:.0f} s)")
    clock.use_source(None)
    server.sim.clock_ms = lambda: int(time.time() * 1000)
    prices = starting_prices()
    opened = []
    for n, symbol in enumerate(open_symbols):
        side = ("long", "short")[n % 2]
        body = market_signal(f"open-{n:02d}", symbol, side, prices[symbol], SOURCES[n % len(SOURCES)])
        if (await server.http.post("/api/v1/signals", json=body)).status_code == 201:
            opened.append(body["signal_id"])
    return done, opened


async def build(
    workdir: Path, closed: int, open_symbols: list[str], wait_every: int = 5, **overrides: Any
) -> tuple[list[str], list[str]]:
    """The journal and paper account in `workdir`, written by a paper server in this process
    (`overrides`: its settings, e.g. paper_balance; `wait_every`: closes stamped together, see
    `trade_batch`)."""
    virtual = VirtualClock(datetime.now(UTC))
    clock.use_source(virtual.now)
    try:
        values: dict[str, Any] = {
            "monitor_poll_seconds": 0.05,
            "max_open_positions": BATCH + len(open_symbols),
            "paper_balance": Decimal(1_000_000),
        }
        settings = paper_settings(workdir, **{**values, **overrides})
        async with running_server(settings) as server:
            server.sim.clock_ms = virtual.ms
            return await fill(server, virtual, closed, open_symbols, wait_every)
    finally:
        clock.use_source(None)


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def pages(closed_id: str) -> dict[str, str]:
    return {
        "now": "/dashboard/now",
        "now_live": "/dashboard/now/live",
        "trade": f"/dashboard/trades/{closed_id}",
        "history": "/dashboard/history",
        "history_filtered": "/dashboard/history?symbol=BTC-USDT&outcome=win&from=2000-01-01",
        "history_last_page": "/dashboard/history?page=10",
        "csv": "/dashboard/history.csv",
        "performance": "/dashboard/performance",
    }


def time_pages(base_url: str, key: str, pid: int, closed_id: str, requests: int) -> dict[str, Any]:
    """Each page `requests` times, the pages in turn; per page p50/p99/max, bytes, CPU per request."""
    wanted = pages(closed_id)
    times: dict[str, list[float]] = {name: [] for name in wanted}
    cpu: dict[str, float | None] = dict.fromkeys(wanted, 0.0)
    size: dict[str, int] = {}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        login = http.post("/dashboard/login", data={"password": key, "next": "/dashboard/now"})
        if login.status_code != 303:
            raise SystemExit(f"the dashboard refused the login: {login.status_code}")
        for name, path in wanted.items():  # warm up, and check each page really is one
            reply = http.get(path)
            if reply.status_code != 200:
                raise SystemExit(f"{path} answered {reply.status_code}")
            size[name] = len(reply.content)
        for _ in range(requests):
            for name, path in wanted.items():
                before = cpu_seconds(pid)
                began = time.perf_counter()
                reply = http.get(path)
                times[name].append((time.perf_counter() - began) * 1000)
                after = cpu_seconds(pid)
                if reply.status_code != 200:
                    raise SystemExit(f"{path} answered {reply.status_code}")
                spent = cpu[name]
                cpu[name] = (
                    None if spent is None or before is None or after is None else spent + after - before
                )
    out: dict[str, Any] = {}
    for name, found in times.items():
        ordered = sorted(found)
        spent = cpu[name]
        out[name] = {
            "p50_ms": round(statistics.median(ordered), 1),
            "p99_ms": round(percentile(ordered, 0.99), 1),
            "max_ms": round(ordered[-1], 1),
            "bytes": size[name],
            "server_cpu_ms": None if spent is None else round(spent * 1000 / requests, 1),
        }
    return out


def bench(closed: int, open_trades: int, requests: int) -> dict[str, Any]:
    key = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="hit-bench-dashboard-") as tmp:
        workdir = Path(tmp)
        say(f"filling a journal with {closed} closed trades through the paper server (untimed)")
        began = time.monotonic()
        made, opened = asyncio.run(build(workdir, closed, symbols()[:open_trades]))
        filled_s = time.monotonic() - began
        port = free_port()
        proc = start_paper_server(workdir, port, [key], log=workdir / "server.log")
        try:

            async def healthy() -> None:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                    await wait_healthy(http, proc)

            asyncio.run(healthy())
            say(f"timing {requests} requests of each page")
            load_before = os.getloadavg()
            timed = time_pages(f"http://127.0.0.1:{port}", key, proc.pid, made[len(made) // 2], requests)
            load_after = os.getloadavg()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return {
        "benchmark": "dashboard pages over HTTP, a paper server with a long journal",
        "closed_trades": len(made),
        "open_trades": len(opened),
        "requests_per_page": requests,
        "pages": timed,
        "target_ms": TARGET_MS,
        "target_met": all(page["p99_ms"] < TARGET_MS for page in timed.values()),
        "fill_s": round(filled_s, 1),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "cpu_count": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--closed", type=int, default=1000)
    parser.add_argument("--open", type=int, default=10, dest="open_trades")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(bench(args.closed, args.open_trades, args.requests)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
