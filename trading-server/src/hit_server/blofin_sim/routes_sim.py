"""The control API tests and demos drive (no signature): prices, faults, state, reset, walk steps, and
the adversarial modes of `adversity.py` (lookup lag, duplicate window, item faults, partial fills, hedge
mode), each described in that module's docstring."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from . import views
from .adversity import ItemFaults
from .app import SimState, StateDep, ok
from .catalog import fmt
from .errors import SimError
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


class LagRequest(BaseModel):
    """Orders accepted from now on stay invisible to lookups for `ms` of the simulator's clock and
    their first `lookups` lookups (both must be spent)."""

    model_config = ConfigDict(extra="forbid")
    ms: int = Field(default=0, ge=0, le=86_400_000)
    lookups: int = Field(default=0, ge=0, le=10_000)


class DuplicateWindowRequest(BaseModel):
    """A clientOrderId is refused as a duplicate within `ms` of its last use; None: forever."""

    model_config = ConfigDict(extra="forbid")
    ms: int | None = Field(ge=0, le=86_400_000 * 365)


class ItemFaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Literal["/api/v1/trade/batch-orders", "/api/v1/trade/cancel-tpsl"] = "/api/v1/trade/batch-orders"
    index: int | None = Field(default=None, ge=0, le=19)
    probability: float = Field(default=0.0, ge=0, le=1)
    code: str = Field(default="500", pattern=r"^[0-9]{1,6}$")
    count: int = Field(default=0, ge=0, le=10_000)
    seed: int = 0


class PartialFillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fraction: Decimal = Field(gt=0, le=1)


class LostTpslRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0, le=1000)


class PositionModeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["net_mode", "long_short_mode"]


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


@router.post("/lag")
async def set_lag(req: LagRequest, state: StateDep) -> dict[str, Any]:
    state.sim.lag.set(req.ms, req.lookups)
    return ok(_modes(state)["lag"])


@router.delete("/lag")
async def clear_lag(state: StateDep) -> dict[str, Any]:
    """End the lag: every order is visible at once."""
    state.sim.lag.clear()
    return ok(_modes(state)["lag"])


@router.post("/duplicate-window")
async def set_duplicate_window(req: DuplicateWindowRequest, state: StateDep) -> dict[str, Any]:
    state.sim.duplicate_window_ms = req.ms
    return ok({"ms": req.ms})


@router.post("/item-faults")
async def set_item_faults(req: ItemFaultRequest, state: StateDep) -> dict[str, Any]:
    if req.index is None and req.probability == 0:
        raise SimError("152002", "index or probability")
    state.item_faults = ItemFaults(path=req.path, index=req.index, probability=req.probability,
                                   code=req.code, count=req.count, seed=req.seed)
    return ok(_modes(state)["itemFaults"])


@router.delete("/item-faults")
async def clear_item_faults(state: StateDep) -> dict[str, Any]:
    state.item_faults = None
    return ok(None)


@router.post("/partial-fills")
async def set_partial_fills(req: PartialFillRequest, state: StateDep) -> dict[str, Any]:
    state.sim.partial_fraction = req.fraction
    return ok({"fraction": fmt(req.fraction)})


@router.delete("/partial-fills")
async def clear_partial_fills(state: StateDep) -> dict[str, Any]:
    state.sim.partial_fraction = None
    return ok(None)


@router.post("/attached-tpsl-lost")
async def lose_attached_tpsl(req: LostTpslRequest, state: StateDep) -> dict[str, Any]:
    """The next `count` fills of orders carrying a TP/SL create none (BloFin failing to attach it)."""
    state.sim.attached_tpsl_lost = req.count
    return ok({"count": req.count})


@router.post("/position-mode")
async def force_position_mode(req: PositionModeRequest, state: StateDep) -> dict[str, Any]:
    """Hedge mode on demand (BloFin's own set-position-mode refuses long_short_mode here)."""
    state.sim.force_position_mode(req.mode)
    return ok({"positionMode": req.mode})


def _modes(state: SimState) -> dict[str, Any]:
    """The adversarial modes in force, as /sim/state shows them."""
    sim, items = state.sim, state.item_faults
    return {
        "lag": {"ms": sim.lag.ms, "lookups": sim.lag.lookups, "hidden": len(sim.lag.hidden)},
        "duplicateWindowMs": sim.duplicate_window_ms,
        "itemFaults": None if items is None else {
            "path": items.path, "index": items.index, "probability": items.probability, "code": items.code,
            "count": items.count, "seed": items.seed, "refused": items.refused,
        },
        "partialFillFraction": None if sim.partial_fraction is None else fmt(sim.partial_fraction),
        "positionMode": sim.position_mode,
        "attachedTpslLost": sim.attached_tpsl_lost,
    }


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
        "modes": _modes(state),
    })
