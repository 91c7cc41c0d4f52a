"""Property tests of the risk engine: whatever the signal and market, a plan keeps every rule."""

from datetime import UTC, datetime
from decimal import Decimal as D
from decimal import localcontext

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hit_server.exchange.instruments import Instrument
from hit_server.risk.engine import (
    MarketView,
    Rejection,
    RiskLimits,
    TradePlan,
    assess,
    ladder,
    split_take_profits,
)
from hit_shared.models import Side, TradeSignal

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# for a test that also asserts what its examples covered: the same examples on every run (random ones
# left a margin-limited plan out once in a while, and the run failed for want of a case, not a bug)
COVERING = settings(EXAMPLES, derandomize=True)

CONTRACT_VALUES = ["0.0001", "0.001", "0.01", "0.1", "1", "10", "1000", "10000000"]
LOTS = ["0.001", "0.01", "0.1", "1", "10"]


def percent(low: str, high: str) -> st.SearchStrategy[D]:
    return st.decimals(min_value=D(low), max_value=D(high), places=3)


def around(*magnitudes: int) -> st.SearchStrategy[D]:
    """One of the magnitudes, up to 9% more: amounts spread over the orders that matter."""
    return st.builds(
        lambda m, extra: D(m) * (1 + extra / 100), st.sampled_from(magnitudes), percent("0", "9")
    )


@st.composite
def instruments(draw: st.DrawFn, contract_value: D | None = None, price: D = D(1)) -> Instrument:
    """An instrument whose tick is 3 to 6 digits finer than `price`."""
    lot = D(draw(st.sampled_from(LOTS)))
    min_size = lot * draw(st.sampled_from([1, 1, 2, 10, 100]))
    return Instrument(
        inst_id="ABC-USDT", base_currency="ABC", quote_currency="USDT",
        contract_value=contract_value or D(draw(st.sampled_from(CONTRACT_VALUES))),
        lot_size=lot, min_size=min_size,
        tick_size=D(1).scaleb(price.adjusted() - draw(st.integers(3, 6))),
        max_leverage=draw(st.integers(1, 150)),
        max_limit_size=min_size * draw(st.sampled_from([1, 10**3, 10**5, 10**7, 10**9])),
        max_market_size=min_size * draw(st.sampled_from([1, 10**3, 10**5, 10**7, 10**9])),
    )  # fmt: skip


@st.composite
def instrument_and_mark(draw: st.DrawFn) -> tuple[Instrument, D]:
    """A contract worth about 0.05 to 5000 USDT whatever its contract value, as on a real exchange."""
    contract_value = D(draw(st.sampled_from(CONTRACT_VALUES)))
    contract_usd = D(draw(st.sampled_from(["0.05", "1", "7", "60", "450", "5000"])))
    price = contract_usd / contract_value * (1 + draw(percent("-50", "50")) / 100)
    inst = draw(instruments(contract_value=contract_value, price=price))
    return inst, inst.round_price(price)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[TradeSignal, MarketView, RiskLimits]:
    inst, mark = draw(instrument_and_mark())
    side = draw(st.sampled_from(Side))
    sign = 1 if side is Side.LONG else -1
    n_entries = draw(st.sampled_from([0, 1, 2, 3, 5]))
    entries = [mark * (1 + draw(percent("-3", "3")) / 100) for _ in range(n_entries)]
    anchors = [*entries, mark]
    near, far = (min(anchors), max(anchors)) if side is Side.LONG else (max(anchors), min(anchors))
    stop = near * (1 - sign * draw(percent("0.05", "30")) / 100)
    n_tps = draw(st.integers(1, 5))
    tps = sorted(
        (far * (1 + sign * draw(percent("0.1", "30")) / 100) for _ in range(n_tps)), reverse=sign < 0
    )
    try:
        signal = TradeSignal(
            signal_id="prop:1", side=side, symbol=inst.inst_id, entries=tuple(entries), stop_loss=stop,
            take_profits=tuple(tps), leverage=draw(st.none() | st.integers(1, 150)),
        )  # fmt: skip
    except ValueError:
        assume(False)
        raise
    equity = draw(around(0, 50, 1000, 10**4, 10**6))
    market = MarketView(
        instrument=inst, mark_price=mark, equity=equity,
        available=equity * draw(st.sampled_from([D("0.01"), D("0.3"), D(1), D(2)])),
        open_positions=0, symbols_with_open_trade=frozenset(), halted=False, now=NOW,
    )  # fmt: skip
    limits = RiskLimits(
        risk_per_trade_percent=draw(percent("0.01", "10")),
        max_position_size_usd=draw(around(1, 100, 10**4, 10**6, 10**8)),
        default_leverage=draw(st.integers(1, 150)), max_leverage=draw(st.integers(1, 150)),
        max_open_positions=5, max_entry_deviation_percent=D(100), max_signal_age_seconds=300,
        fee_buffer_percent=draw(percent("0", "1")),
    )  # fmt: skip
    return signal, market, limits


