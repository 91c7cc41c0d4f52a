"""PooledHttp, a fleet worker's wire to BloFin: what leaves is what was signed, from the egress address
asked for, over a bounded pool, and every failure reads as `BloFinRest` needs it (not sent / unknown)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from hit_server.blofin_sim.faults import Fault
from hit_server.blofin_sim.loopback import serve_loopback, serve_sim
from hit_server.blofin_sim.testing import make_auth, make_config
from hit_server.exchange.blofin_auth import BloFinAuth, Credentials
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import AuthenticationError, ExchangeUnavailable
from hit_server.exchange.blofin_models import OrderRequest
from hit_server.exchange.blofin_rest import RetryPolicy
from hit_server.exchange.pooled_http import PooledHttp
from hit_server.exchange.ratelimit import RateLimiter


async def echo(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering with what it received and from where."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    seen = {
        "method": scope["method"], "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(), "body": body.decode(),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]}, "client": list(scope["client"]),
    }
    await asyncio.sleep(0.01)  # long enough for concurrent requests to overlap
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"x-Thing", b"1")]})
    await send({"type": "http.response.body", "body": json.dumps(seen).encode()})


async def test_signed_requests_pass_the_simulators_signature_check_and_a_wrong_secret_does_not() -> None:
    config = make_config()
    async with serve_sim(config) as served:
        wire = PooledHttp(served.http_url, timeout=5, connections=4)
        try:
            client = BloFinClient(wire, served.auth, rate_limiter=RateLimiter.unlimited())
            assert (await client.balance()).equity > 0
            assert await client.positions("BTC-USDT") == []  # a signed query string
            key = served.auth.credentials
            wrong = BloFinAuth(Credentials(key.api_key, SecretStr("not-the-secret"), key.passphrase))
            with pytest.raises(AuthenticationError):
                await BloFinClient(wire, wrong, rate_limiter=RateLimiter.unlimited()).balance()
        finally:
            await wire.aclose()


async def test_the_request_leaves_as_signed_from_the_egress_address() -> None:
    async with serve_loopback(echo) as loopback:
        wire = PooledHttp(loopback.http_url, timeout=5, connections=2, local_address="127.0.0.2")
        signed: list[tuple[str, str, str]] = []
        try:
            auth = make_auth(make_config())
            original = auth.headers_for

            def recording(method: str, target: str, body: str) -> dict[str, str]:
                signed.append((method, target, body))
                return original(method, target, body)

            auth.headers_for = recording  # type: ignore[method-assign]
            reply = await wire.request(
                "POST", "/api/v1/x y", params={"instId": "BTC-USDT", "n": "a&b c"}, content=b'{"a":1}',
                headers={"Content-Type": "application/json"}, auth=auth,
            )
            seen = reply.json()
            assert reply.status_code == 201 and reply.headers["X-THING"] == "1"
            assert (seen["method"], seen["body"]) == ("POST", '{"a":1}')
            assert signed == [("POST", seen["raw_path"] + "?" + seen["query"], '{"a":1}')]
            assert seen["raw_path"] == "/api/v1/x%20y" and seen["query"] == "instId=BTC-USDT&n=a%26b+c"
            assert seen["headers"]["access-sign"] and seen["headers"]["content-type"] == "application/json"
            assert seen["client"][0] == "127.0.0.2"
            with pytest.raises(TypeError, match="BloFinAuth"):
                await wire.request("GET", "/private", auth=httpx.BasicAuth("u", "p"))
        finally:
            await wire.aclose()


async def test_requests_beyond_the_pool_wait_for_a_connection_and_reuse_it() -> None:
    async with serve_loopback(echo) as loopback:
        wire = PooledHttp(loopback.http_url, timeout=5, connections=3)
        try:
            replies = await asyncio.gather(*(wire.request("GET", f"/n/{i}") for i in range(30)))
            assert [r.json()["raw_path"] for r in replies] == [f"/n/{i}" for i in range(30)]
            ports = {tuple(r.json()["client"]) for r in replies}
            assert 1 <= len(ports) <= 3
        finally:
            await wire.aclose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_no_connection_means_not_sent_and_a_write_is_retried_until_given_up() -> None:
    wire = PooledHttp(f"http://127.0.0.1:{closed_port()}", timeout=5, connections=2)
    attempts = 0
    original = wire.request

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return await original(*args, **kwargs)

    wire.request = counted  # type: ignore[method-assign]
    client = BloFinClient(wire, make_auth(make_config()), rate_limiter=RateLimiter.unlimited(),
                          retry=RetryPolicy(attempts=3, initial_wait=0.0, jitter=0.0))
    try:
        with pytest.raises(ExchangeUnavailable) as caught:
            await client.rest.write("POST", "/api/v1/trade/order", body={"instId": "BTC-USDT"})
        assert caught.value.request_sent is False and caught.value.code == "connect"
        assert attempts == 3  # retried: BloFin provably never saw it
    finally:
        await wire.aclose()


async def test_a_connection_dropped_after_the_order_is_an_unknown_outcome_looked_up_never_resent() -> None:
    async with serve_sim(make_config()) as served:
        served.app.state.sim_state.faults.add(Fault("drop_reply", path="/api/v1/trade/order"))
        wire = PooledHttp(served.http_url, timeout=5, connections=2)
        try:
            client = BloFinClient(wire, served.auth, rate_limiter=RateLimiter.unlimited())
            order = OrderRequest(
                inst_id="BTC-USDT", side="buy", order_type="market", margin_mode="cross",
                size=(await client.instruments())["BTC-USDT"].min_size, client_order_id="pooled1",
            )
            with pytest.raises(ExchangeUnavailable) as caught:
                await client.rest.write("POST", "/api/v1/trade/order", body=order.to_blofin())
            assert caught.value.request_sent is True and caught.value.code == "connection lost"
            assert [o.client_order_id for o in served.sim.orders.values()] == ["pooled1"]  # sent once

            # through the client, the unknown outcome is settled by looking the order up
            ack = await client.place_order(order.model_copy(update={"client_order_id": "pooled2"}))
            assert ack.client_order_id == "pooled2"
            assert sorted(o.client_order_id for o in served.sim.orders.values()) == ["pooled1", "pooled2"]
        finally:
            await wire.aclose()
