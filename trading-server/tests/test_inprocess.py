"""InProcessHttp, the paper exchange's wire: what the app receives is what a socket would carry."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from hit_server.blofin_sim import SimConfig, create_app
from hit_server.blofin_sim.faults import Fault
from hit_server.exchange.blofin_auth import BloFinAuth, Credentials
from hit_server.exchange.blofin_client import BloFinClient
from hit_server.exchange.blofin_errors import AuthenticationError, ExchangeUnavailable
from hit_server.exchange.blofin_models import OrderRequest
from hit_server.exchange.inprocess import InProcessHttp
from hit_server.exchange.ratelimit import RateLimiter

KEY, SECRET, PASSPHRASE = "inproc-key", "inproc-secret", "inproc-pass"


async def echo(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app answering with what it received."""
    message = await receive()
    seen = {
        "method": scope["method"], "path": scope["path"], "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(), "body": message["body"].decode(),
        "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
    }
    payload = json.dumps(seen).encode()
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"x-Thing", b"1")]})
    await send({"type": "http.response.body", "body": payload})


def client_for(secret: str) -> BloFinClient:
    app = create_app(SimConfig(api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE))
    auth = BloFinAuth(Credentials(KEY, SecretStr(secret), SecretStr(PASSPHRASE)))
    wire = InProcessHttp(app, "http://paper-exchange")
    return BloFinClient(wire, auth, rate_limiter=RateLimiter.unlimited())


async def test_inprocess_signed_requests_pass_the_simulators_signature_check() -> None:
    client = client_for(SECRET)
    balance = await client.balance()
    positions = await client.positions("BTC-USDT")  # a signed query string
    assert balance.equity > 0 and positions == []


async def test_inprocess_wrong_secret_is_refused_like_on_blofin() -> None:
    with pytest.raises(AuthenticationError):
        await client_for("not-the-secret").balance()


async def test_inprocess_carries_method_path_query_body_and_headers() -> None:
    wire = InProcessHttp(echo, "http://exchange.test")
    reply = await wire.request("POST", "/api/v1/x y", params={"instId": "BTC-USDT", "n": "a&b"},
                               content=b'{"a":1}', headers={"Content-Type": "application/json"})
    seen = reply.json()
    assert reply.status_code == 201 and reply.headers["X-THING"] == "1"
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/api/v1/x y", '{"a":1}')
    assert seen["query"] == "instId=BTC-USDT&n=a%26b"
    assert seen["headers"]["content-type"] == "application/json"
    assert seen["headers"]["host"] == "exchange.test"


async def test_inprocess_other_auth_goes_through_an_httpx_request() -> None:
    wire = InProcessHttp(echo, "http://exchange.test")
    reply = await wire.request("GET", "/private", params={"a": "1"}, auth=httpx.BasicAuth("u", "p"))
    seen = reply.json()
    assert seen["headers"]["authorization"].startswith("Basic ") and seen["query"] == "a=1"


async def test_inprocess_dropped_reply_is_a_lost_connection() -> None:
    app = create_app(SimConfig(api_key=KEY, api_secret=SECRET, passphrase=PASSPHRASE))
    app.state.sim_state.faults.add(Fault("drop_reply", path="/api/v1/account/balance"))
    auth = BloFinAuth(Credentials(KEY, SecretStr(SECRET), SecretStr(PASSPHRASE)))
    client = BloFinClient(InProcessHttp(app, "http://paper-exchange"), auth,
                          rate_limiter=RateLimiter.unlimited())
    with pytest.raises(ExchangeUnavailable, match="connection lost"):
        await client.rest.request("GET", "/api/v1/account/balance")


async def test_inprocess_held_symbols_are_the_symbols_of_open_positions() -> None:
    client = client_for(SECRET)
    instruments = await client.instruments()
    for symbol in ("BTC-USDT", "ETH-USDT"):
        await client.place_order(OrderRequest(
            inst_id=symbol, side="buy", order_type="market", size=instruments[symbol].min_size,
            margin_mode="cross", client_order_id="held" + symbol.replace("-", ""),
        ))
    assert await client.held_symbols() == {p.inst_id for p in await client.positions()} == {
        "BTC-USDT", "ETH-USDT"}
