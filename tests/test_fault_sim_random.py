"""The simulator's probabilistic fault mode (POST /sim/faults/random), over httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from hit_server.blofin_sim import Simulator, create_app
from hit_server.blofin_sim.faults import Fault, FaultPlan, RandomFaults
from hit_server.blofin_sim.testing import make_auth, make_config, sim_http

ORDER = "/api/v1/trade/order"


def order_body(cid: str) -> dict[str, str]:
    return {"instId": "BTC-USDT", "marginMode": "cross", "side": "buy", "orderType": "market", "size": "0.1",
            "clientOrderId": cid}


@pytest.fixture
def app() -> FastAPI:
    return create_app(make_config())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with sim_http(app, make_auth(app.state.sim.config)) as c:
        yield c


def test_fault_plan_random_rate_close_to_probability() -> None:
    plan = FaultPlan()
    plan.set_random(RandomFaults(probability=0.2, kinds=("http_5xx", "error_code"), seed=7))
    drawn = [plan.take("/api/v1/account/balance") for _ in range(2000)]
    hits = [f for f in drawn if f is not None]
    assert 0.17 < len(hits) / len(drawn) < 0.23
    assert {f.kind for f in hits} == {"http_5xx", "error_code"}
    assert plan.random is not None and sum((plan.random.injected or {}).values()) == len(hits)


def test_fault_plan_random_same_seed_same_draws() -> None:
    def draws(seed: int) -> list[str | None]:
        plan = FaultPlan()
        plan.set_random(RandomFaults(probability=0.5, kinds=("timeout", "drop_reply"), seed=seed))
        return [None if (f := plan.take("/api/x")) is None else f.kind for _ in range(50)]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


def test_fault_plan_random_only_under_its_path_and_after_counted_faults() -> None:
    plan = FaultPlan()
    plan.add(Fault(kind="http_429", count=1, path=ORDER))
    plan.set_random(RandomFaults(probability=1.0, kinds=("error_code",), path="/api/v1/trade/",
                                 code="103013"))
    assert plan.take("/api/v1/account/balance") is None
    counted, drawn = plan.take(ORDER), plan.take(ORDER)
    assert counted is not None and counted.kind == "http_429"
    assert drawn is not None and (drawn.kind, drawn.code) == ("error_code", "103013")


@pytest.mark.parametrize("probability", [0.0, 1.5])
def test_random_faults_refuses_probability_out_of_range(probability: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        RandomFaults(probability=probability, kinds=("http_5xx",))


async def test_sim_random_faults_route_fails_some_requests_and_reports_them(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    reply = await client.post("/sim/faults/random", json={
        "probability": 0.5, "kinds": ["http_5xx", "error_code"], "code": "103013", "seed": 1,
        "path": "/api/v1/account/"})
    assert reply.json()["code"] == "0", reply.text
    answers = [await client.get("/api/v1/account/balance") for _ in range(40)]
    failed = [r for r in answers if r.status_code != 200 or r.json()["code"] != "0"]
    state = (await client.get("/sim/state")).json()["data"]

    assert 8 <= len(failed) <= 32
    assert {(r.status_code, r.json()["code"]) for r in failed} <= {(503, "503"), (200, "103013")}
    assert sum(state["randomFaults"]["injected"].values()) == len(failed)
    public = await client.get("/api/v1/market/tickers")
    assert public.status_code == 200  # outside the path


async def test_sim_random_faults_not_carried_out_except_drop_reply(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    sim: Simulator = app.state.sim
    await client.post("/sim/faults/random", json={"probability": 1, "kinds": ["error_code"]})
    refused = await client.post(ORDER, json=order_body("r1"))
    await client.post("/sim/faults/random", json={"probability": 1, "kinds": ["drop_reply"]})
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(ORDER, json=order_body("r2"))

    assert refused.json()["code"] == "103013"
    assert "r1" not in sim.orders_by_client_id
    assert "r2" in sim.orders_by_client_id


async def test_sim_delete_faults_stops_random_mode(client: httpx.AsyncClient) -> None:
    await client.post("/sim/faults/random", json={"probability": 1, "kinds": ["http_5xx"]})
    assert (await client.get("/api/v1/account/balance")).status_code == 503
    await client.delete("/sim/faults")
    state = (await client.get("/sim/state")).json()["data"]

    assert state["randomFaults"] is None
    assert (await client.get("/api/v1/account/balance")).status_code == 200


@pytest.mark.parametrize("body", [
    {"probability": 0, "kinds": ["http_5xx"]},
    {"probability": 0.2, "kinds": []},
    {"probability": 0.2, "kinds": ["explode"]},
])
async def test_sim_random_faults_route_refuses_bad_request(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    reply = await client.post("/sim/faults/random", json=body)
    state = (await client.get("/sim/state")).json()["data"]
    assert reply.json()["code"] != "0"
    assert state["randomFaults"] is None
