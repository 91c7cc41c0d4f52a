"""The exchange account checked at start, in /health and before a signal: refused credentials
(defect 9) and an account in hedge mode are distinct, clear errors, never "unreachable", and never
echo a secret."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from hit_server.blofin_sim.auth import AuthChecker
from hit_server.blofin_sim.config import SimConfig
from hit_server.exchange.paper import build_simulator, generated_credentials
from hit_server.testing import RunningServer, paper_settings, running_server, signal_body

WRONG_SECRET = "a-wrong-secret-0123456789abcdef-never-shown"


def simulator(tmp_path: Path) -> FastAPI:
    return build_simulator(paper_settings(tmp_path), generated_credentials())


def expect_other_secret(sim_app: FastAPI) -> SimConfig:
    """Make the simulator check signatures against another secret: the server's key and passphrase
    are right, its secret is not (BloFin answers 152409). The server's own config stays untouched."""
    state = sim_app.state.sim_state
    other = SimConfig(api_key=state.config.api_key, api_secret=WRONG_SECRET,
                      passphrase=state.config.passphrase)
    state.auth = AuthChecker(other, state.sim.clock_ms)
    config: SimConfig = state.config
    return config


def all_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The log of the server's start (in the fixture) and of the test itself."""
    return caplog.get_records("setup") + caplog.records


@pytest.fixture
async def refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[tuple[RunningServer, SimConfig]]:
    caplog.set_level(logging.INFO)
    sim_app = simulator(tmp_path)
    config = expect_other_secret(sim_app)
    async with running_server(paper_settings(tmp_path), sim_app=sim_app) as server:
        yield server, config


async def test_server_refused_credentials_show_in_health(refused) -> None:
    server, _ = refused
    health = (await server.http.get("/health")).json()
    assert (health["status"], health["exchange"]) == ("degraded", "auth_failed")


async def test_server_refused_credentials_answer_signals_with_a_distinct_code(refused) -> None:
    server, config = refused
    reply = await server.http.post("/api/v1/signals", json=signal_body("d9-auth-1"))
    error = reply.json()["error"]
    assert (reply.status_code, error["code"]) == (503, "exchange_auth_failed")
    for name in ("BLOFIN_API_KEY", "BLOFIN_API_SECRET", "BLOFIN_PASSPHRASE"):
        assert name in error["message"]
    for secret in (config.api_key, config.api_secret, config.passphrase, WRONG_SECRET):
        assert secret not in reply.text
    assert server.sim.orders == {}


async def test_server_refused_credentials_logged_clearly_at_start(refused, caplog) -> None:
    _, config = refused
    errors = [r.getMessage() for r in all_records(caplog) if r.levelno >= logging.ERROR]
    assert any("BLOFIN_API_SECRET" in text and "152409" in text for text in errors), errors
    for text in (r.getMessage() for r in all_records(caplog)):
        for secret in (config.api_secret, config.passphrase, WRONG_SECRET):
            assert secret not in text


async def test_server_health_reachable_with_good_credentials(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path)) as server:
        health = (await server.http.get("/health")).json()
    assert (health["status"], health["exchange"]) == ("ok", "reachable")


# -- hedge mode ---------------------------------------------------------------------------------------


@pytest.fixture
async def hedged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> AsyncIterator[RunningServer]:
    caplog.set_level(logging.INFO)
    sim_app = simulator(tmp_path)
    sim_app.state.sim.force_position_mode("long_short_mode")
    async with running_server(paper_settings(tmp_path), sim_app=sim_app) as server:
        yield server


async def test_server_hedge_mode_refuses_signals_clearly(hedged: RunningServer, caplog) -> None:
    reply = await hedged.http.post("/api/v1/signals", json=signal_body("hedge-1"))
    health = (await hedged.http.get("/health")).json()
    error = reply.json()["error"]
    errors = [r.getMessage() for r in all_records(caplog) if r.levelno >= logging.ERROR]
    assert (reply.status_code, error["code"]) == (503, "exchange_hedge_mode")
    assert "one-way" in error["message"]
    assert (health["status"], health["exchange"]) == ("degraded", "hedge_mode")
    assert hedged.sim.orders == {}
    assert any("long_short_mode" in text for text in errors), errors


async def test_server_hedge_mode_switched_off_lets_signals_through(hedged: RunningServer) -> None:
    refused = await hedged.http.post("/api/v1/signals", json=signal_body("hedge-2"))
    hedged.sim.force_position_mode("net_mode")
    placed = await hedged.http.post("/api/v1/signals", json=signal_body("hedge-3"))
    assert refused.status_code == 503
    assert (placed.status_code, placed.json()["status"]) == (201, "placed")
    assert (await hedged.http.get("/health")).json()["exchange"] == "reachable"
