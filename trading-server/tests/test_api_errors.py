"""The HTTP contract's edges: auth on every route, the error shape for every failure, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hit_server.server import create_app
from hit_server.testing import TEST_API_KEY, RunningServer, paper_settings, running_server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(paper_settings(tmp_path, max_body_bytes=2048)) as running:
        yield running


def api_routes() -> list[tuple[str, str]]:
    app = create_app(paper_settings(Path("/nonexistent-never-used")))
    found = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/api/v1"):
            found.extend((method.upper(), path.replace("{signal_id}", "some-id")) for method in operations)
    return found


def assert_error(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return body


def test_api_routes_cover_the_contract() -> None:
    paths = {path for _, path in api_routes()}
    assert {
        "/api/v1/signals",
        "/api/v1/trades",
        "/api/v1/stats",
        "/api/v1/halt",
        "/api/v1/resume",
        "/api/v1/positions",
        "/api/v1/events",
        "/api/v1/signals/some-id",
    } <= paths


@pytest.mark.parametrize(("method", "path"), api_routes())
@pytest.mark.parametrize("key", [None, "", "wrong-key-wrong-key-wrong-key-wrong", TEST_API_KEY[:-1]])
async def test_api_refuses_missing_or_wrong_key_on_every_route(
    server: RunningServer, method: str, path: str, key: str | None
) -> None:
    headers = {} if key is None else {"X-API-Key": key}
    async with httpx.AsyncClient(transport=server.http._transport, base_url="http://t") as anonymous:
        reply = await anonymous.request(method, path, headers=headers, json={} if method == "POST" else None)

    assert_error(reply, 401, "unauthorized")


async def test_api_accepts_any_of_several_keys(tmp_path: Path) -> None:
    second = "second-source-key-0123456789abcdef-xyz"
    settings = paper_settings(tmp_path, api_keys=f"{TEST_API_KEY}, {second}")
    async with running_server(settings, api_key=second) as server:
        reply = await server.http.get("/api/v1/stats")

    assert reply.status_code == 200


async def test_api_health_needs_no_key_and_reveals_no_secret(server: RunningServer) -> None:
    async with httpx.AsyncClient(transport=server.http._transport, base_url="http://t") as anonymous:
        reply = await anonymous.get("/health")

    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok" and body["exchange"] == "reachable" and body["mode"] == "paper"
    assert body["max_signal_age_seconds"] == 300
    assert TEST_API_KEY not in reply.text


async def test_api_unknown_route_is_404_in_the_error_shape(server: RunningServer) -> None:
    assert_error(await server.http.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await server.http.get("/nothing"), 404, "not_found")


async def test_api_wrong_method_is_405_in_the_error_shape(server: RunningServer) -> None:
    assert_error(await server.http.delete("/api/v1/signals"), 405, "method_not_allowed")


async def test_api_body_over_the_limit_is_413(server: RunningServer) -> None:
    body = {"signal_id": "big", "raw_text": "x" * 3000}
    assert_error(await server.http.post("/api/v1/signals", json=body), 413, "body_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 1000

    streamed = await server.http.post("/api/v1/signals", content=chunks())
    assert_error(streamed, 413, "body_too_large")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"side": "long", "symbol": "BTC-USDT", "stop_loss": "1", "take_profits": ["2"]}, "signal_id"),
        (
            {
                "signal_id": "a b",
                "side": "long",
                "symbol": "BTC-USDT",
                "stop_loss": "1",
                "take_profits": ["2"],
            },
            "signal_id",
        ),
        (
            {"signal_id": "x", "side": "up", "symbol": "BTC-USDT", "stop_loss": "1", "take_profits": ["2"]},
            "side",
        ),
        (
            {"signal_id": "x", "side": "long", "symbol": "BTC-USDT", "stop_loss": "1", "take_profits": []},
            "take_profits",
        ),
        (
            {
                "signal_id": "x",
                "side": "long",
                "symbol": "BTC-USDT",
                "stop_loss": "abc",
                "take_profits": ["2"],
            },
            "stop_loss",
        ),
        (
            {
                "signal_id": "x",
                "side": "long",
                "symbol": "BTC-USDT",
                "stop_loss": "1",
                "take_profits": ["2"],
                "bogus": 1,
            },
            "bogus",
        ),
        (
            {"signal_id": "x", "side": "long", "symbol": "BTC-USDT", "stop_loss": "3", "take_profits": ["2"]},
            "take profit",
        ),
    ],
)
async def test_api_invalid_signal_is_422_naming_the_field(
    server: RunningServer, body: dict[str, Any], field: str
) -> None:
    reply = await server.http.post("/api/v1/signals", json=body)

    message = assert_error(reply, 422, "invalid_request")["error"]["message"]
    assert field in message


async def test_api_malformed_json_is_400_invalid_json(server: RunningServer) -> None:
    reply = await server.http.post(
        "/api/v1/signals", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert assert_error(reply, 400, "invalid_json")["error"]["message"] == (
        "The request body is not valid JSON (Expecting property name enclosed in double quotes "
        "at character 1)."
    )


async def test_api_rate_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path, rate_limit_per_minute=3)) as server:
        replies = [await server.http.get("/api/v1/stats") for _ in range(4)]

    assert [r.status_code for r in replies[:3]] == [200, 200, 200]
    assert_error(replies[3], 429, "rate_limited")
    assert int(replies[3].headers["Retry-After"]) >= 1


async def test_api_not_ready_is_503_before_the_lifespan(tmp_path: Path) -> None:
    app = create_app(paper_settings(tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers={"X-API-Key": TEST_API_KEY}
    ) as http:
        reply = await http.get("/api/v1/stats")

    assert_error(reply, 503, "not_ready")


async def test_api_docs_and_openapi_are_served(server: RunningServer) -> None:
    assert (await server.http.get("/docs")).status_code == 200
    schema = (await server.http.get("/openapi.json")).json()
    assert "/api/v1/signals" in schema["paths"]


async def test_api_journal_that_cannot_be_written_refuses_signals_with_503(tmp_path: Path) -> None:
    async with running_server(paper_settings(tmp_path)):
        pass  # creates the journal's tables
    read_only = f"sqlite:///file:{tmp_path / 'journal.db'}?mode=ro&uri=true"
    async with running_server(paper_settings(tmp_path, database_url=read_only)) as server:
        reply = await server.http.post(
            "/api/v1/signals",
            json={
                "signal_id": "ro",
                "side": "long",
                "symbol": "BTC-USDT",
                "stop_loss": "58000",
                "take_profits": ["62000"],
            },
        )
        orders = dict(server.sim.orders_by_client_id)

    assert_error(reply, 503, "journal_unavailable")
    assert orders == {}
