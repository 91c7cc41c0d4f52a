"""The simulator over a real loopback socket: uvicorn in-process, and the standalone command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn

from hit_server.blofin_sim import create_app
from hit_server.blofin_sim.testing import make_auth, make_config
from hit_server.testing import free_port


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, object]]:
    app = create_app(make_config())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    await asyncio.wait_for(task, 10)


async def test_server_real_port_orders_and_drop_reply(served: tuple[str, object]) -> None:
    base, app = served
    auth = make_auth(app.state.sim.config)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=5) as client:
        balance = await client.get("/api/v1/account/balance")
        await client.post("/sim/faults", json={"kind": "drop_reply", "path": "/api/v1/trade/order"})
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/api/v1/trade/order", json={
                "instId": "ETH-USDT", "marginMode": "cross", "side": "buy", "orderType": "market",
                "size": "1", "clientOrderId": "drop1"})
        detail = await client.get("/api/v1/trade/order-detail?instId=ETH-USDT&clientOrderId=drop1")
        after = await client.get("/api/v1/account/positions?instId=ETH-USDT")
    assert balance.json()["code"] == "0"
    assert detail.json()["data"]["state"] == "filled"
    assert after.json()["data"][0]["positions"] == "1"


async def test_server_real_port_auth_failure_is_http_200(served: tuple[str, object]) -> None:
    base, _ = served
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        resp = await client.get("/api/v1/account/positions", headers={"ACCESS-KEY": "nobody"})
    assert (resp.status_code, resp.json()["code"]) == (200, "152401")


def test_server_standalone_command_prints_settings_with_secret_masked() -> None:
    port = free_port()
    secret = "very-secret-value-123"
    cmd = [sys.executable, "-m", "hit_server.blofin_sim", "--host", "127.0.0.1", "--port", str(port),
           "--api-key", "K-standalone-key-42", "--api-secret", secret, "--passphrase", "P-pass"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,  # noqa: S603
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        body = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and body is None:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/api/v1/public/time", timeout=1).json()
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert body is not None and body["code"] == "0"
    assert "api-secret=***" in output
    assert secret not in output
    assert "P-pass" not in output
