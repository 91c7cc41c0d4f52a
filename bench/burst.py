"""Trading server under a burst of signals from 4 sources at once: throughput, latency, duplicates.

    .venv/bin/python bench/burst.py [--signals 1000] [--sources 4] [--wave 16]

Starts `python -m hit_server` as a subprocess (paper mode: the in-process simulator, no client-side
BloFin limit; a throwaway SQLite journal; uvicorn on a free 127.0.0.1 port) with one API key per
source. Each source is its own client task with its own key and connection pool, posting its share of
the signals back to back (a market long with a stop and three targets; distinct signal ids).

The signals go in waves of `--wave` (default 16: one per symbol of the simulator, so every signal can be
placed; one trade per symbol is a risk rule): a wave is split round-robin between the sources, which
post at the same time; between waves, untimed, every signal of the wave is posted again (a retry must
replay 200 with the identical body), the positions are checked, and the kill switch closes them (halt
with close_positions, then resume). `--wave 1000` sends everything as one burst, where the signals after
the first on a symbol are refused by the one-trade-per-symbol rule.

duplicate_entries counts: a retry not replayed identically, a symbol with more than one placed signal in
a wave, a position whose size is not its one signal's size. It must be 0.
Prints ONE JSON object; progress goes to stderr.
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
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from hit_server.blofin_sim.catalog import FIRST_SYMBOLS, starting_prices
from hit_server.testing import free_port, start_paper_server, wait_healthy


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def signal(n: int, symbol: str) -> dict[str, Any]:
    price = starting_prices()[symbol]
    return {"signal_id": f"burst:{n}:{symbol}", "side": "long", "symbol": symbol, "entries": [],
            "stop_loss": str(price * Decimal("0.97")),
            "take_profits": [str(price * Decimal(x)) for x in ("1.01", "1.02", "1.03")]}


async def post_all(http: httpx.AsyncClient, bodies: list[dict[str, Any]], latencies: list[float],
                   answers: dict[str, dict[str, Any]]) -> None:
    """One source: its signals back to back."""
    for body in bodies:
        started = time.perf_counter()
        reply = await http.post("/api/v1/signals", json=body)
        latencies.append((time.perf_counter() - started) * 1000)
        if reply.status_code == 201:
            answers[body["signal_id"]] = reply.json()
        else:
            say(f"{body['signal_id']}: HTTP {reply.status_code} {reply.text[:200]}")


async def check_wave(http: httpx.AsyncClient, wave: list[dict[str, Any]], answers: dict[str, Any]) -> int:
    """Untimed: retries replay, one placed signal per symbol, positions of exactly that size."""
    duplicates = 0
    replays = await asyncio.gather(*(http.post("/api/v1/signals", json=body) for body in wave))
    for body, reply in zip(wave, replays, strict=True):
        if reply.status_code != 200 or reply.json() != answers.get(body["signal_id"]):
            duplicates += 1
    placed = [a for a in answers.values() if a["status"] == "placed"]
    duplicates += sum(n - 1 for n in Counter(a["symbol"] for a in placed).values() if n > 1)
    positions = (await http.get("/api/v1/positions")).json()["positions"]
    held = {p["instId"]: Decimal(p["positions"]) for p in positions}
    duplicates += sum(1 for a in placed if held.get(a["symbol"]) != Decimal(a["size"]))
    close = {"reason": "burst wave", "cancel_orders": True, "close_positions": True}
    await http.post("/api/v1/halt", json=close)
    await http.post("/api/v1/resume")
    return duplicates


async def bench(total: int, sources: int, wave_size: int) -> dict[str, Any]:
    keys = [secrets.token_urlsafe(32) for _ in range(sources)]
    symbols = sorted(FIRST_SYMBOLS)  # the symbols the figures were first measured on
    bodies = [signal(n, symbols[n % len(symbols)]) for n in range(total)]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hit-burst-") as tmp:
        proc = start_paper_server(Path(tmp), port, keys, log=Path(tmp) / "server.log")
        clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key},
                                     timeout=60) for key in keys]
        try:
            await wait_healthy(clients[0], proc)
            warm: dict[str, Any] = {}
            await post_all(clients[0], [signal(-1, s) for s in symbols], [], warm)  # not counted
            await check_wave(clients[0], [signal(-1, s) for s in symbols], warm)
            latencies: list[float] = []
            elapsed, duplicates, statuses = 0.0, 0, Counter[str]()
            for first in range(0, total, wave_size):
                wave = bodies[first:first + wave_size]
                answers: dict[str, dict[str, Any]] = {}
                started = time.perf_counter()
                await asyncio.gather(*(post_all(clients[i], wave[i::sources], latencies, answers)
                                       for i in range(sources)))
                elapsed += time.perf_counter() - started
                statuses.update(a["status"] for a in answers.values())
                duplicates += await check_wave(clients[0], wave, answers)
                if (first // wave_size) % 10 == 9:
                    say(f"{first + len(wave)}/{total} signals, {len(latencies) / elapsed:.0f}/s so far")
        finally:
            for client in clients:
                await client.aclose()
            proc.terminate()
            proc.wait(timeout=15)
    ordered = sorted(latencies)
    return {
        "benchmark": "trading server: burst of signals from concurrent sources, paper mode over HTTP",
        "signals": total,
        "sources": sources,
        "wave": wave_size,
        "answered": sum(statuses.values()),
        "placed": statuses["placed"],
        "rejected": statuses["rejected"],
        "failed": statuses["failed"],
        "signals_per_s": round(len(ordered) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
        "duplicate_entries": duplicates,
        "cpu_count": os.cpu_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--signals", type=int, default=1000)
    parser.add_argument("--sources", type=int, default=4, help="concurrent sources, one API key each")
    parser.add_argument("--wave", type=int, default=16, help="signals between two position closes")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(bench(args.signals, args.sources, args.wave))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
