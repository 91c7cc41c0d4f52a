"""The server over a real loopback port (uvicorn on 127.0.0.1), as the bot and curl reach it."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from hit_server.__main__ import freeze_startup_objects
from hit_server.server import create_app
from hit_server.testing import TEST_API_KEY, free_port, paper_settings
from hit_server.testing import signal_body as signal
from hit_server.trading import ids


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, FastAPI]]:
    app = create_app(paper_settings(tmp_path))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def test_uvicorn_server_places_replays_and_guards(served: tuple[str, FastAPI]) -> None:
    url, app = served
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": TEST_API_KEY}, timeout=10) as http:
        health = await http.get("/health", headers={"X-API-Key": ""})
        first = await http.post("/api/v1/signals", json=signal("real-1"))
        burst = await asyncio.gather(
            *(
                http.post(
                    "/api/v1/signals",
                    json=signal(
                        "real-2", side="short", symbol="ETH-USDT", stop_loss="3100", take_profits=["2900"]
                    ),
                )
                for _ in range(20)
            )
        )
        again = await http.post("/api/v1/signals", json=signal("real-1"))
        anonymous = await http.get("/api/v1/stats", headers={"X-API-Key": "nope"})
        too_big = await http.post(
            "/api/v1/signals", content=b"x" * 100_000, headers={"Content-Type": "application/json"}
        )

    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert first.status_code == 201 and first.json()["status"] == "placed"
    assert sorted(r.status_code for r in burst) == [200] * 19 + [201]
    assert again.status_code == 200 and again.json() == first.json()
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    assert too_big.status_code == 413
    sim = app.state.sim_app.state.sim
    for signal_id in ("real-1", "real-2"):
        prefix = ids.signal_prefix(signal_id) + "e"
        assert len([c for c in sim.orders_by_client_id if c.startswith(prefix)]) == 1


async def test_server_started_hooks_run_once_the_lifespan_is_up(tmp_path: Path) -> None:
    app = create_app(paper_settings(tmp_path))
    seen: list[bool] = []
    app.state.on_started.append(lambda: seen.append(app.state.service is not None))
    async with app.router.lifespan_context(app):
        assert seen == [True]  # called once, with the service already in place
    assert seen == [True]


def test_server_program_freezes_what_is_alive_at_start() -> None:
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 1000  # the modules and objects loaded so far
    finally:
        gc.unfreeze()