def _check_sizes(plan: TradePlan, inst: Instrument) -> None:
    assert plan.size > 0
    assert plan.size <= min(inst.max_market_size, inst.max_limit_size)
    for orders in (plan.entries, plan.take_profits):
        assert sum(o.size for o in orders) == plan.size
        for order in orders:
            assert order.size >= inst.min_size
            assert order.size % inst.lot_size == 0


def _check_prices(plan: TradePlan, signal: TradeSignal, market: MarketView, inst: Instrument) -> None:
    long = signal.side is Side.LONG
    assert inst.is_on_tick(plan.stop_loss)
    assert (
        plan.stop_loss <= signal.stop_loss if long else plan.stop_loss >= signal.stop_loss
    )  # never tightened
    entry_prices = [market.mark_price if o.price is None else o.price for o in plan.entries]
    for price in entry_prices:
        assert price > plan.stop_loss if long else price < plan.stop_loss
    for tp in plan.take_profits:
        assert tp.price is not None and inst.is_on_tick(tp.price)
        assert all(tp.price > p if long else tp.price < p for p in entry_prices)
    if signal.entries:
        assert all(o.price is not None and inst.is_on_tick(o.price) for o in plan.entries)
    else:
        assert plan.is_market


def _check_money(plan: TradePlan, market: MarketView, limits: RiskLimits, inst: Instrument) -> None:
    risk = notional = D(0)
    for order in plan.entries:
        price = market.mark_price if order.price is None else order.price
        risk += order.size * inst.contract_value * abs(price - plan.stop_loss)
        notional += order.size * inst.contract_value * price
    assert (plan.risk_usd, plan.notional_usd) == (risk, notional)
    assert risk <= market.equity * limits.risk_per_trade_percent / 100  # no epsilon
    assert notional <= limits.max_position_size_usd
    fee = limits.fee_buffer_percent / 100
    assert notional * (1 + plan.leverage * fee) <= market.available * plan.leverage
    assert 1 <= plan.leverage <= min(limits.max_leverage, inst.max_leverage)


def _check_not_undersized(plan: TradePlan, market: MarketView, limits: RiskLimits, inst: Instrument) -> None:
    """A market plan bound by risk is the largest lot multiple within the risk budget."""
    if plan.is_market and plan.limited_by == "risk":
        one_more = (plan.size + inst.lot_size) * inst.contract_value * abs(market.mark_price - plan.stop_loss)
        assert one_more > market.equity * limits.risk_per_trade_percent / 100


