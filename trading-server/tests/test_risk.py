"""Table-driven tests of the risk engine: sizing, caps, leverage, ladders, and every rejection."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from hit_server.exchange.instruments import Instrument
from hit_server.risk.engine import (
    MarketView,
    PlannedOrder,
    RejectCode,
    Rejection,
    RiskLimits,
    TradePlan,
    assess,
)
from hit_shared.models import Side, TradeSignal

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def inst(
    inst_id: str, cv: str, lot: str, min_size: str, tick: str, max_lev: int = 100, **kw: Any
) -> Instrument:
    base, quote = inst_id.split("-")
    return Instrument(
        inst_id=inst_id,
        base_currency=base,
        quote_currency=quote,
        contract_value=D(cv),
        lot_size=D(lot),
        min_size=D(min_size),
        tick_size=D(tick),
        max_leverage=max_lev,
        max_limit_size=D(kw.pop("max_limit", "100000")),
        max_market_size=D(kw.pop("max_market", "100000")),
        **kw,
    )


BTC = inst("BTC-USDT", "0.001", "0.1", "0.1", "0.1", 150)
ETH = inst("ETH-USDT", "0.1", "1", "1", "0.01", 100)
PEPE = inst("PEPE-USDT", "10000000", "1", "1", "0.000000001", 50)
XRP = inst("XRP-USDT", "1", "1", "10", "0.0001", 75)
INSTRUMENTS = {i.inst_id: i for i in (BTC, ETH, PEPE, XRP)}

LIMITS = RiskLimits(
    risk_per_trade_percent=D("1"),
    max_position_size_usd=D("100000"),
    default_leverage=10,
    max_leverage=20,
    max_open_positions=5,
    max_entry_deviation_percent=D("10"),
    max_signal_age_seconds=300,
)


def signal(
    side: str = "long",
    symbol: str = "BTC-USDT",
    entries: tuple[str, ...] = (),
    stop: str = "58000",
    tps: tuple[str, ...] = ("62000",),
    leverage: int | None = None,
    **kw: Any,
) -> TradeSignal:
    return TradeSignal(
        signal_id="test:1",
        side=side,
        symbol=symbol,
        entries=tuple(D(e) for e in entries),
        stop_loss=D(stop),
        take_profits=tuple(D(t) for t in tps),
        leverage=leverage,
        **kw,
    )


def market(
    symbol: str = "BTC-USDT",
    mark: str = "60000",
    equity: str = "1000",
    available: str | None = None,
    **kw: Any,
) -> MarketView:
    fields: dict[str, Any] = {
        "instrument": INSTRUMENTS.get(symbol),
        "mark_price": D(mark),
        "equity": D(equity),
        "available": D(available if available is not None else equity),
        "open_positions": 0,
        "symbols_with_open_trade": frozenset(),
        "halted": False,
        "now": NOW,
    }
    fields.update(kw)
    return MarketView(**fields)


def plan_of(sig: TradeSignal, mkt: MarketView, limits: RiskLimits = LIMITS) -> TradePlan:
    result = assess(sig, mkt, limits)
    assert isinstance(result, TradePlan), result
    return result


def rejection_of(sig: TradeSignal, mkt: MarketView, limits: RiskLimits = LIMITS) -> Rejection:
    result = assess(sig, mkt, limits)
    assert isinstance(result, Rejection), result
    assert result.reason.startswith(f"{sig.symbol}: ")
    return result


# (case, signal kwargs, market kwargs, size, risk_usd, notional_usd)
SIZING = [
    ("btc long market", {}, {}, "5.0", "10", "300"),
    ("btc short market", {"side": "short", "stop": "62000", "tps": ("58000",)}, {}, "5.0", "10", "300"),
    ("btc long limit rounds down to lot", {"entries": ("60000",), "stop": "57000"}, {}, "3.3", "9.9", "198"),
    (
        "btc short limit",
        {"side": "short", "entries": ("61000",), "stop": "64000", "tps": ("59000",)},
        {},
        "3.3",
        "9.9",
        "201.3",
    ),
    (
        "eth short contract 0.1",
        {"side": "short", "symbol": "ETH-USDT", "entries": ("3000",), "stop": "3100", "tps": ("2800",)},
        {"symbol": "ETH-USDT", "mark": "3000", "equity": "5000"},
        "5",
        "50",
        "1500",
    ),
    (
        "pepe contract ten million",
        {"symbol": "PEPE-USDT", "entries": ("0.00001",), "stop": "0.0000096", "tps": ("0.000011",)},
        {"symbol": "PEPE-USDT", "mark": "0.00001"},
        "2",
        "8",
        "200",
    ),
    (
        "xrp min size above lot",
        {"symbol": "XRP-USDT", "entries": ("0.5",), "stop": "0.49", "tps": ("0.52",)},
        {"symbol": "XRP-USDT", "mark": "0.5"},
        "1000",
        "10",
        "500",
    ),
]


@pytest.mark.parametrize(
    ("case", "sig", "mkt", "size", "risk", "notional"), SIZING, ids=[c[0] for c in SIZING]
)
def test_risk_assess_sizes_from_risk_and_stop_distance(case, sig, mkt, size, risk, notional):
    plan = plan_of(signal(**sig), market(**mkt))
    assert (plan.size, plan.risk_usd, plan.notional_usd) == (D(size), D(risk), D(notional))
    assert str(plan.size) == size  # quantized to the lot, as sent to the exchange
    assert plan.limited_by == "risk"
    assert sum(o.size for o in plan.entries) == plan.size == sum(o.size for o in plan.take_profits)


def test_risk_assess_market_entry_is_one_market_order_sized_at_the_mark():
    plan = plan_of(signal(), market(mark="59000"))  # stop distance 1000 at the mark: 10 / 1 = 10 contracts
    assert plan.entries == (PlannedOrder(price=None, size=D("10.0")),)
    assert plan.reference_price == D("59000")
    assert plan.is_market


def test_risk_assess_caps_notional_at_max_position_size_usd():
    plan = plan_of(signal(stop="59400"), market(), replace(LIMITS, max_position_size_usd=D("300")))
    assert plan.size == D("5.0")  # risk alone would allow 16.6
    assert plan.notional_usd == D("300")
    assert plan.limited_by == "max_position_size_usd"
    assert "MAX_POSITION_SIZE_USD" in plan.notes[0]


def test_risk_assess_caps_size_by_margin_available_at_the_leverage_with_fee_buffer():
    plan = plan_of(signal(stop="59400"), market(available="20"))
    # per contract: 60 / 10x + 0.2% of 60 = 6.12 USDT; 20 / 6.12 = 3.27
    assert plan.size == D("3.2")
    assert plan.notional_usd / plan.leverage + plan.notional_usd * D("0.002") <= D("20")
    assert plan.limited_by == "margin"


def test_risk_assess_caps_size_at_the_instruments_largest_order():
    small = replace(BTC, max_market_size=D("50"), max_limit_size=D("80"))
    plan = plan_of(signal(stop="59940"), market(instrument=small, equity="100000"))
    assert plan.size == D("50")
    assert plan.limited_by == "max_order_size"


@pytest.mark.parametrize(
    ("requested", "limit_max", "inst_max", "used"),
    [(50, 20, 150, 20), (50, 100, 25, 25), (None, 20, 150, 10), (5, 20, 150, 5), (None, 20, 3, 3)],
    ids=["above MAX_LEVERAGE", "above instrument max", "absent uses default", "within", "default above inst"],
)
def test_risk_assess_clamps_leverage(requested, limit_max, inst_max, used):
    mkt = market(instrument=replace(BTC, max_leverage=inst_max))
    plan = plan_of(signal(leverage=requested), mkt, replace(LIMITS, max_leverage=limit_max))
    assert plan.leverage == used
    assert any("leverage" in note for note in plan.notes) == (used != (requested or LIMITS.default_leverage))


@pytest.mark.parametrize(
    ("equity", "rungs"),
    [
        ("1000", [("60000.0", "2.2"), ("59500.0", "2.2"), ("59000.0", "2.2")]),
        ("40", [("60000.0", "0.1"), ("59000.0", "0.1")]),  # three rungs would be under minSize: the ends
        ("25", [("59500.0", "0.1")]),  # one rung: the middle
    ],
)
def test_risk_assess_turns_a_zone_into_a_ladder(equity, rungs):
    plan = plan_of(signal(entries=("59000", "60000"), tps=("61000", "62000")), market(equity=equity))
    assert [(str(o.price), str(o.size)) for o in plan.entries] == rungs
    assert plan.reference_price == D("59500")
    assert plan.risk_usd <= D(equity) / 100


def test_risk_assess_short_zone_ladder_fills_lowest_first():
    sig = signal(side="short", entries=("60500", "60000"), stop="61000", tps=("59000",))
    plan = plan_of(sig, market())
    assert [o.price for o in plan.entries] == [D("60000.0"), D("60250.0"), D("60500.0")]


def test_risk_assess_cuts_a_listed_ladder_until_its_real_risk_fits():
    sig = signal(entries=("60000", "59800", "59600"), stop="59000", tps=("61000",))
    plan = plan_of(sig, market())
    # 10 USDT at the middle (800 away) gives 12.5, but the uneven rungs [4.2, 4.2, 4.1] would risk 10.02
    assert plan.size == D("12.4")
    assert [o.size for o in plan.entries] == [D("4.2"), D("4.1"), D("4.1")]
    assert plan.risk_usd == D("9.94")


def test_risk_assess_splits_take_profits_merging_small_slices_forward():
    plan = plan_of(signal(tps=("61000", "62000", "63000")), market(equity="25"))  # 0.125 -> 0.1 contracts
    assert plan.take_profits == (PlannedOrder(price=D("63000.0"), size=D("0.1")),)


def test_risk_assess_rounds_stop_away_from_the_entry_and_targets_to_nearest_tick():
    long_plan = plan_of(signal(stop="58000.07", tps=("62000.04", "62000.06")), market())
    assert long_plan.stop_loss == D("58000.0")
    assert [o.price for o in long_plan.take_profits] == [D("62000.0"), D("62000.1")]
    short_plan = plan_of(signal(side="short", stop="62000.01", tps=("58000",)), market())
    assert short_plan.stop_loss == D("62000.1")


def _rejections() -> list[tuple[str, RejectCode, TradeSignal, MarketView, RiskLimits, str]]:
    old = NOW - timedelta(seconds=301)
    return [
        ("halted", RejectCode.HALTED, signal(), market(halted=True, instrument=None), LIMITS, "halted"),
        (
            "too many",
            RejectCode.TOO_MANY_POSITIONS,
            signal(),
            market(open_positions=5),
            LIMITS,
            "5 positions are open, the limit is 5",
        ),
        ("too old", RejectCode.SIGNAL_TOO_OLD, signal(posted_at=old), market(), LIMITS, "301 s ago"),
        (
            "future",
            RejectCode.INVALID_SIGNAL,
            signal(posted_at=NOW + timedelta(hours=1)),
            market(),
            LIMITS,
            "in the future",
        ),
        (
            "entry far",
            RejectCode.ENTRY_TOO_FAR,
            signal(entries=("50000",), stop="49000", tps=("52000",)),
            market(),
            LIMITS,
            "the entry 50000 is 16.67% from the mark price 60000",
        ),
        (
            "market stop far",
            RejectCode.ENTRY_TOO_FAR,
            signal(stop="20000"),
            market(),
            LIMITS,
            "stop loss 20000",
        ),
        ("market tp far", RejectCode.ENTRY_TOO_FAR, signal(tps=("100000",)), market(), LIMITS, "TP1 100000"),
        (
            "long stop crossed",
            RejectCode.STOP_ALREADY_CROSSED,
            signal(entries=("59000",)),
            market(mark="58000"),
            LIMITS,
            "mark price 58000 is already past the stop loss 58000",
        ),
        (
            "short stop crossed",
            RejectCode.STOP_ALREADY_CROSSED,
            signal(side="short", entries=("61000",), stop="62000", tps=("59000",)),
            market(mark="62500"),
            LIMITS,
            "past the stop loss",
        ),
        ("long tp crossed", RejectCode.TARGET_CROSSED, signal(tps=("59900",)), market(), LIMITS, "TP1 59900"),
        (
            "short tp2 crossed",
            RejectCode.TARGET_CROSSED,
            signal(side="short", stop="62000", tps=("59000", "60100")),
            market(),
            LIMITS,
            "TP2 60100",
        ),
        (
            "unknown",
            RejectCode.UNKNOWN_SYMBOL,
            signal(),
            market(instrument=None),
            LIMITS,
            "no such instrument",
        ),
        (
            "suspended",
            RejectCode.SYMBOL_SUSPENDED,
            signal(),
            market(instrument=replace(BTC, state="suspend")),
            LIMITS,
            "state suspend",
        ),
        (
            "already open",
            RejectCode.SYMBOL_ALREADY_OPEN,
            signal(),
            market(symbols_with_open_trade=frozenset({"BTC-USDT"})),
            LIMITS,
            "already open",
        ),
        (
            "under min by risk",
            RejectCode.SIZE_BELOW_MINIMUM,
            signal(),
            market(equity="4.5", available="1000"),
            LIMITS,
            "size 0.0225 contracts is under the instrument's minimum of 0.1 "
            "(risk 1% of 4.5 USDT with a 3.33% stop)",
        ),
        (
            "under min by cap",
            RejectCode.SIZE_BELOW_MINIMUM,
            signal(),
            market(),
            replace(LIMITS, max_position_size_usd=D("5")),
            "MAX_POSITION_SIZE_USD of 5 USDT",
        ),
        (
            "margin",
            RejectCode.INSUFFICIENT_MARGIN,
            signal(),
            market(available="0.5"),
            LIMITS,
            "the 0.5 USDT available covers only 0.0817 contracts at 10x leverage",
        ),
        (
            "no equity",
            RejectCode.SIZE_BELOW_MINIMUM,
            signal(),
            market(equity="0", available="0"),
            LIMITS,
            "size 0 contracts",
        ),
        ("no mark", RejectCode.NO_MARK_PRICE, signal(), market(mark="0"), LIMITS, "no usable mark price"),
        (
            "stop collapses on entry",
            RejectCode.INVALID_SIGNAL,
            signal(entries=("60000.04",), stop="60000.01", tps=("61000",)),
            market(),
            LIMITS,
            "within one tick",
        ),
        (
            "inconsistent",
            RejectCode.INVALID_SIGNAL,
            TradeSignal.model_construct(
                signal_id="x",
                side=Side.LONG,
                symbol="BTC-USDT",
                entries=(D("59000"),),
                stop_loss=D("60000"),
                take_profits=(D("61000"),),
                leverage=None,
                posted_at=None,
            ),
            market(),
            LIMITS,
            "stop loss 60000 is above the entry 59000",
        ),
    ]


REJECTIONS = _rejections()


@pytest.mark.parametrize(
    ("case", "code", "sig", "mkt", "limits", "words"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_risk_assess_rejects_with_a_reason(case, code, sig, mkt, limits, words):
    rejection = rejection_of(sig, mkt, limits)
    assert rejection.code is code
    assert words in rejection.reason


def test_risk_assess_rejections_cover_every_code():
    assert {r[1] for r in REJECTIONS} == set(RejectCode)


@pytest.mark.parametrize("posted_ago", [None, 0, 299, -30])
def test_risk_assess_accepts_fresh_signals(posted_ago):
    posted = None if posted_ago is None else NOW - timedelta(seconds=posted_ago)
    assert isinstance(assess(signal(posted_at=posted), market(), LIMITS), TradePlan)


def test_risk_assess_age_check_off_when_limit_not_positive():
    sig = signal(posted_at=NOW - timedelta(days=3))
    assert isinstance(assess(sig, market(), replace(LIMITS, max_signal_age_seconds=0)), TradePlan)


def test_risk_assess_reason_matches_the_documented_example():
    cheap = inst("BTC-USDT", "1", "0.1", "0.1", "0.1")
    rejection = rejection_of(
        signal(entries=("30000",), stop="29000", tps=("31000",)), market(mark="30000", instrument=cheap)
    )
    assert rejection.reason == (
        "BTC-USDT: size 0.01 contracts is under the instrument's minimum of 0.1 "
        "(risk 1% of 1,000 USDT with a 3.33% stop)"
    )


@pytest.mark.parametrize(
    ("equity", "available", "code"),
    [
        ("NaN", "1000", RejectCode.SIZE_BELOW_MINIMUM),
        ("1000", "-5", RejectCode.INSUFFICIENT_MARGIN),
        ("Infinity", "1000", RejectCode.SIZE_BELOW_MINIMUM),
    ],
)
def test_risk_assess_refuses_instead_of_failing_on_broken_account_figures(equity, available, code):
    assert rejection_of(signal(), market(equity=equity, available=available)).code is code


def test_risk_assess_treats_naive_times_as_utc():
    naive_old = (NOW - timedelta(seconds=301)).replace(tzinfo=None)
    sig = TradeSignal.model_construct(**{**signal().__dict__, "posted_at": naive_old})
    assert rejection_of(sig, market(now=NOW.replace(tzinfo=None))).code is RejectCode.SIGNAL_TOO_OLD


# -- equal targets (decided in risk.py's docstring) ----------------------------------------------------


def test_risk_assess_merges_targets_equal_on_the_tick_grid_into_one_with_their_summed_share():
    # 62000.04 and 62000.02 are distinct prices the 0.1 tick cannot tell apart: one order at 62000.0
    plan = plan_of(signal(tps=("62000.04", "62000.02", "64000")), market())
    assert plan.size == D("5.0")
    assert plan.take_profits == (
        PlannedOrder(price=D("62000.0"), size=D("3.4")),  # 1.7 + 1.7: two thirds, as the trader gave
        PlannedOrder(price=D("64000.0"), size=D("1.6")),
    )
    assert any("62000.04" in note and "62000.02" in note and "merged" in note for note in plan.notes)


@pytest.mark.parametrize("tps", [("62000", "62000", "64000"), ("62000", "64000", "62000.0")])
def test_risk_assess_refuses_a_target_written_twice(tps):
    rejection = rejection_of(signal(tps=tps), market())
    assert rejection.code is RejectCode.INVALID_SIGNAL
    assert "62000" in rejection.reason and "twice" in rejection.reason


# -- the fat-finger guard of a market entry's stop (MAX_STOP_DISTANCE_PERCENT) ---------------------------


def test_risk_assess_places_a_market_swing_trade_whose_stop_is_far_beyond_the_entry_guard():
    # a stop 16.67% away, over MAX_ENTRY_DEVIATION_PERCENT (10 here) and within the stop's own limit
    limits = replace(LIMITS, max_stop_distance_percent=D(50))
    plan = plan_of(signal(stop="50000", tps=("62000",)), market(), limits)
    assert plan.is_market and plan.stop_loss == D("50000")


def test_risk_assess_refuses_a_market_stop_beyond_its_own_limit():
    limits = replace(LIMITS, max_stop_distance_percent=D(50))
    rejection = rejection_of(signal(stop="20000"), market(), limits)
    assert rejection.code is RejectCode.ENTRY_TOO_FAR
    assert "stop loss 20000 is 66.67% from the mark price 60000" in rejection.reason
    assert "MAX_STOP_DISTANCE_PERCENT" in rejection.reason


def test_risk_assess_keeps_the_entry_guard_for_limit_entries_whatever_the_stop_limit():
    limits = replace(LIMITS, max_stop_distance_percent=D(90))
    rejection = rejection_of(signal(entries=("50000",), stop="49000", tps=("52000",)), market(), limits)
    assert rejection.code is RejectCode.ENTRY_TOO_FAR and "MAX_ENTRY_DEVIATION_PERCENT" in rejection.reason


# -- posted_at (the rule: see risk.py's docstring) -------------------------------------------------------


def test_risk_assess_signal_without_posted_at_counts_as_posted_when_received():
    """No posted_at: the signal is judged as posted at the moment the server assesses it (age 0), so
    it passes the age check whatever MAX_SIGNAL_AGE_SECONDS is, and the plan says so."""
    strict = replace(LIMITS, max_signal_age_seconds=1)
    plan = plan_of(signal(posted_at=None), market(), strict)
    assert any("posted_at" in note and "received" in note for note in plan.notes)
    assert not any("posted_at" in note for note in plan_of(signal(posted_at=NOW), market(), strict).notes)
