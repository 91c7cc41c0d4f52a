"""Rule 5: no secret in any log line or response, whatever happens (checked with known secrets)."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from hit_server.blofin_sim import SimConfig, create_app
from hit_server.testing import paper_settings, running_server

API_KEY = "server-api-key-KNOWN-SECRET-0123456789"
BLOFIN_KEY = "blofin-key-KNOWN-SECRET-abcdef"
BLOFIN_SECRET = "blofin-secret-KNOWN-SECRET-fedcba"
BLOFIN_PASSPHRASE = "blofin-passphrase-KNOWN-SECRET"
SECRETS = (API_KEY, BLOFIN_KEY, BLOFIN_SECRET, BLOFIN_PASSPHRASE)


async def test_server_never_shows_a_secret(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    exchange = create_app(
        SimConfig(
            api_key=BLOFIN_KEY,
            api_secret=BLOFIN_SECRET,
            passphrase=BLOFIN_PASSPHRASE,
            balance=Decimal(10000),
            rate_limit_per_min=0,
            trade_limit_per_10s=0,
        )
    )
    settings = paper_settings(tmp_path, api_keys=API_KEY, log_level="DEBUG")
    bodies: list[str] = [repr(settings)]
    signal = {
        "signal_id": "s1",
        "side": "long",
        "symbol": "BTC-USDT",
        "stop_loss": "58000",
        "take_profits": ["62000", "64000"],
    }
    async with running_server(settings, sim_app=exchange) as server:
        await server.fault(kind="drop_reply", count=1, path="/api/v1/trade/order")
        replies = [
            await server.http.post("/api/v1/signals", json=signal),
            await server.http.post("/api/v1/signals", json=signal),
            await server.http.post("/api/v1/signals", json={**signal, "stop_loss": "1"}),
            await server.http.post(
                "/api/v1/signals", json={**signal, "signal_id": "s2", "symbol": "NOPE-USDT"}
            ),
            await server.http.post(
                "/api/v1/signals",
                json={
                    **signal,
                    "signal_id": "s3",
                    "symbol": "ETH-USDT",
                    "stop_loss": "2900",
                    "take_profits": ["3100"],
                },
            ),
            await server.http.get("/api/v1/stats"),
            await server.http.get("/api/v1/positions"),
            await server.http.get("/api/v1/events"),
            await server.http.get("/api/v1/trades"),
            await server.http.get("/health"),
            await server.http.get("/openapi.json"),
            await server.http.post("/api/v1/halt", json={"reason": "test", "close_positions": True}),
            await server.http.get("/api/v1/stats", headers={"X-API-Key": API_KEY[:-1]}),
        ]
        await server.fault(kind="http_5xx", count=100)
        replies.append(await server.http.get("/health"))
        replies.append(await server.http.get("/api/v1/positions"))
        bodies.extend(r.text for r in replies)
        bodies.extend(str(dict(r.headers)) for r in replies)

    assert replies[0].status_code == 201 and replies[-1].status_code == 503  # the scenario really ran
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    logged = "\n".join(formatter.format(record) for record in caplog.records)  # tracebacks included
    assert len(caplog.records) > 10
    for secret in SECRETS:
        assert secret not in logged, f"a secret leaked into the logs: {secret[:8]}..."
        for body in bodies:
            assert secret not in body, f"a secret leaked into a response: {secret[:8]}..."
