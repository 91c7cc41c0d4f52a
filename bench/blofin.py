"""BloFin client costs: request signing, and orders per second against the simulator on loopback.

    .venv/bin/python bench/blofin.py [--orders 300] [--concurrency 1] [--sign-iterations 20000]

1. Signing: `BloFinAuth.headers_for` over a place-order body, `--sign-iterations` times (after a
   warm-up); reports the mean and p99 in microseconds per request.
2. Orders: starts the simulator (`python -m hit_server.blofin_sim`, rate limits off) on a free
   127.0.0.1 port in its own process, then places `--orders` market orders with attached TP/SL through
   `BloFinClient` over real HTTP (`--concurrency` at a time), then closes the position. Reports orders/s,
   per-order latency p50/p99 in ms, and how many orders the simulator holds (must equal `--orders` + 1
   close). The client's own rate limiter is disabled: this measures the client and the wire, not
   BloFin's 30 orders / 10 s limit.

Prints ONE JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from hit_server.exchange.blofin_auth import BloFinAuth, Credentials
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_models import OrderRequest
from hit_server.exchange.ratelimit import RateLimiter
from hit_server.testing import free_port

KEY, SECRET, PASSPHRASE = "bench-key-0123456789abcdef012345", "bench-secret", "bench-passphrase"
INST = "BTC-USDT"
ORDER_BODY = (
    '{"instId":"BTC-USDT","marginMode":"cross","positionSide":"net","side":"buy","orderType":"market",'
    '"size":"1","reduceOnly":"false","clientOrderId":"bench0000000001","tpTriggerPrice":"66000",'
    '"tpOrderPrice":"-1","slTriggerPrice":"57000","slOrderPrice":"-1"}'
)


def credentials() -> Credentials:
    return Credentials(KEY, SecretStr(SECRET), SecretStr(PASSPHRASE))


def bench_signing(iterations: int) -> dict[str, float]:
    auth = BloFinAuth(credentials())
    for _ in range(1000):
        auth.headers_for("POST", "/api/v1/trade/order", ORDER_BODY)
    samples: list[int] = []
    clock = time.perf_counter_ns
    started = clock()
    for _ in range(iterations):
        t0 = clock()
        auth.headers_for("POST", "/api/v1/trade/order", ORDER_BODY)
        samples.append(clock() - t0)
    total = clock() - started
    samples.sort()
    return {
        "sign_us_per_request": round(total / iterations / 1000, 2),
        "sign_p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 2),
    }


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "hit_server.blofin_sim", "--host", "127.0.0.1", "--port", str(port),
        "--api-key", KEY, "--api-secret", SECRET, "--passphrase", PASSPHRASE,
        "--rate-limit-per-min", "0", "--trade-limit-per-10s", "0",
    ]
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module, fixed arguments
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ}
    )


async def wait_until_up(base_url: str, deadline_s: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient(base_url=base_url) as http:
        while True:
            try:
                if (await http.get("/api/v1/public/time")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the simulator did not come up on 127.0.0.1")
            await asyncio.sleep(0.1)


async def bench_orders(base_url: str, orders: int, concurrency: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as http:
        client = BloFinClient(http, BloFinAuth(credentials()), rate_limiter=RateLimiter.unlimited())
        await client.instruments()
        latencies: list[float] = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(orders):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                req = OrderRequest(
                    inst_id=INST, side="buy", order_type="market", size=Decimal(1), margin_mode="cross",
                    client_order_id=f"bench{i:010d}", tp_trigger_price=Decimal(90000),
                    sl_trigger_price=Decimal(30000),
                )
                t0 = time.perf_counter()
                await client.place_order(req)
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        await client.close_position(INST, "cross", client_order_id="benchclose")
        left_open = await client.positions(INST)
        state = (await http.get("/sim/state")).json()["data"]
    latencies.sort()
    return {
        "orders": orders,
        "concurrency": concurrency,
        "orders_per_s": round(orders / elapsed, 1),
        "order_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "order_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "orders_at_simulator": len(state["orders"]),
        "position_closed": not left_open,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--sign-iterations", type=int, default=20000)
    args = ap.parse_args()
    result: dict[str, Any] = bench_signing(args.sign_iterations)
    port = free_port()
    process = start_simulator(port)
    try:
        base_url = f"http://127.0.0.1:{port}"
        asyncio.run(wait_until_up(base_url))
        result.update(asyncio.run(bench_orders(base_url, args.orders, args.concurrency)))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
