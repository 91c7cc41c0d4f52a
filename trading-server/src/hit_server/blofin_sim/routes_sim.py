"""The control API tests and demos drive (no signature): prices, faults, state, reset, walk steps, the
adversarial modes of `adversity.py` (lookup lag, duplicate window, item faults, partial fills, lost
TP/SL, hedge mode), each described in that module's docstring, and the accounts served.

Accounts (`registry.py`): `POST /sim/accounts {"accounts": [{"api_key", "api_secret", "passphrase",
"balance"?}, ...]}` adds many at once (answers how many were added and how many were there already;
409 and nothing added when a key is there with other secrets); `GET /sim/accounts` lists each one's key,
cash, equity, available, counts of positions, open orders and live TP/SL orders, and its trade-limit
tally, never a secret.

What is about one account (`/sim/state`, `/sim/lag`, `/sim/duplicate-window`, `/sim/item-faults`,
`/sim/partial-fills`, `/sim/attached-tpsl-lost`, `/sim/position-mode`) acts on the default account, or
on the account named by the query parameter `?api_key=` (HTTP 404, code 152401, for an unknown key).
What is about the market or the whole simulator is for all: `/sim/price`, `/sim/step`, `/sim/reset`
(every account kept, each back to its start), `/sim/faults` (network faults by path, whoever sends).
`/sim/state` also shows the limits (`limits.py`): the requests of every IP and key, suspended IPs.
`/sim/state` and each row of `/sim/accounts` count the account's private WebSocket connections logged
in (`privateStreams`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from . import views
from .adversity import ItemFaults
from .app import SimState, StateDep, ok
from .catalog import fmt
from .config import AccountSpec
from .engine import Simulator
from .errors import SimError
from .faults import Fault, RandomFaults
from .registry import SimAccount

router = APIRouter()


async def _target(state: StateDep, api_key: str = "") -> Simulator:
    """The account a control request is about: the one of `?api_key=`, else the default account."""
    return state.account(api_key)


TargetDep = Annotated[Simulator, Depends(_target)]


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


class AccountRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_key: str = Field(min_length=1, max_length=256)
    api_secret: str = Field(min_length=1, max_length=256)
    passphrase: str = Field(min_length=1, max_length=256)
    balance: Decimal | None = Field(default=None, ge=0)  # None: the configured starting balance


class AccountsRequest(BaseModel):
    """The body of `POST /sim/accounts`, and the file of `python -m hit_server.blofin_sim --accounts`."""

    model_config = ConfigDict(extra="forbid")
    accounts: list[AccountRequest] = Field(min_length=1, max_length=100_000)

    def specs(self) -> list[AccountSpec]:
        return [AccountSpec(a.api_key, a.api_secret, a.passphrase, a.balance) for a in self.accounts]


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
async def set_lag(req: LagRequest, sim: TargetDep) -> dict[str, Any]:
    sim.lag.set(req.ms, req.lookups)
    return ok(_modes(sim)["lag"])


@router.delete("/lag")
async def clear_lag(sim: TargetDep) -> dict[str, Any]:
    """End the lag: every order is visible at once."""
    sim.lag.clear()
    return ok(_modes(sim)["lag"])


@router.post("/duplicate-window")
async def set_duplicate_window(req: DuplicateWindowRequest, sim: TargetDep) -> dict[str, Any]:
    sim.duplicate_window_ms = req.ms
    return ok({"ms": req.ms})


@router.post("/item-faults")
async def set_item_faults(req: ItemFaultRequest, sim: TargetDep) -> dict[str, Any]:
    if req.index is None and req.probability == 0:
        raise SimError("152002", "index or probability")
    sim.item_faults = ItemFaults(path=req.path, index=req.index, probability=req.probability,
                                 code=req.code, count=req.count, seed=req.seed)
    return ok(_modes(sim)["itemFaults"])


@router.delete("/item-faults")
async def clear_item_faults(sim: TargetDep) -> dict[str, Any]:
    sim.item_faults = None
    return ok(None)


@router.post("/partial-fills")
async def set_partial_fills(req: PartialFillRequest, sim: TargetDep) -> dict[str, Any]:
    sim.partial_fraction = req.fraction
    return ok({"fraction": fmt(req.fraction)})


@router.delete("/partial-fills")
async def clear_partial_fills(sim: TargetDep) -> dict[str, Any]:
    sim.partial_fraction = None
    return ok(None)


@router.post("/attached-tpsl-lost")
async def lose_attached_tpsl(req: LostTpslRequest, sim: TargetDep) -> dict[str, Any]:
    """The next `count` fills of orders carrying a TP/SL create none (BloFin failing to attach it)."""
    sim.attached_tpsl_lost = req.count
    return ok({"count": req.count})


@router.post("/position-mode")
async def force_position_mode(req: PositionModeRequest, sim: TargetDep) -> dict[str, Any]:
    """Hedge mode on demand (BloFin's own set-position-mode refuses long_short_mode here)."""
    sim.force_position_mode(req.mode)
    return ok({"positionMode": req.mode})


def _modes(sim: Simulator) -> dict[str, Any]:
    """The adversarial modes of one account in force, as /sim/state shows them."""
    items = sim.item_faults
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
async def sim_state(state: StateDep, sim: TargetDep, request: Request) -> dict[str, Any]:
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
        "modes": _modes(sim),
        "accounts": len(state.accounts),
        "limits": state.limits.view(now),
        "privateStreams": _streams(request, sim),
    })


@router.post("/accounts")
async def add_accounts(req: AccountsRequest, state: StateDep) -> dict[str, Any]:
    """Add accounts (see the module docstring); all or nothing."""
    added, existing = state.accounts.add(req.specs())
    return ok({"added": added, "existing": existing, "total": len(state.accounts)})


@router.get("/accounts")
async def list_accounts(state: StateDep, request: Request) -> dict[str, Any]:
    """Every account, the default first, then in the order they were added."""
    now = state.sim.clock_ms()
    return ok([_account_row(state, account, now) | {"privateStreams": _streams(request, account.sim)}
               for account in state.accounts])


def _streams(request: Request, sim: Simulator) -> int:
    """The private WebSocket connections logged in to this account (none when no socket is served)."""
    hub = getattr(request.app.state, "ws_hub", None)
    return 0 if hub is None else int(hub.streams_of(sim))


def _account_row(state: SimState, account: SimAccount, now: int) -> dict[str, Any]:
    sim = account.sim
    summary = sim.account()
    return {
        "apiKey": account.api_key, "default": account is state.accounts.default,
        "configured": account.configured,
        "balance": fmt(summary.cash), "equity": fmt(summary.equity), "available": fmt(summary.available),
        "positions": len(sim.positions), "openOrders": len(sim.open_orders()),
        "liveTpsl": len(sim.live_tpsl()),
        "tradeLimit": state.limits.key_view(account.api_key, now),
    }
