"""The control API tests and demos drive (no signature): prices, faults, state, reset, walk steps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from . import views
from .app import StateDep, ok
from .catalog import fmt
from .faults import Fault, RandomFaults

router = APIRouter()


class PriceMove(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instId: str  # BloFin's field name
    price: Decimal = Field(gt=0)


FaultKindName = Literal["delay", "timeout", "http_5xx", "http_429", "error_code", "drop_reply"]


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: FaultKindName
    count: int = Field(default=1, ge=1, le=10_000)
    code: str = ""
    seconds: float = Field(default=0.0, ge=0, le=600)
    path: str = ""


class RandomFaultRequest(BaseModel):
    """The probabilistic mode: each request under `path` fails with `probability`, kind drawn from `kinds`."""

    model_config = ConfigDict(extra="forbid")
    probability: float = Field(gt=0, le=1)
    kinds: list[FaultKindName] = Field(min_length=1, max_length=6)
    code: str = ""
    seconds: float = Field(default=0.0, ge=0, le=600)
    path: str = ""
    seed: int = 0


@router.post("/price")
async def set_price(move: PriceMove, state: StateDep) -> dict[str, Any]:
    state.sim.set_price(move.instId, move.price)
    return ok({"instId": move.instId, "price": fmt(state.sim.prices[move.instId])})


@router.post("/faults")
async def add_fault(req: FaultRequest, state: StateDep) -> dict[str, Any]:
    state.faults.add(Fault(kind=req.kind, count=req.count, code=req.code, seconds=req.seconds, path=req.path))
    return ok({"pending": len(state.faults.pending)})


@router.post("/faults/random")
async def set_random_faults(req: RandomFaultRequest, state: StateDep) -> dict[str, Any]:
    """Replace the probabilistic mode (DELETE /sim/faults stops it, with the counted faults)."""
    spec = RandomFaults(probability=req.probability, kinds=tuple(req.kinds), code=req.code,
                        seconds=req.seconds, path=req.path, seed=req.seed)
    state.faults.set_random(spec)
    return ok(_random_view(spec))


def _random_view(spec: RandomFaults | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {"probability": spec.probability, "kinds": list(spec.kinds), "code": spec.code,
            "seconds": spec.seconds, "path": spec.path, "seed": spec.seed,
            "injected": dict(spec.injected or {})}


@router.delete("/faults")
async def clear_faults(state: StateDep) -> dict[str, Any]:
    state.faults.clear()
    return ok({"pending": 0})


@router.post("/reset")
async def reset(state: StateDep) -> dict[str, Any]:
    state.reset()
    return ok({})


@router.post("/step")
async def step(state: StateDep) -> dict[str, Any]:
    """One step of the random walk (paper mode driven by the caller)."""
    state.walk.step()
    return ok({k: fmt(v) for k, v in state.sim.prices.items()})


@router.get("/state")
async def sim_state(state: StateDep) -> dict[str, Any]:
    sim = state.sim
    now = sim.clock_ms()
    return ok({
        "balance": views.balance_view(sim.account(), now),
        "positions": [views.position_view(sim.instruments[p.inst_id], p, sim.prices[p.inst_id])
                      for p in sim.positions.values()],
        "orders": [views.order_view(o) for o in sim.orders.values()],
        "tpslOrders": [views.tpsl_view(t) for t in sim.tpsl_orders.values()],
        "prices": {k: fmt(v) for k, v in sim.prices.items()},
        "faults": [vars(f) for f in state.faults.pending],
        "randomFaults": _random_view(state.faults.random),
    })
