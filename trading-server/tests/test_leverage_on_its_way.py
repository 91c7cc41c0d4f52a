"""When a first signal's entry may leave before the answer to its leverage set (issue #18): only a market
entry, from a known leverage, when the margin at the leverage held covers it, and for a lowering only when
the stop lies well inside the held leverage's liquidation. The whole path over sockets is in
test_stream_latency.py."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from hit_server.exchange.blofin_errors import BloFinError
from hit_server.risk.engine import TradePlan
from hit_server.risk.orders import PlannedOrder
from hit_server.trading.execution_run import LeverageOnItsWay

FEE_PERCENT = Decimal("0.2")


def plan(*, leverage: int = 5, notional: str = "1000", limit: bool = False, stop: str = "97") -> TradePlan:
    entry = PlannedOrder(Decimal("100") if limit else None, Decimal(10))
    return TradePlan(
        leverage=leverage, size=Decimal(10), entries=(entry,), stop_loss=Decimal(stop),
        take_profits=(PlannedOrder(Decimal(103), Decimal(10)),), risk_usd=Decimal(30),
        notional_usd=Decimal(notional), reference_price=Decimal(100),
    )


async def on_its_way(leverage: int, held: int | None, refusal: BloFinError | None = None) -> LeverageOnItsWay:
    async def answer() -> BloFinError | None:
        return refusal

    return LeverageOnItsWay("BTC-USDT", leverage, held, asyncio.create_task(answer()))


@pytest.mark.parametrize(
    ("held", "limit", "available", "goes_first", "why"),
    [
        (3, False, "1000", True, "a raise, covered at 3x: 333.33 + 2 fees"),
        (3, False, "335.34", True, "covered to the cent"),
        (3, False, "335.33", False, "short of 333.33.. + 2 at 3x (covered at the plan's 5x: 202)"),
        (3, True, "1000", False, "a limit entry rests: BloFin refuses a cross leverage change under it"),
        (5, False, "1000", False, "the plan's already: nothing was sent"),
        (None, False, "1000", False, "the leverage held is not known"),
    ],
)
async def test_the_entry_goes_first_on_a_covered_raise_of_a_market_entry(
    held: int | None, limit: bool, available: str, goes_first: bool, why: str
) -> None:
    ahead = await on_its_way(5, held)
    assert ahead.entry_may_go_first(plan(limit=limit), Decimal(available), FEE_PERCENT) is goes_first, why
    await ahead.answer()


@pytest.mark.parametrize(
    ("held", "stop", "limit", "goes_first", "why"),
    [
        (10, "97", False, True, "3% stop; at 10x the margin is gone at 10%: within (10% - 1%) / 2 = 4.5%"),
        (10, "95.5", False, True, "4.5%: at the edge"),
        (10, "95.49", False, False, "4.51%: past it"),
        (10, "103", False, True, "a short's stop above the entry: the distance is what counts"),
        (20, "97", False, False, "at 20x: within (5% - 1%) / 2 = 2% only"),
        (20, "98", False, True, "2% at 20x"),
        (100, "99.9", False, False, "at 100x the maintenance margin leaves nothing: always set first"),
        (10, "97", True, False, "a limit entry waits, lowering or raise"),
    ],
)
async def test_a_lowering_goes_first_only_when_the_stop_lies_well_inside_the_held_liquidation(
    held: int, stop: str, limit: bool, goes_first: bool, why: str
) -> None:
    ahead = await on_its_way(5, held)
    chosen = plan(stop=stop, limit=limit)
    assert ahead.entry_may_go_first(chosen, Decimal(1000), FEE_PERCENT) is goes_first, why
    await ahead.answer()


async def test_a_plan_at_another_leverage_than_the_one_sent_waits() -> None:
    ahead = await on_its_way(5, 3)
    assert not ahead.entry_may_go_first(plan(leverage=4), Decimal(10_000), FEE_PERCENT)
    await ahead.answer()


async def test_the_answer_is_the_refusal_or_none_and_survives_a_cancelled_waiter() -> None:
    refused = BloFinError("leverage refused", code="152002")
    assert await (await on_its_way(5, 3, refused)).answer() is refused

    release = asyncio.Event()

    async def slow() -> BloFinError | None:
        await release.wait()
        return None

    ahead = LeverageOnItsWay("BTC-USDT", 5, 3, asyncio.create_task(slow()))
    waiter = asyncio.create_task(ahead.answer())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not ahead.sent.cancelled()  # the set is let finish
    release.set()
    assert await ahead.answer() is None