def test_risk_assess_plans_keep_every_rule_for_any_consistent_signal():
    outcomes: list[TradePlan | Rejection] = []

    @COVERING
    @given(scenarios())
    def check(scenario: tuple[TradeSignal, MarketView, RiskLimits]) -> None:
        signal, market, limits = scenario
        result = assess(signal, market, limits)
        outcomes.append(result)
        inst = market.instrument
        assert inst is not None
        if isinstance(result, Rejection):
            assert result.reason.startswith(f"{signal.symbol}: ") and len(result.reason) > 20
            return
        _check_sizes(result, inst)
        _check_prices(result, signal, market, inst)
        _check_money(result, market, limits, inst)
        _check_not_undersized(result, market, limits, inst)

    check()
    plans = [o for o in outcomes if isinstance(o, TradePlan)]
    assert len(plans) >= len(outcomes) // 5, "the generator should mostly produce tradeable scenarios"
    assert {p.limited_by for p in plans} >= {"risk", "max_position_size_usd", "margin"}
    assert any(len(p.entries) > 1 for p in plans) and any(len(p.take_profits) > 1 for p in plans)


@EXAMPLES
@given(scenarios(), st.integers(3, 12))
def test_risk_assess_ignores_the_callers_decimal_context(scenario, precision):
    signal, market, limits = scenario
    expected = assess(signal, market, limits)
    with localcontext() as ctx:
        ctx.prec = precision
        assert assess(signal, market, limits) == expected


@EXAMPLES
@given(instruments(), st.integers(1, 10**5), st.integers(1, 10), st.booleans())
def test_risk_ladder_and_split_cut_whole_lots_summing_to_the_total(inst, extra_lots, n_prices, as_ladder):
    total = inst.min_size + inst.lot_size * (extra_lots - 1)
    prices = [D(100 + i) for i in range(n_prices)]
    orders = (ladder if as_ladder else split_take_profits)(total, prices, inst)
    assert sum(o.size for o in orders) == total
    assert 1 <= len(orders) <= n_prices
    assert all(o.size >= inst.min_size and o.size % inst.lot_size == 0 for o in orders)
    used = [o.price for o in orders]
    assert used == sorted(set(used), key=used.index) and all(p in prices for p in used)  # distinct, in order
    if not as_ladder:
        assert used[-1] == prices[-1]  # the last target always absorbs
    if len(orders) < n_prices:  # fewer slices only when one more would go under minSize
        assert (total // inst.lot_size // (len(orders) + 1)) * inst.lot_size < inst.min_size


@EXAMPLES
@given(scenarios(), st.data())
def test_risk_assess_targets_are_distinct_and_close_twins_merge_with_their_summed_share(scenario, data):
    """Two targets that land on one tick become one order carrying both shares; a target written
    twice is refused (see risk.py: a repeated price is likely a typo)."""
    signal, market, limits = scenario
    inst = market.instrument
    assert inst is not None
    n = data.draw(st.integers(0, len(signal.take_profits) - 1))
    on_tick = inst.round_price(signal.take_profits[n])
    quarter = inst.tick_size / 4
    twins = (on_tick - quarter, on_tick + quarter)  # distinct prices, one tick
    tps = (*signal.take_profits[:n], *twins, *signal.take_profits[n + 1 :])
    try:
        twinned = signal.model_copy(update={"take_profits": tps})
        TradeSignal.model_validate(twinned.model_dump())
    except ValueError:
        assume(False)
        raise
    result = assess(twinned, market, limits)
    repeated = assess(signal.model_copy(update={"take_profits": (*signal.take_profits, on_tick, on_tick)}),
                      market, limits)
    assert isinstance(repeated, Rejection)
    if isinstance(result, Rejection):
        return
    prices = [o.price for o in result.take_profits]
    assert len(prices) == len(set(prices))  # never two orders at one price (one clientOrderId each)
    assert sum(o.size for o in result.take_profits) == result.size
    rounded = [inst.round_price(p) for p in tps]
    unmerged = split_take_profits(result.size, rounded, inst)
    assert {o.price: o.size for o in result.take_profits} == {
        price: sum((o.size for o in unmerged if o.price == price), D(0)) for price in dict.fromkeys(prices)
    }
