"""Helpers for tests and demos that talk to the simulator in-process (httpx.ASGITransport)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from hit_server.exchange.blofin_auth import BloFinAuth, Credentials

from .config import SimConfig
from .models import SimEvent

TEST_KEY = "sim-test-key-0123456789abcdef0123"
TEST_SECRET = "sim-test-secret"  # noqa: S105 - a fixed test credential
TEST_PASSPHRASE = "sim-test-passphrase"  # noqa: S105 - a fixed test credential
BASE_URL = "http://blofin.sim"


def make_config(**overrides: Any) -> SimConfig:
    """A config with the test credentials and rate limits off unless overridden."""
    values: dict[str, Any] = {
        "api_key": TEST_KEY, "api_secret": TEST_SECRET, "passphrase": TEST_PASSPHRASE,
        "rate_limit_per_min": 0, "trade_limit_per_10s": 0,
    }
    values.update(overrides)
    return SimConfig(**values)


def make_auth(config: SimConfig, **overrides: Any) -> BloFinAuth:
    creds = Credentials(config.api_key, SecretStr(config.api_secret), SecretStr(config.passphrase))
    return BloFinAuth(creds, **overrides)


@asynccontextmanager
async def sim_http(app: FastAPI, auth: httpx.Auth | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client bound to `app` in-process, signing with `auth` when given."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=auth) as client:
        yield client


class OrderStamps:
    """When each order was created at the simulator, for latency benchmarks: clientOrderId ->
    `time.perf_counter()` (the clock the caller stamps its own sends with, in the same process)."""

    def __init__(self, sim_app: FastAPI) -> None:
        self.created: dict[str, float] = {}
        sim_app.state.sim.subscribe(self._on_event)

    def _on_event(self, event: SimEvent) -> None:
        if event.channel == "orders":
            cid = str(event.data.get("clientOrderId") or "")
            if cid and cid not in self.created:
                self.created[cid] = time.perf_counter()
