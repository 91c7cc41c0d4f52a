"""The simulator serving a fleet (issue #19): many accounts by API key on one market, each apart from the
others over REST and the private WebSocket, BloFin's limits per key and per IP address (distinct
loopback source addresses are distinct IPs), and 10,000 accounts cheap to add and to move prices over.

Everything goes through the simulator's HTTP API and WebSockets on a loopback port (uvicorn), as a
fleet's workers would reach it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect

from hit_server.blofin_sim.__main__ import load_accounts
from hit_server.blofin_sim.config import AccountSpec
from hit_server.blofin_sim.loopback import ServedSim, serve_sim
from hit_server.blofin_sim.testing import TEST_KEY, make_config
from hit_server.exchange.blofin_auth import BloFinAuth, Credentials

BTC = "BTC-USDT"
ORDER = "/api/v1/trade/order"
PENDING = "/api/v1/trade/orders-pending"
POSITIONS = "/api/v1/account/positions"
BALANCE = "/api/v1/account/balance"
TIME = "/api/v1/public/time"
Message = dict[str, Any]


@dataclass(frozen=True)
class Member:
    """One member's BloFin account as the simulator is given it."""

    api_key: str
    api_secret: str
    passphrase: str

    def body(self, balance: str = "10000") -> dict[str, str]:
        return {"api_key": self.api_key, "api_secret": self.api_secret, "passphrase": self.passphrase,
                "balance": balance}

    def auth(self, *, secret: str | None = None, passphrase: str | None = None) -> BloFinAuth:
        creds = Credentials(self.api_key, SecretStr(secret or self.api_secret),
                            SecretStr(passphrase or self.passphrase))
        return BloFinAuth(creds)


ALICE = Member("fleet-alice-key-0001", "alice-secret-never-shown", "alice-pass-never-shown")
BOB = Member("fleet-bob-key-0002", "bob-secret-never-shown", "bob-pass-never-shown")


@asynccontextmanager
async def fleet(**overrides: Any) -> AsyncIterator[ServedSim]:
    """The simulator on a loopback port with Alice and Bob added next to the default account."""
    async with serve_sim(make_config(**overrides)) as served:
        reply = await served.control("/sim/accounts", {"accounts": [ALICE.body("10000"), BOB.body("20000")]})
        assert reply["data"] == {"added": 2, "existing": 0, "total": 3}
        yield served


@asynccontextmanager
async def signed(served: ServedSim, member: Member, **auth: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served.http_url, auth=member.auth(**auth), timeout=5) as http:
        yield http


