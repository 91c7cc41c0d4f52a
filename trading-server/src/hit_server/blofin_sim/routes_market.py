"""Public market data: instruments, tickers, mark prices, a one-level book, server time."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request

from . import parsing
from .app import StateDep, ok
from .catalog import fmt, instrument_row
from .engine import Simulator
from .errors import param_missing

router = APIRouter()


def _selected(sim: Simulator, request: Request) -> list[str]:
    wanted = parsing.inst_ids(request.query_params.get("instId", ""))
    for inst_id in wanted:
        sim.instrument(inst_id)
    return wanted or sorted(sim.instruments)


def _spread(sim: Simulator, inst_id: str) -> tuple[Decimal, Decimal]:
    tick = sim.instruments[inst_id].tick_size
    last = sim.prices[inst_id]
    return max(tick, last - tick), last + tick


@router.get("/market/instruments")
async def instruments(request: Request, state: StateDep) -> dict[str, Any]:
    sim = state.sim
    return ok([instrument_row(sim.instruments[i]) for i in _selected(sim, request)])


@router.get("/market/tickers")
async def tickers(request: Request, state: StateDep) -> dict[str, Any]:
    sim = state.sim
    now = str(sim.clock_ms())
    rows = []
    for inst_id in _selected(sim, request):
        last = sim.prices[inst_id]
        bid, ask = _spread(sim, inst_id)
        rows.append({
            "instId": inst_id, "last": fmt(last), "lastSize": "1", "askPrice": fmt(ask), "askSize": "100",
            "bidPrice": fmt(bid), "bidSize": "100", "high24h": fmt(last), "open24h": fmt(last),
            "low24h": fmt(last), "volCurrency24h": "0", "vol24h": "0", "ts": now,
        })
    return ok(rows)


@router.get("/market/mark-price")
async def mark_price(request: Request, state: StateDep) -> dict[str, Any]:
    sim = state.sim
    now = str(sim.clock_ms())
    return ok([
        {"instId": i, "indexPrice": fmt(sim.prices[i]), "markPrice": fmt(sim.prices[i]), "ts": now}
        for i in _selected(sim, request)
    ])


@router.get("/market/books")
async def books(request: Request, state: StateDep) -> dict[str, Any]:
    sim = state.sim
    inst_id = request.query_params.get("instId", "")
    if not inst_id:
        raise param_missing("instId")
    sim.instrument(inst_id)
    bid, ask = _spread(sim, inst_id)
    return ok([{"asks": [[fmt(ask), "100"]], "bids": [[fmt(bid), "100"]], "ts": str(sim.clock_ms())}])


@router.get("/public/time")
async def server_time(state: StateDep) -> dict[str, Any]:
    return ok({"ts": str(state.sim.clock_ms())})
