"""Every private-request authentication failure of the simulator, and that the right request passes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from hit_server.blofin_sim import SimConfig, create_app
from hit_server.blofin_sim.testing import make_auth, make_config, sim_http
from hit_server.exchange.blofin_auth import prehash, sign, wall_clock_ms

BALANCE = "/api/v1/account/balance"


@pytest.fixture
def config() -> SimConfig:
    return make_config()


@pytest.fixture
def app(config: SimConfig) -> FastAPI:
    return create_app(config)


@pytest.fixture
async def raw(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with sim_http(app) as client:
        yield client


def headers(
    config: SimConfig, method: str, target: str, body: str = "", *, ts: str | None = None,
    nonce: str = "n-1", secret: str | None = None, key: str | None = None, passphrase: str | None = None,
) -> dict[str, str]:
    stamp = ts if ts is not None else str(wall_clock_ms())
    signature = sign(secret or config.api_secret, prehash(target, method, stamp, nonce, body))
    return {
        "ACCESS-KEY": key if key is not None else config.api_key, "ACCESS-SIGN": signature,
        "ACCESS-TIMESTAMP": stamp, "ACCESS-NONCE": nonce,
        "ACCESS-PASSPHRASE": passphrase if passphrase is not None else config.passphrase,
        "Content-Type": "application/json",
    }


async def code_of(resp: httpx.Response) -> str:
    assert resp.status_code == 200
    return str(resp.json()["code"])


async def test_auth_accepts_signed_request(app: FastAPI, config: SimConfig) -> None:
    async with sim_http(app, make_auth(config)) as client:
        resp = await client.get(BALANCE)
    assert resp.json()["code"] == "0"
    assert resp.json()["data"]["details"][0]["equity"] == "100000"


async def test_auth_refuses_missing_headers_with_152401(raw: httpx.AsyncClient) -> None:
    assert await code_of(await raw.get(BALANCE)) == "152401"


async def test_auth_refuses_unknown_key_with_152401(raw: httpx.AsyncClient, config: SimConfig) -> None:
    resp = await raw.get(BALANCE, headers=headers(config, "GET", BALANCE, key="someone-else"))
    assert await code_of(resp) == "152401"


async def test_auth_refuses_wrong_passphrase_with_152408(raw: httpx.AsyncClient, config: SimConfig) -> None:
    resp = await raw.get(BALANCE, headers=headers(config, "GET", BALANCE, passphrase="wrong"))
    assert await code_of(resp) == "152408"


async def test_auth_refuses_wrong_secret_with_152409(raw: httpx.AsyncClient, config: SimConfig) -> None:
    resp = await raw.get(BALANCE, headers=headers(config, "GET", BALANCE, secret="not-the-secret"))
    assert await code_of(resp) == "152409"


async def test_auth_refuses_stale_timestamp_with_152405(raw: httpx.AsyncClient, config: SimConfig) -> None:
    stale = str(wall_clock_ms() - 61_000)
    resp = await raw.get(BALANCE, headers=headers(config, "GET", BALANCE, ts=stale))
    assert await code_of(resp) == "152405"


async def test_auth_refuses_future_timestamp_with_152405(raw: httpx.AsyncClient, config: SimConfig) -> None:
    ahead = str(wall_clock_ms() + 61_000)
    resp = await raw.get(BALANCE, headers=headers(config, "GET", BALANCE, ts=ahead))
    assert await code_of(resp) == "152405"


@pytest.mark.parametrize("stamp", ["1597026383", "2024-01-01T00:00:00Z", ""])
async def test_auth_refuses_non_millisecond_timestamp_with_152410(
    raw: httpx.AsyncClient, config: SimConfig, stamp: str
) -> None:
    resp = await raw.get(BALANCE, headers=headers(config, "GET", BALANCE, ts=stamp))
    assert await code_of(resp) == "152410"


async def test_auth_refuses_reused_nonce_with_152407(raw: httpx.AsyncClient, config: SimConfig) -> None:
    first = await raw.get(BALANCE, headers=headers(config, "GET", BALANCE, nonce="same"))
    second = await raw.get(BALANCE, headers=headers(config, "GET", BALANCE, nonce="same"))
    assert await code_of(first) == "0"
    assert await code_of(second) == "152407"


async def test_auth_verifies_raw_body_bytes(raw: httpx.AsyncClient, config: SimConfig) -> None:
    path = "/api/v1/account/set-leverage"
    signed = '{"instId":"BTC-USDT","leverage":"5","marginMode":"cross"}'
    sent = '{"instId": "BTC-USDT", "leverage": "5", "marginMode": "cross"}'
    bad = await raw.post(path, content=sent, headers=headers(config, "POST", path, signed, nonce="a"))
    good = await raw.post(path, content=sent, headers=headers(config, "POST", path, sent, nonce="b"))
    assert await code_of(bad) == "152409"
    assert await code_of(good) == "0"


async def test_auth_verifies_raw_query_as_sent(raw: httpx.AsyncClient, config: SimConfig) -> None:
    target = "/api/v1/account/batch-leverage-info?instId=BTC-USDT%2CETH-USDT&marginMode=cross"
    decoded = "/api/v1/account/batch-leverage-info?instId=BTC-USDT,ETH-USDT&marginMode=cross"
    bad = await raw.get(target, headers=headers(config, "GET", decoded, nonce="a"))
    good = await raw.get(target, headers=headers(config, "GET", target, nonce="b"))
    assert await code_of(bad) == "152409"
    assert await code_of(good) == "0"
    assert [row["instId"] for row in good.json()["data"]] == ["BTC-USDT", "ETH-USDT"]


async def test_auth_not_needed_on_public_endpoints(raw: httpx.AsyncClient) -> None:
    resp = await raw.get("/api/v1/public/time")
    assert resp.json()["code"] == "0"
    assert abs(int(resp.json()["data"]["ts"]) - wall_clock_ms()) < 5_000
