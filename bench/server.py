"""Trading server throughput and latency: a burst of signals over HTTP to a paper-mode server.

    .venv/bin/python bench/server.py [--rounds 20] [--concurrency 4 | --rate 200]

Starts `python -m hit_server` in its own process (paper mode, in-process simulator, a throwaway SQLite
journal, uvicorn on a free 127.0.0.1 port). Each round posts one market signal with a stop and three
targets on each of the simulator's 16 live symbols (distinct signal ids; one trade per symbol is a risk
rule), `--concurrency` requests in flight (closed loop: the burst as fast as the server answers), or
with `--rate` one signal every 1/RATE seconds (open loop: the latency at that offered load, each POST
timed from the moment it was due), and times each POST. Then, untimed: every signal of the
round is posted again (a retry must replay 200 with the identical body), the positions are checked
(each symbol must hold exactly the one signal's size: a duplicate entry would double it), and the
kill switch closes the positions (halt with close_positions, then resume) for the next round, and
the next round waits until the position monitor has recorded every closed trade (GET /api/v1/stats
closed_trades), so closing one round's trades (P&L reads, cancels: ~10 ms CPU per trade) is not
counted in the next round's time; `settle_timeouts` counts rounds where that wait gave up (10 s).
RATE_LIMIT_PER_MINUTE is raised for the benchmark (the per-key limit is not what is measured).

Prints ONE JSON object: signals_per_s, p50_ms, p99_ms, duplicate_entries (must be 0), and context,
including server_cpu_ms_per_signal: the server process's CPU time (user + system, from /proc, Linux
only) during the timed rounds per signal, which shows the server's own cost even when the machine is
busy with other work (the clock ticks are 10 ms, so it is an average over all rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from hit_server.blofin_sim.catalog import FIRST_SYMBOLS, starting_prices
from hit_server.testing import free_port, start_paper_server, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
SETTLE_S = 10.0


def signals_for_round(n: int) -> list[dict[str, Any]]:
    out = []
    prices = starting_prices()
    for symbol in sorted(FIRST_SYMBOLS):  # the symbols the figures were first measured on
        price = prices[symbol]
        out.append(
            {
                "signal_id": f"bench:{n}:{symbol}",
                "side": "long",
                "symbol": symbol,
                "entries": [],
                "stop_loss": str(price * Decimal("0.97")),
                "take_profits": [str(price * Decimal(x)) for x in ("1.01", "1.02", "1.03")],
            }
        )
    return out


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far; None where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_round(
    http: httpx.AsyncClient,
    signals: list[dict[str, Any]],
    concurrency: int,
    latencies: list[float],
    rate: float | None = None,
) -> tuple[float, int, dict[str, dict[str, Any]]]:
    """Post the round's signals, `concurrency` in flight (closed loop); with `rate`, one every 1/rate
    seconds whatever is in flight (open loop), each timed from the moment it was due, so a queue
    building up in the server shows in the latency instead of slowing the sender down."""
    gate = asyncio.Semaphore(len(signals) if rate else concurrency)
    answers: dict[str, dict[str, Any]] = {}
    began = time.perf_counter()

    async def post(body: dict[str, Any], due: float | None) -> None:
        if due is not None:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        async with gate:
            start = due if due is not None else time.perf_counter()
            reply = await http.post("/api/v1/signals", json=body)
            latencies.append((time.perf_counter() - start) * 1000)
            if reply.status_code == 201:
                answers[body["signal_id"]] = reply.json()
                if os.environ.get("BENCH_DEBUG"):
                    print(reply.json()["status"], reply.json()["reason"], file=sys.stderr)
            elif os.environ.get("BENCH_DEBUG"):
                print(reply.status_code, reply.text, file=sys.stderr)

    await asyncio.gather(
        *(post(body, began + n / rate if rate else None) for n, body in enumerate(signals))
    )
    return time.perf_counter() - began, len(answers), answers


async def check_round(http: httpx.AsyncClient, signals: list[dict[str, Any]], answers: dict[str, Any]) -> int:
    """Retries must replay; each symbol must hold exactly its one signal's size. Returns duplicates."""
    duplicates = 0
    replays = await asyncio.gather(*(http.post("/api/v1/signals", json=body) for body in signals))
    for body, reply in zip(signals, replays, strict=True):
        if reply.status_code != 200 or reply.json() != answers.get(body["signal_id"]):
            duplicates += 1
    held = {
        p["instId"]: Decimal(p["positions"])
        for p in (await http.get("/api/v1/positions")).json()["positions"]
    }
    for answer in answers.values():
        if answer["status"] == "placed" and held.get(answer["symbol"]) != Decimal(answer["size"]):
            duplicates += 1
    await http.post("/api/v1/halt", json={"reason": "bench round", "close_positions": True})
    await http.post("/api/v1/resume")
    return duplicates


async def settle(http: httpx.AsyncClient, closed: int) -> bool:
    """Wait (untimed) until the monitor has closed `closed` trades in all; False if it gave up."""
    deadline = time.monotonic() + SETTLE_S
    while time.monotonic() < deadline:
        if (await http.get("/api/v1/stats")).json()["closed_trades"] >= closed:
            return True
        await asyncio.sleep(0.05)
    return False


async def bench(rounds: int, concurrency: int, rate: float | None = None) -> dict[str, Any]:
    key = secrets.token_urlsafe(32)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hit-bench-") as tmp:
        proc = start_paper_server(Path(tmp), port, [key], log=Path(tmp) / "server.log")
        try:
            limits = httpx.Limits(max_connections=32 if rate else concurrency * 4)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=30, limits=limits
            ) as http:
                await wait_healthy(http, proc)
                *_, warm = await run_round(http, signals_for_round(-1), concurrency, [], rate)  # not counted
                await check_round(http, signals_for_round(-1), warm)
                closed = sum(1 for a in warm.values() if a["status"] == "placed")
                unsettled = 0 if await settle(http, closed) else 1
                latencies: list[float] = []
                elapsed, placed, duplicates, sent = 0.0, 0, 0, 0
                cpu: float | None = 0.0
                for n in range(rounds):
                    signals = signals_for_round(n)
                    cpu_before = cpu_seconds(proc.pid)
                    seconds, _created, answers = await run_round(http, signals, concurrency, latencies, rate)
                    cpu_after = cpu_seconds(proc.pid)
                    if cpu is not None and cpu_before is not None and cpu_after is not None:
                        cpu += cpu_after - cpu_before
                    else:
                        cpu = None
                    elapsed += seconds
                    sent += len(signals)
                    placed_now = sum(1 for a in answers.values() if a["status"] == "placed")
                    placed += placed_now
                    duplicates += await check_round(http, signals, answers)
                    closed += placed_now
                    unsettled += 0 if await settle(http, closed) else 1
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    ordered = sorted(latencies)
    return {
        "benchmark": "trading server: market signal with a stop and 3 targets, paper mode over HTTP",
        "signals": sent,
        "placed": placed,
        "concurrency": None if rate else concurrency,
        "offered_signals_per_s": rate,
        "signals_per_s": round(sent / elapsed, 1),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "duplicate_entries": duplicates,
        "server_cpu_ms_per_signal": None if cpu is None else round(cpu * 1000 / sent, 2),
        "settle_timeouts": unsettled,
        "cpu_count": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--rate", type=float, default=None,
        help="open loop: post one signal every 1/RATE s instead of keeping --concurrency in flight",
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.rounds, args.concurrency, args.rate))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
