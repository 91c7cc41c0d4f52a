"""Latency over a real network round trip: a signal's POST -> its entry at the exchange -> `placed`.

    .venv/bin/python bench/rtt.py [--rtt-ms 50] [--warm-rounds 3] [--symbols 8] [--burst 15] [--keep]

On loopback the server answers in a few ms and hides what a user on a VPS pays: every BloFin call is a
network round trip. Here the BloFin simulator is served behind a "network" that holds each HTTP request
for half the round trip on its way in and half on its way out (`Network` below), so the exchange sees
a request rtt/2 after it was sent and the caller sees the answer a whole round trip later. What its
WebSockets push (the private account stream, the public mark prices) reaches the server rtt/2 after
the simulator sent it, in order.

What runs where: the simulator in this process (uvicorn in a thread, its engine stamps each order's
creation with `time.perf_counter`, the same clock as the POST's stamp); the trading server as a
subprocess in demo mode against it (`python -m hit_server`, BloFin's real rate limits in the client,
the simulator's default limits: 30 trading writes per 10 s per key, 500 requests a minute per IP).

Measured:
- `cold`: the first signal on each of `--symbols` symbols (the server has never traded them) whose
  leverage on the simulated account (the simulator's default, 3x) is not the plan's (5x): the plan's is
  sent before the intent, and the entry (a market entry the account's margin covers at 3x) does not wait
  for its answer (a raise: ARCHITECTURE "A warm signal");
- `cold_leverage_lowered`: the first signal on each of `--symbols` more symbols whose leverage on the
  account is higher (10x, set before the server starts) than the plan's: the stop (3% away) lies well
  inside the move that would liquidate an entry at 10x (`execution_run.STOP_SHARE_OF_LIQUIDATION`), so the
  entry goes without waiting for the set; `cold_leverage_lowered_far`: the same from 20x, where the
  3% stop is not within that share, so the entry waits for the set, one round trip more (both measured
  after the stop-outs, everything closed and a trade-limit window of their own);
- `cold_leverage_ready`: the first signal on each of `--symbols` other symbols whose leverage on the
  account was already the plan's before the server started (set on the simulator first, as on a returning
  user's account): the server read it at start (in the background, 20 instruments a read) and sets none;
  with every live instrument's mark streamed from the start, it sends what a warm signal sends;
- `warm`: `--warm-rounds` more signals on each of them, the previous positions closed between rounds;
  `warm_leverage_ready_symbols`: the same on the `cold_leverage_ready` symbols (after a trade-limit window
  of their own), so that a first and a later signal are compared on the same instruments;
  for each: POST -> the entry order created at the simulator (`entry_ms`) and POST -> the `placed`
  answer (`placed_ms`), p50 and p99, also in round trips;
- `requests`: per signal, the exchange requests by endpoint (median over the signals of each kind) and
  how many of them spend BloFin's trading budget (30 per 10 s per account: everything under
  `/api/v1/trade/`);
- `burst`: `--burst` signals on as many symbols posted at once (after a whole trade-limit window without
  trading requests): seconds until all are answered, how many were placed, the 429s the simulator gave,
  and the exchange requests meanwhile by endpoint;
- `stop_out_stream_up` / `stop_out_stream_down`: a stop-out at the exchange (the mark moved through the
  stop), with the private stream up, and with it dropped and refused: seconds until the server's event
  feed reports the trade closed, and until none of its orders rests on the exchange;
- `trades_released_after_kill_switch_s`: between rounds the kill switch closes every position: seconds
  until the server holds no trade open or pending (a new signal on those symbols is refused until then).

Prints ONE JSON object; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hit_server.blofin_sim import SimConfig, create_app
from hit_server.blofin_sim.catalog import starting_prices
from hit_server.blofin_sim.testing import OrderStamps as Stamps
from hit_server.exchange.ratelimit import ARRIVAL_MARGIN_S
from hit_server.testing import UvicornThread, close_everything, free_port, start_paper_server, wait_healthy
from hit_server.trading import ids

TRADE_PREFIX = "/api/v1/trade/"
PLAN_LEVERAGE = 5  # the server's DEFAULT_LEVERAGE here: the plan of every signal below (they name none)
HIGHER_LEVERAGE = 10  # the account's leverage on the `cold_leverage_lowered` symbols
MUCH_HIGHER_LEVERAGE = 20  # ... and on the `cold_leverage_lowered_far` ones
LEVERAGES_READ = "Leverage known for"  # the server's log line once the account's leverages are read


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Network:
    """An ASGI layer that makes every HTTP request to the simulator cross a network of `rtt_s`: held
    rtt/2 before the simulator sees it and rtt/2 before its answer leaves. It also counts the requests
    (method and path) and the 429s, for the per-signal and burst figures."""

    def __init__(self, app: ASGIApp, rtt_s: float) -> None:
        self.app = app
        self.half = rtt_s / 2
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.too_many: Counter[str] = Counter()  # 429s by request
        self.last_trade_request = float("-inf")  # perf_counter of the last request to /api/v1/trade/

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket: what the simulator pushes reaches the server rtt/2 later, in order."""
        queue: asyncio.Queue[tuple[float, Message]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, message = await queue.get()
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                await send(message)
                queue.task_done()

        async def delayed(message: Message) -> None:
            await queue.put((time.perf_counter() + self.half, message))

        forwarder = asyncio.create_task(deliver())
        try:
            await self.app(scope, receive, delayed)
            await queue.join()  # the close frame too, after what was pushed before it
        finally:
            forwarder.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._stream(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.lock:
            self.requests.append(f"{scope['method']} {scope['path']}")
            if scope["path"].startswith(TRADE_PREFIX):
                self.last_trade_request = time.perf_counter()
        await asyncio.sleep(self.half)
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        if held and held[0].get("type") == "http.response.start" and held[0].get("status") == 429:
            with self.lock:
                self.too_many[f"{scope['method']} {scope['path']}"] += 1
        await asyncio.sleep(self.half)
        for message in held:
            await send(message)

    def mark(self) -> int:
        with self.lock:
            return len(self.requests)

    def since(self, mark: int) -> list[str]:
        with self.lock:
            return self.requests[mark:]


async def trade_budget_unspent(network: Network) -> None:
    """Wait until no trading request has been sent for a whole trade-limit window (BloFin's 10 s, as
    the client keeps it), so a round measures latency, not what the previous round's closing spent."""
    window = 10.0 + ARRIVAL_MARGIN_S
    say(f"waiting for a {window:g} s window without trading requests")
    # a timestamp to wait past, not an event to wait for:
    while (idle := time.perf_counter() - network.last_trade_request) < window:  # noqa: ASYNC110
        await asyncio.sleep(window - idle)


def signal(signal_id: str, symbol: str) -> dict[str, Any]:
    price = starting_prices()[symbol]
    return {
        "signal_id": signal_id,
        "side": "long",
        "symbol": symbol,
        "entries": [],
        "stop_loss": str(price * Decimal("0.97")),
        "take_profits": [str(price * Decimal(x)) for x in ("1.01", "1.02", "1.03")],
    }


async def post(http: httpx.AsyncClient, stamps: Stamps, body: dict[str, Any]) -> dict[str, Any]:
    """POST one signal; its entry and `placed` times in ms from the POST."""
    started = time.perf_counter()
    reply = await http.post("/api/v1/signals", json=body)
    answered = (time.perf_counter() - started) * 1000
    answer = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}
    status = answer.get("status")
    entry = stamps.created.get(ids.entry_id(body["signal_id"], 1))
    return {
        "status": status,
        "http": reply.status_code,
        "why": None
        if status == "placed"
        else str(answer.get("reason") or answer.get("error") or reply.text)[:160],
        "placed_ms": answered if status == "placed" else None,
        "entry_ms": (entry - started) * 1000 if entry is not None else None,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1)


def summary(samples: list[dict[str, Any]], rtt_ms: float) -> dict[str, Any]:
    out: dict[str, Any] = {"signals": len(samples), "placed": sum(s["status"] == "placed" for s in samples)}
    refused = Counter(s["why"] for s in samples if s["why"])
    if refused:
        out["not_placed"] = dict(refused)
    for field in ("entry_ms", "placed_ms"):
        values = [s[field] for s in samples if s[field] is not None]
        if not values:
            continue
        p50 = statistics.median(values)
        out[f"{field[:-3]}_p50_ms"] = round(p50, 1)
        out[f"{field[:-3]}_p99_ms"] = percentile(values, 0.99)
        out[f"{field[:-3]}_p50_round_trips"] = round(p50 / rtt_ms, 2) if rtt_ms else None
    return out


def requests_per_signal(per_signal: list[list[str]]) -> dict[str, Any]:
    """The median count of each endpoint over the signals, and the trading writes among them."""
    endpoints = sorted({r for requests in per_signal for r in requests})
    by_endpoint = {e: statistics.median(Counter(requests)[e] for requests in per_signal) for e in endpoints}
    trading = [
        sum(1 for r in requests if r.split(" ", 1)[1].startswith(TRADE_PREFIX)) for requests in per_signal
    ]
    return {
        "by_endpoint": {e: n for e, n in by_endpoint.items() if n},
        "total_median": statistics.median(len(r) for r in per_signal),
        "trade_limited_median": statistics.median(trading),
        "trade_limited_max": max(trading),
    }


async def exit_seen(http: httpx.AsyncClient, sim_app: Any, symbol: str, signal_id: str) -> dict[str, float]:
    """Move the mark through the stop of `signal_id`'s long; seconds until the server's event feed
    says the trade was stopped out (or closed), and until the simulator holds none of its orders open
    (the take profits left behind, cancelled)."""
    price = starting_prices()[symbol] * Decimal("0.96")
    sim = sim_app.state.sim
    started = time.perf_counter()
    sim.set_price(symbol, price)
    evented = cancelled = float("nan")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (evented != evented or cancelled != cancelled):  # NaN: not yet
        if cancelled != cancelled and not sim.open_orders(symbol):
            cancelled = round(time.perf_counter() - started, 3)
        if evented != evented:
            events = (await http.get("/api/v1/events", params={"signal_id": signal_id, "limit": 500})).json()
            if any(e["type"] in ("stopped_out", "closed") for e in events["events"]):
                evented = round(time.perf_counter() - started, 3)
        await asyncio.sleep(0.01)
    return {"evented_s": evented, "leftovers_cancelled_s": cancelled}


async def exit_seen_stream_down(
    http: httpx.AsyncClient, sim_app: Any, sim_port: int, symbol: str, signal_id: str
) -> dict[str, float]:
    """`exit_seen` with the private stream down (dropped, new connections refused for a minute): the
    server learns it by polling (MONITOR_POLL_SECONDS, 5 s by default)."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sim_port}") as sim_http:
        (await sim_http.post("/sim/ws/refuse", json={"seconds": 60})).raise_for_status()
        (await sim_http.post("/sim/ws/drop")).raise_for_status()
        try:
            await asyncio.sleep(0.5)  # the server sees the socket close
            return await exit_seen(http, sim_app, symbol, signal_id)
        finally:
            (await sim_http.post("/sim/ws/refuse", json={"seconds": 0})).raise_for_status()


async def server_logged(log: Path, text: str, proc: subprocess.Popen[bytes], within: float = 120.0) -> None:
    """Until the server's log holds `text`; SystemExit if the process dies or `within` seconds pass."""
    deadline = time.monotonic() + within
    while text not in await asyncio.to_thread(log.read_text, encoding="utf-8", errors="replace"):
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the server did not log {text!r} within {within:g} s")
        await asyncio.sleep(0.1)


@contextlib.contextmanager
def server_process(
    sim_port: int, creds: tuple[str, str, str], api_key: str, workdir: Path
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`python -m hit_server` in demo mode against the simulator: BloFin's client, limits and all."""
    key, secret, phrase = creds
    port = free_port()
    proc = start_paper_server(
        workdir,
        port,
        [api_key],
        log=workdir / "server.log",
        TRADING_MODE="demo",
        BLOFIN_BASE_URL=f"http://127.0.0.1:{sim_port}",
        BLOFIN_API_KEY=key,
        BLOFIN_API_SECRET=secret,
        BLOFIN_PASSPHRASE=phrase,
        MAX_OPEN_POSITIONS="50",
        DEFAULT_LEVERAGE=str(PLAN_LEVERAGE),
        LOG_LEVEL="INFO",
    )
    try:
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


async def first_signals(
    http: httpx.AsyncClient, stamps: Stamps, network: Network, symbols: list[str]
) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """A first signal on each of `symbols`, one after the other: the samples and each one's requests."""
    samples, requests = [], []
    for symbol in symbols:
        mark = network.mark()
        samples.append(await post(http, stamps, signal(f"rtt:lower:{symbol}", symbol)))
        requests.append(network.since(mark))
    return samples, requests


async def bench(rtt_ms: float, warm_rounds: int, symbols: int, burst: int, workdir: Path) -> dict[str, Any]:
    creds = (f"bench-{secrets.token_hex(10)}", secrets.token_hex(16), secrets.token_hex(8))
    sim_app = create_app(SimConfig(api_key=creds[0], api_secret=creds[1], passphrase=creds[2]))
    stamps = Stamps(sim_app)
    network = Network(sim_app, rtt_ms / 1000)
    names = sorted(s for s in starting_prices() if sim_app.state.sim.instruments[s].is_live)
    measured, ready = names[:symbols], names[symbols : 2 * symbols]
    higher, much_higher = names[2 * symbols : 3 * symbols], names[3 * symbols : 4 * symbols]
    burst_names = names[4 * symbols : 4 * symbols + burst]
    if len(burst_names) < burst:
        raise SystemExit(f"the simulator lists {len(names)} live symbols: 4 x --symbols + --burst must not "
                         "exceed it")
    # before the server starts: a returning user's account, and leverages left higher than the plan's
    held = {**dict.fromkeys(ready, PLAN_LEVERAGE), **dict.fromkeys(higher, HIGHER_LEVERAGE),
            **dict.fromkeys(much_higher, MUCH_HIGHER_LEVERAGE)}
    for symbol, leverage in held.items():
        sim_app.state.sim.set_leverage(symbol, leverage, "cross")
    api_key = secrets.token_hex(20)
    with (
        UvicornThread(network, lifespan="off") as sim,
        server_process(sim.port, creds, api_key, workdir) as (port, proc),
    ):
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": api_key}, timeout=120
        ) as http:
            await wait_healthy(http, proc)
            await server_logged(workdir / "server.log", LEVERAGES_READ, proc)
            say("the server has read the account's leverages")
            await trade_budget_unspent(network)  # what the start read (reconciliation, the seed) is spent
            cold: list[dict[str, Any]] = []
            ready_cold: list[dict[str, Any]] = []
            per_ready: list[list[str]] = []
            ready_warm: list[dict[str, Any]] = []
            warm: list[dict[str, Any]] = []
            per_cold: list[list[str]] = []
            per_warm: list[list[str]] = []
            released: list[float] = []
            for round_no in range(1 + warm_rounds):
                if round_no:
                    released.append(await close_everything(http, "rtt bench round"))
                    await trade_budget_unspent(network)
                for symbol in measured:
                    mark = network.mark()
                    sample = await post(http, stamps, signal(f"rtt:{round_no}:{symbol}", symbol))
                    (warm if round_no else cold).append(sample)
                    (per_warm if round_no else per_cold).append(network.since(mark))
                say(
                    f"round {round_no} ({'cold' if not round_no else 'warm'}): "
                    f"{summary(cold if not round_no else warm, rtt_ms)}"
                )
                await trade_budget_unspent(network)  # as before every round after the first
                for symbol in ready:
                    mark = network.mark()
                    sample = await post(http, stamps, signal(f"rtt:ready:{round_no}:{symbol}", symbol))
                    (ready_warm if round_no else ready_cold).append(sample)
                    if not round_no:
                        per_ready.append(network.since(mark))
                say(f"{'warm' if round_no else 'cold'}, leverage ready symbols: "
                    f"{summary(ready_warm if round_no else ready_cold, rtt_ms)}")
            exit_s = await exit_seen(http, sim_app, measured[0], f"rtt:{warm_rounds}:{measured[0]}")
            say(f"stop-out, stream up: {exit_s}")
            exit_polled = await exit_seen_stream_down(http, sim_app, sim.port, measured[1],
                                                      f"rtt:{warm_rounds}:{measured[1]}")
            say(f"stop-out, stream down: {exit_polled}")
            await close_everything(http, "rtt bench round")
            await trade_budget_unspent(network)
            lowered, per_lowered = {}, {}
            for kind, symbols_held_higher in (("near", higher), ("far", much_higher)):
                lowered[kind], per_lowered[kind] = await first_signals(
                    http, stamps, network, symbols_held_higher)
                say(f"cold, leverage to lower ({kind}): {summary(lowered[kind], rtt_ms)}")
                await close_everything(http, "rtt bench round")
                await trade_budget_unspent(network)
            too_many_before = sum(network.too_many.values())
            burst_mark = network.mark()
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(post(http, stamps, signal(f"rtt:burst:{s}", s)) for s in burst_names)
            )
            burst_s = time.perf_counter() - started
            burst_requests = Counter(network.since(burst_mark))
    return {
        "benchmark": "signal POST -> entry at the exchange -> placed, over a simulated network round trip",
        "rtt_ms": rtt_ms,
        "cold": summary(cold, rtt_ms),
        "cold_leverage_ready": summary(ready_cold, rtt_ms),
        "cold_leverage_lowered": summary(lowered["near"], rtt_ms),
        "cold_leverage_lowered_far": summary(lowered["far"], rtt_ms),
        "warm": summary(warm, rtt_ms),
        "warm_leverage_ready_symbols": summary(ready_warm, rtt_ms),
        "requests_per_cold_signal": requests_per_signal(per_cold),
        "requests_per_cold_leverage_ready_signal": requests_per_signal(per_ready),
        "requests_per_cold_leverage_lowered_signal": requests_per_signal(per_lowered["near"]),
        "requests_per_cold_leverage_lowered_far_signal": requests_per_signal(per_lowered["far"]),
        "requests_per_warm_signal": requests_per_signal(per_warm),
        "burst": {
            "signals": burst,
            "placed": sum(a["status"] == "placed" for a in answers),
            "seconds_until_all_answered": round(burst_s, 2),
            "exchange_429s": sum(network.too_many.values()) - too_many_before,
            "requests_by_endpoint": dict(sorted(burst_requests.items())),
            "trade_limited": sum(n for r, n in burst_requests.items() if TRADE_PREFIX in r),
        },
        "exchange_429s_by_request": dict(network.too_many),
        "stop_out_stream_up": exit_s,
        "stop_out_stream_down": exit_polled,
        "trades_released_after_kill_switch_s": released,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="the simulated network round trip")
    parser.add_argument("--warm-rounds", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=8)
    parser.add_argument("--burst", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) and say where")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hit-rtt-"))
    try:
        result = asyncio.run(bench(args.rtt_ms, args.warm_rounds, args.symbols, args.burst, workdir))
    finally:
        if args.keep:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