@asynccontextmanager
async def from_address(served: ServedSim, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests leave from `address` (a loopback address other than 127.0.0.1)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(base_url=served.http_url, transport=transport, timeout=5) as http:
        yield http


async def control(served: ServedSim, method: str, path: str, body: Any = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=served.http_url, timeout=30) as http:
        return await http.request(method, path, json=body)


async def state(served: ServedSim, api_key: str = "") -> Any:
    reply = await control(served, "GET", "/sim/state" + (f"?api_key={api_key}" if api_key else ""))
    assert reply.status_code == 200, reply.text
    return reply.json()["data"]


async def accounts(served: ServedSim) -> dict[str, Any]:
    reply = await control(served, "GET", "/sim/accounts")
    assert reply.status_code == 200, reply.text
    return {row["apiKey"]: row for row in reply.json()["data"]}


def order(cid: str, **fields: str) -> dict[str, str]:
    body = {"instId": BTC, "marginMode": "cross", "side": "buy", "orderType": "market", "size": "1",
            "clientOrderId": cid}
    body.update(fields)
    return body


async def place(http: httpx.AsyncClient, body: dict[str, str]) -> Message:
    reply: Message = (await http.post(ORDER, json=body)).json()
    assert reply["code"] == "0", reply
    return reply["data"][0]


# ---- the private WebSocket ---------------------------------------------------------------------------
async def receive(ws: ClientConnection) -> Message:
    message: Message = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return message


async def until(ws: ClientConnection, last: Callable[[Message], bool]) -> list[Message]:
    """Every message up to and including the first for which `last` is true."""
    seen = [await receive(ws)]
    while not last(seen[-1]):
        seen.append(await receive(ws))
    return seen


def order_push(cid: str, state_: str | None = None) -> Callable[[Message], bool]:
    def wanted(message: Message) -> bool:
        return message.get("arg", {}).get("channel") == "orders" and any(
            row.get("clientOrderId") == cid and state_ in (None, row.get("state"))
            for row in message.get("data", []))
    return wanted


@asynccontextmanager
async def private_ws(served: ServedSim, member: Member, *, secret: str | None = None
                     ) -> AsyncIterator[tuple[ClientConnection, Message]]:
    """A private socket logged in as `member` (the login's answer beside it), subscribed to `orders`."""
    async with connect(served.ws_url(), ping_interval=None, open_timeout=5, close_timeout=1) as ws:
        await ws.send(json.dumps({"op": "login", "args": [member.auth(secret=secret).ws_login_args()]}))
        answer = await receive(ws)
        if answer.get("code") == "0":
            await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders"}]}))
            assert (await receive(ws))["event"] == "subscribe"
        yield ws, answer


# ---- accounts apart ----------------------------------------------------------------------------------
async def test_fleet_accounts_keep_orders_positions_and_balances_apart() -> None:
    async with fleet() as served, signed(served, ALICE) as alice, signed(served, BOB) as bob:
        await place(alice, order("same_cid_1"))  # Alice buys at market: a position
        bobs = await place(bob, order("same_cid_1", orderType="limit", price="59000"))  # Bob rests
        alice_pending = (await alice.get(PENDING)).json()["data"]
        bob_pending = (await bob.get(PENDING)).json()["data"]
        alice_positions = (await alice.get(POSITIONS)).json()["data"]
        bob_positions = (await bob.get(POSITIONS)).json()["data"]
        alice_balance = (await alice.get(BALANCE)).json()["data"]["details"][0]
        bob_balance = (await bob.get(BALANCE)).json()["data"]["details"][0]
        default = await state(served)
    assert alice_pending == [] and [o["orderId"] for o in bob_pending] == [bobs["orderId"]]
    assert [p["instId"] for p in alice_positions] == [BTC] and bob_positions == []
    assert Decimal(alice_balance["balance"]) < 10000  # the taker fee
    assert Decimal(bob_balance["balance"]) == 20000 and Decimal(bob_balance["available"]) < 20000
    assert default["orders"] == [] and default["positions"] == []  # the default account saw nothing


async def test_fleet_same_client_order_id_in_two_accounts_is_two_orders() -> None:
    async with fleet() as served, signed(served, ALICE) as alice, signed(served, BOB) as bob:
        first = await place(alice, order("shared_cid", orderType="limit", price="58000"))
        second = await place(bob, order("shared_cid", orderType="limit", price="58000"))
        again = (await alice.post(ORDER, json=order("shared_cid"))).json()
        alice_state, bob_state = await state(served, ALICE.api_key), await state(served, BOB.api_key)
    assert first["orderId"] != second["orderId"]
    assert again["data"][0]["code"] == "102002"  # within one account it is still a duplicate
    assert [o["orderId"] for o in alice_state["orders"]] == [first["orderId"]]
    assert [o["orderId"] for o in bob_state["orders"]] == [second["orderId"]]


async def test_fleet_one_price_move_fills_and_fires_in_every_account() -> None:
    async with fleet() as served, signed(served, ALICE) as alice, signed(served, BOB) as bob:
        await place(alice, order("alice_entry", slTriggerPrice="59000"))  # a long with its stop
        await place(bob, order("bob_entry", orderType="limit", price="59500"))  # a resting buy
        await served.control("/sim/price", {"instId": BTC, "price": "58900"})
        alice_state, bob_state = await state(served, ALICE.api_key), await state(served, BOB.api_key)
    assert [t["state"] for t in alice_state["tpslOrders"]] == ["effective"]  # the stop fired...
    assert alice_state["positions"] == []  # ...and closed Alice's long
    assert [(o["state"], o["averagePrice"]) for o in bob_state["orders"]] == [("filled", "59500")]
    assert [p["positions"] for p in bob_state["positions"]] == ["1"]
    assert alice_state["prices"][BTC] == bob_state["prices"][BTC] == "58900"  # one market


async def test_fleet_private_websocket_pushes_only_its_own_accounts_events() -> None:
    async with fleet() as served, signed(served, ALICE) as alice, signed(served, BOB) as bob, \
            private_ws(served, ALICE) as (alice_ws, alice_login), \
            private_ws(served, BOB) as (bob_ws, bob_login):
        assert alice_login["code"] == bob_login["code"] == "0"
        # a push is queued when the event happens, so anything wrongly sent to a socket arrives before
        # that socket's own next push: each socket is read up to its own account's next order
        await place(alice, order("alice_only"))
        await place(bob, order("bob_only"))
        await place(alice, order("alice_after", orderType="limit", price="50000"))
        await place(bob, order("bob_after", orderType="limit", price="50000"))
        alice_seen = await until(alice_ws, order_push("alice_after"))
        bob_seen = await until(bob_ws, order_push("bob_after"))
    assert any(order_push("alice_only", "filled")(m) for m in alice_seen)
    assert any(order_push("bob_only", "filled")(m) for m in bob_seen)
    assert not any(order_push("bob_only")(m) or order_push("bob_after")(m) for m in alice_seen)
    assert not any(order_push("alice_only")(m) or order_push("alice_after")(m) for m in bob_seen)


async def test_fleet_websocket_login_again_switches_the_account_heard() -> None:
    async with fleet() as served, signed(served, ALICE) as alice, signed(served, BOB) as bob, \
            private_ws(served, ALICE) as (ws, first):
        await ws.send(json.dumps({"op": "login", "args": [BOB.auth().ws_login_args()]}))
        second = await receive(ws)
        await place(alice, order("alice_unheard"))
        await place(bob, order("bob_heard"))
        seen = await until(ws, order_push("bob_heard"))
    assert first["code"] == second["code"] == "0"
    assert not any(order_push("alice_unheard")(m) for m in seen)


async def test_fleet_websocket_login_checks_the_accounts_own_secret() -> None:
    async with fleet() as served, private_ws(served, ALICE, secret=BOB.api_secret) as (_, refused), \
            private_ws(served, BOB) as (_, accepted):
        pass
    assert refused == {"event": "error", "code": "60009", "msg": "Login failed."}
    assert accepted["code"] == "0"


# ---- authentication ----------------------------------------------------------------------------------
async def test_fleet_request_signed_with_another_accounts_secret_is_refused() -> None:
    async with fleet() as served, signed(served, ALICE, secret=BOB.api_secret) as wrong_secret, \
            signed(served, ALICE, passphrase=BOB.passphrase) as wrong_passphrase, \
            signed(served, Member("fleet-nobody-key", "x-secret", "x-pass")) as unknown, \
            signed(served, ALICE) as right:
        codes = [(await http.get(BALANCE)).json()["code"]
                 for http in (wrong_secret, wrong_passphrase, unknown)]
        good = (await right.get(BALANCE)).json()
    assert codes == ["152409", "152408", "152401"]
    assert good["code"] == "0" and good["data"]["details"][0]["balance"] == "10000"


# ---- adding and listing accounts ---------------------------------------------------------------------
async def test_fleet_adding_again_is_a_no_op_and_other_secrets_are_a_conflict() -> None:
    carol = Member("fleet-carol-key-0003", "carol-secret", "carol-pass")
    async with fleet() as served:
        same = await control(served, "POST", "/sim/accounts", {"accounts": [ALICE.body("999")]})
        conflict = await control(served, "POST", "/sim/accounts", {"accounts": [
            carol.body(), {**BOB.body(), "api_secret": "another-secret"}]})
        default_conflict = await control(served, "POST", "/sim/accounts", {"accounts": [
            {"api_key": TEST_KEY, "api_secret": "not-the-configured-one", "passphrase": "p"}]})
        listed = await accounts(served)
    assert same.json()["data"] == {"added": 0, "existing": 1, "total": 3}
    assert conflict.status_code == 409 and conflict.json()["code"] == "409"
    assert default_conflict.status_code == 409
    assert list(listed) == [TEST_KEY, ALICE.api_key, BOB.api_key]  # Carol was not added either
    assert listed[ALICE.api_key]["balance"] == "10000"  # the no-op did not touch the balance


async def test_fleet_accounts_list_counts_and_never_shows_a_secret() -> None:
    async with fleet() as served, signed(served, ALICE) as alice:
        await place(alice, order("listed_entry", slTriggerPrice="59000"))
        await place(alice, order("listed_rest", orderType="limit", price="50000"))
        reply = await control(served, "GET", "/sim/accounts")
    rows = {row["apiKey"]: row for row in reply.json()["data"]}
    row = rows[ALICE.api_key]
    assert (row["positions"], row["openOrders"], row["liveTpsl"]) == (1, 1, 1)
    assert row["tradeLimit"]["requests"] == 2 and row["tradeLimit"]["refused"] == 0
    assert Decimal(row["equity"]) < 10000 and rows[BOB.api_key]["equity"] == "20000"
    assert rows[TEST_KEY]["default"] is True and rows[ALICE.api_key]["default"] is False
    for secret in (ALICE.api_secret, ALICE.passphrase, BOB.api_secret, BOB.passphrase):
        assert secret not in reply.text


async def test_fleet_control_endpoints_act_on_the_account_named() -> None:
    async with fleet() as served, signed(served, ALICE) as alice, signed(served, BOB) as bob:
        lost = await control(served, "POST", f"/sim/attached-tpsl-lost?api_key={ALICE.api_key}", {"count": 1})
        await place(alice, order("naked_entry", slTriggerPrice="59000"))
        await place(bob, order("covered_entry", slTriggerPrice="59000"))
        alice_state, bob_state = await state(served, ALICE.api_key), await state(served, BOB.api_key)
        default_state = await state(served)
        unknown = await control(served, "GET", "/sim/state?api_key=fleet-nobody")
    assert lost.json()["data"] == {"count": 1}
    assert alice_state["tpslOrders"] == [] and alice_state["modes"]["attachedTpslLost"] == 0
    assert [t["state"] for t in bob_state["tpslOrders"]] == ["live"]
    assert default_state["modes"]["attachedTpslLost"] == 0 and default_state["accounts"] == 3
    assert unknown.status_code == 404 and unknown.json()["code"] == "152401"


async def test_fleet_reset_keeps_the_accounts_each_back_at_its_start() -> None:
    async with fleet() as served, signed(served, BOB) as bob:
        await place(bob, order("before_reset"))
        await control(served, "POST", "/sim/reset")
        listed = await accounts(served)
        again = await place(bob, order("before_reset"))  # its clientOrderIds are forgotten too
    assert list(listed) == [TEST_KEY, ALICE.api_key, BOB.api_key]
    assert (listed[BOB.api_key]["balance"], listed[BOB.api_key]["positions"]) == ("20000", 0)
    assert again["code"] == "0"


async def test_fleet_accounts_given_at_start_and_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": [ALICE.body("5000"), {**BOB.body(), "balance": None}]}))
    specs = load_accounts(path)
    assert specs == (AccountSpec(ALICE.api_key, ALICE.api_secret, ALICE.passphrase, Decimal(5000)),
                     AccountSpec(BOB.api_key, BOB.api_secret, BOB.passphrase, None))
    assert ALICE.api_secret not in repr(specs)
    async with serve_sim(make_config(accounts=specs)) as served, signed(served, ALICE) as alice, \
            signed(served, BOB) as bob:
        alice_balance = (await alice.get(BALANCE)).json()["data"]["details"][0]["balance"]
        bob_balance = (await bob.get(BALANCE)).json()["data"]["details"][0]["balance"]
        listed = await accounts(served)
    assert (alice_balance, bob_balance) == ("5000", "100000")  # Bob has the configured balance
    assert listed[ALICE.api_key]["configured"] is True


def test_fleet_accounts_file_that_cannot_be_used_says_so(tmp_path: Path) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": [{"api_key": "k"}]}))
    with pytest.raises(SystemExit, match="not a list of accounts"):
        load_accounts(path)


# ---- limits --------------------------------------------------------------------------------------------
async def test_fleet_trade_limit_is_per_key() -> None:
    async with fleet(trade_limit_per_10s=3) as served, signed(served, ALICE) as alice, \
            signed(served, BOB) as bob:
        alice_codes = [(await alice.get(PENDING)).status_code for _ in range(4)]
        bob_code = (await bob.get(PENDING)).status_code
        limits = (await state(served))["limits"]
        listed = await accounts(served)
    assert alice_codes == [200, 200, 200, 429] and bob_code == 200
    assert limits["keys"][ALICE.api_key] == {"requests": 3, "refused": 1, "last10s": 3, "peakPer10s": 3}
    assert limits["keys"][BOB.api_key]["requests"] == 1 and limits["keys"][BOB.api_key]["refused"] == 0
    assert listed[ALICE.api_key]["tradeLimit"]["refused"] == 1


async def test_fleet_request_limit_is_per_source_address() -> None:
    async with fleet(rate_limit_per_min=3) as served, from_address(served, "127.0.0.2") as two, \
            from_address(served, "127.0.0.3") as three:
        two_codes = [(await two.get(TIME)).status_code for _ in range(4)]
        three_codes = [(await three.get(TIME)).status_code for _ in range(2)]
        async with from_address(served, "127.0.0.1") as one:  # a forwarded-for header names no IP
            one_code = (await one.get(TIME, headers={"X-Forwarded-For": "10.1.2.3"})).status_code
        limits = (await state(served))["limits"]
    assert two_codes == [200, 200, 200, 429] and three_codes == [200, 200] and one_code == 200
    ips = limits["ips"]
    assert sorted(ips) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert (ips["127.0.0.2"]["requests"], ips["127.0.0.2"]["refused"], ips["127.0.0.2"]["peakPerMinute"]) == (
        3, 1, 3)
    assert (ips["127.0.0.3"]["requests"], ips["127.0.0.3"]["refused"]) == (2, 0)
    assert limits["suspendedIps"] == []


class Clock:
    """A clock the test moves by hand, installed as the simulator's (the limits read it)."""

    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


async def test_fleet_ip_over_the_five_minute_limit_is_suspended_for_the_hour() -> None:
    async with fleet(rate_limit_per_min=100, ip_limit_per_5min=4, ip_suspend_s=3600) as served, \
            from_address(served, "127.0.0.2") as two, from_address(served, "127.0.0.3") as three:
        clock = Clock()
        served.sim.clock_ms = clock
        first = [(await two.get(TIME)).status_code for _ in range(5)]
        clock.now += 300_001  # the 5-minute window is past, the suspension is not
        suspended = await two.get(TIME)
        other = (await three.get(TIME)).status_code
        limits = (await state(served))["limits"]
        clock.now += 3_300_000  # an hour after the suspension began
        after = (await two.get(TIME)).status_code
        later = (await state(served))["limits"]
    assert first == [200, 200, 200, 200, 429]
    assert suspended.status_code == 429 and suspended.json() == {"code": "429", "msg": "Too Many Requests"}
    assert other == 200
    assert limits["suspendedIps"] == ["127.0.0.2"]
    two_view = limits["ips"]["127.0.0.2"]
    assert (two_view["requests"], two_view["refused"], two_view["suspensions"]) == (4, 2, 1)
    assert two_view["peakPer5Minutes"] == 4 and two_view["suspended"] is True
    assert after == 200 and later["suspendedIps"] == []


async def test_fleet_minute_limit_suspends_when_configured() -> None:
    async with fleet(rate_limit_per_min=2, ip_minute_suspend_s=300) as served, \
            from_address(served, "127.0.0.2") as two:
        clock = Clock()
        served.sim.clock_ms = clock
        codes = [(await two.get(TIME)).status_code for _ in range(3)]
        clock.now += 60_001  # a new minute, still within the 5-minute suspension
        still = (await two.get(TIME)).status_code
        clock.now += 240_000
        back = (await two.get(TIME)).status_code
    assert codes == [200, 200, 429] and still == 429 and back == 200


# ---- 10,000 accounts -----------------------------------------------------------------------------------
async def test_fleet_ten_thousand_accounts_are_cheap_to_add_and_to_move_prices_over() -> None:
    members = [Member(f"fleet-bench-{n:05d}", f"secret-{n:05d}", "pass") for n in range(10_000)]
    async with serve_sim(make_config()) as served, signed(served, members[-1]) as last:
        started = time.perf_counter()
        reply = await control(served, "POST", "/sim/accounts", {"accounts": [m.body() for m in members]})
        added_s = time.perf_counter() - started
        await place(last, order("bench_rest", orderType="limit", price="59000"))
        market = served.app.state.sim_state.market
        watchers = market.watchers(BTC)
        started = time.perf_counter()
        moved = await served.control("/sim/price", {"instId": BTC, "price": "59900"})
        move_s = time.perf_counter() - started
        started = time.perf_counter()
        for n in range(100):  # moves straight on the market: what a move costs without HTTP
            market.set_price(BTC, Decimal(59_800 + n))
        hundred_moves_s = time.perf_counter() - started
        filled = await served.control("/sim/price", {"instId": BTC, "price": "58000"})
        last_state = await state(served, members[-1].api_key)
    assert reply.json()["data"] == {"added": 10_000, "existing": 0, "total": 10_001}
    assert watchers == 1  # only the account resting something on BTC is visited by a move
    assert moved["code"] == filled["code"] == "0"
    assert [o["state"] for o in last_state["orders"]] == ["filled"]
    logging.getLogger(__name__).warning(
        "10,000 accounts added in %.3f s; a price move over them %.1f ms by HTTP, %.3f ms on the market",
        added_s, move_s * 1000, hundred_moves_s * 10)
    assert added_s < 10.0  # measured ~0.5 s on a loaded 2-core machine; the bound is generous
    assert move_s < 1.0 and hundred_moves_s < 1.0
