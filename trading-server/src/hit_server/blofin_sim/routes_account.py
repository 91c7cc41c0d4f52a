"""Private account endpoints: balances, positions, leverage, margin and position modes, each of `sim`,
the account the request is signed for."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from . import parsing, views
from .app import AccountDep, ok
from .catalog import fmt
from .engine import Simulator
from .errors import SimError, param_missing
from .models import MarginMode

router = APIRouter()


async def _body(request: Request) -> dict[str, Any]:
    return parsing.as_object(parsing.load_json(await request.body()))


@router.get("/account/balance")
async def balance(sim: AccountDep) -> dict[str, Any]:
    return ok(views.balance_view(sim.account(), sim.clock_ms()))


@router.get("/asset/balances")
async def asset_balances(request: Request, sim: AccountDep) -> dict[str, Any]:
    account_type = request.query_params.get("accountType", "")
    if not account_type:
        raise param_missing("accountType")
    if account_type != "futures":
        return ok([])
    acc = sim.account()
    return ok([{"currency": "USDT", "balance": fmt(acc.cash), "available": fmt(acc.available),
                "frozen": fmt(acc.frozen), "bonus": "0"}])


@router.get("/asset/currencies")
async def currencies() -> dict[str, Any]:
    """Deposit/withdraw networks (ccxt's load_markets reads this); only USDT exists here."""
    return ok([{
        "currency": "USDT", "chain": "TRC20", "depositMinAmount": "1", "depositUnsafeConfirmation": 1,
        "depositConfirmation": 20, "withdrawMinAmount": "10", "withdrawFee": "1", "withdrawPrecision": 8,
        "supportMemo": 0, "isDepositAvailable": 1, "isWithdrawAvailable": 1, "recoveryEtaDeposit": 0,
        "recoveryEtaWithdraw": 0,
    }])


@router.get("/account/positions")
async def positions(request: Request, sim: AccountDep) -> dict[str, Any]:
    inst_id = request.query_params.get("instId", "")
    if inst_id:
        sim.instrument(inst_id)
    rows = [
        views.position_view(sim.instruments[p.inst_id], p, sim.prices[p.inst_id])
        for p in sim.positions.values() if inst_id in ("", p.inst_id)
    ]
    return ok(rows)


@router.get("/account/positions-history")
async def positions_history(request: Request, sim: AccountDep) -> dict[str, Any]:
    inst_id = request.query_params.get("instId", "")
    limit = parsing.limit_of(request.query_params.get("limit"))
    rows = [views.closed_position_view(c) for c in reversed(sim.position_history)
            if inst_id in ("", c.position.inst_id)]
    return ok(rows[:limit])


@router.get("/account/margin-mode")
async def margin_mode(sim: AccountDep) -> dict[str, Any]:
    return ok({"marginMode": sim.margin_mode})


@router.post("/account/set-margin-mode")
async def set_margin_mode(request: Request, sim: AccountDep) -> dict[str, Any]:
    mode = parsing.margin_mode(await _body(request))
    sim.set_margin_mode(mode)
    return ok({"marginMode": mode})


@router.get("/account/position-mode")
async def position_mode(sim: AccountDep) -> dict[str, Any]:
    return ok({"positionMode": sim.position_mode})


@router.post("/account/set-position-mode")
async def set_position_mode(request: Request, sim: AccountDep) -> dict[str, Any]:
    mode = parsing.text(await _body(request), "positionMode", required=True)
    sim.set_position_mode(mode)
    return ok({"positionMode": mode})


def _leverage_row(sim: Simulator, inst_id: str, mode: str) -> dict[str, str]:
    sim.instrument(inst_id)
    return {"leverage": str(sim.leverage_for(inst_id, mode)), "marginMode": mode, "instId": inst_id,
            "positionSide": "net"}


def _query_mode(request: Request) -> str:
    return parsing.choice(dict(request.query_params), "marginMode", ("cross", "isolated"))


@router.get("/account/leverage-info")
async def leverage_info(request: Request, sim: AccountDep) -> dict[str, Any]:
    inst_id = parsing.text(dict(request.query_params), "instId", required=True)
    row = _leverage_row(sim, inst_id, _query_mode(request))
    del row["positionSide"]
    return ok(row)


@router.get("/account/batch-leverage-info")
async def batch_leverage_info(request: Request, sim: AccountDep) -> dict[str, Any]:
    ids = parsing.inst_ids(parsing.text(dict(request.query_params), "instId", required=True))
    mode = _query_mode(request)
    return ok([_leverage_row(sim, inst_id, mode) for inst_id in ids])


@router.post("/account/set-leverage")
async def set_leverage(request: Request, sim: AccountDep) -> dict[str, Any]:
    body = await _body(request)
    inst_id = parsing.text(body, "instId", required=True)
    raw = parsing.decimal(body, "leverage", required=True)
    if raw is None or raw != raw.to_integral_value():
        raise SimError("152002", "leverage")
    mode: MarginMode = parsing.margin_mode(body)
    sim.set_leverage(inst_id, int(raw), mode)
    return ok({"leverage": str(int(raw)), "marginMode": mode, "instId": inst_id,
               "positionSide": parsing.text(body, "positionSide") or "net"})


@router.get("/account/config")
async def account_config() -> dict[str, Any]:
    return ok({"accountLevel": "0"})
