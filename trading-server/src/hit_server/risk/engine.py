"""The risk engine: does a signal become a trade, and how big.

`assess(signal, market, limits)` is pure (no I/O, no clock: `market.now` is the clock) and returns
either a `TradePlan` the server can place as it is, or a `Rejection` whose reason is one sentence for
the trader. The server must not alter a plan's sizes or prices: they are already on the grids.

Checks, in this order (the first failure is the answer): halted; inconsistent signal; a target
written twice; unknown symbol; suspended symbol; a trade of ours already open on the symbol; too many
open positions; signal too old; no usable mark price; prices that collapse on the tick grid; stop
already crossed; for a market entry any target already crossed; an entry price too far from the mark
(MAX_ENTRY_DEVIATION_PERCENT), or, for a market entry, the stop or first target too far from the mark
(MAX_STOP_DISTANCE_PERCENT); then sizing (size under minSize, or the margin does not cover it).

Decisions:
- Prices go to the tick grid; sizing uses the rounded prices, so the risk figure is the real one.
  The stop is rounded away from the entry (long: down, short: up): the trader's stop is never
  tightened, and rounding can never carry it across an entry. Entries and targets go to the
  nearest tick; a price that lands on or past the stop, or a target on or behind an entry, is
  refused as an invalid signal.
- Size = min(risk size, MAX_POSITION_SIZE_USD, what the available margin carries at the leverage
  with a fee buffer, the instrument's per-order maximum), rounded down to lotSize. The per-order
  maximum (the smaller of maxMarketSize and maxLimitSize, as the stop closes the whole size in one
  order) caps the size rather than rejecting: a smaller trade stays within the trader's risk. A plan
  says in `limited_by` which bound set its size, and `notes` say what was capped or clamped.
- The sizing reference is the mark for a market entry, else the middle of the entry range. The
  plan is then checked on its real orders (each rung's own price): if risk, notional or margin is
  over, the size is cut further. So `risk_usd <= equity * risk%` holds exactly, with no epsilon.
- Leverage = the signal's, else the default, clamped to MAX_LEVERAGE and the instrument's maximum.
- A zone (two entries) is a ladder across it: both ends and the middle, fewer rungs when a rung
  would be under minSize. Three or more entries are one rung per price. Rungs are ordered as they
  would fill (long: highest first; short: lowest first). See `risk_orders` for the cutting rules.
- A non-positive max_signal_age_seconds disables the age check; a posted_at further in the future
  than that age is refused as invalid (a wrong clock is doubt, and doubt is no trade).
- A signal without posted_at counts as posted when the server received it (its age is 0; the plan's
  notes say so). The bot always sends posted_at; a source that may deliver late (a queue, retries
  over minutes) must send it too, or its late signals are traded as fresh. Refusing such signals
  would refuse every hand-written curl for no safety gain on a source that sends at once.
- The fat-finger guard has two limits. An entry price is compared with the mark
  (MAX_ENTRY_DEVIATION_PERCENT, 5% by default): a limit far from the market is likely a typo or the
  wrong symbol. A market entry has no price of its own, so its stop loss and first target are
  compared with the mark instead, under MAX_STOP_DISTANCE_PERCENT (50% by default): a swing trade's
  stop is often 10-30% away and must not be refused as a fat finger, while a stop or target half
  the price away (a wrong decimal, another coin's prices) still is. The size follows the stop
  distance, so a wide stop means a small trade, never more risk.
- Equal targets. A price written twice among the targets is refused: the trader gave two targets
  and one of them is very likely a typo (when in doubt, no trade). Distinct prices that the tick grid
  cannot tell apart (62000.04 and 62000.02 on a 0.1 tick) are what the trader meant, only finer
  than the exchange allows: they become one target at that price carrying both shares of the size
  (the plan's notes name them), so no two orders of a plan ever share a price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from enum import StrEnum

from hit_server.exchange.instruments import Instrument
from hit_server.risk.orders import PlannedOrder, ladder, merge_equal_prices, split_take_profits
from hit_server.risk.sizing import Levels, Sizing, fit_size, show
from hit_shared.models import Side, TradeSignal, consistency_problem, fmt

__all__ = [
    "MarketView",
    "PlannedOrder",
    "RejectCode",
    "Rejection",
    "RiskLimits",
    "TradePlan",
    "assess",
    "ladder",
    "split_take_profits",
]

LIVE_UNKNOWN = "no such instrument is traded on BloFin"
PAPER_UNKNOWN = (
    "not in the paper catalogue (paper mode trades the simulator's list of USDT perpetuals: GET "
    "/api/v1/paper/prices shows it; demo and live trading know BloFin's full list)"
)
_PRECISION = 60  # enough for exact products of the short decimals prices and sizes are


@dataclass(frozen=True, slots=True)
class RiskLimits:
    risk_per_trade_percent: Decimal  # Decimal("1") = 1% of equity lost between entry and stop
    max_position_size_usd: Decimal  # notional cap (contracts * contractValue * entry price)
    default_leverage: int
    max_leverage: int
    max_open_positions: int
    max_entry_deviation_percent: Decimal  # fat-finger guard: an entry price against the mark price
    max_signal_age_seconds: int  # <= 0 disables the age check
    margin_mode: str = "cross"
    fee_buffer_percent: Decimal = Decimal("0.2")  # of notional, kept free beside the margin for fees
    max_stop_distance_percent: Decimal = Decimal(50)  # fat-finger guard of a market entry's stop and TP1
    # paper mode trades the simulator's catalogue, not BloFin's list: an unknown symbol is told so
    paper_catalogue: bool = False


@dataclass(frozen=True, slots=True)
class MarketView:
    instrument: Instrument | None  # None = unknown symbol
    mark_price: Decimal
    equity: Decimal  # USDT account equity
    available: Decimal  # USDT available for margin
    open_positions: int  # our open trades/positions count
    symbols_with_open_trade: frozenset[str]
    halted: bool
    now: datetime  # injected clock (UTC)


@dataclass(frozen=True, slots=True)
class TradePlan:
    leverage: int
    size: Decimal  # total contracts
    entries: tuple[PlannedOrder, ...]  # one market order, one limit, or a ladder
    stop_loss: Decimal  # on the tick grid, rounded away from the entry
    take_profits: tuple[PlannedOrder, ...]  # TP prices with their sizes, summing to size
    risk_usd: Decimal  # loss if stopped out, from each entry order's own price
    notional_usd: Decimal
    reference_price: Decimal  # the entry price used for sizing (mark price for market)
    limited_by: str = "risk"  # risk | max_position_size_usd | margin | max_order_size
    notes: tuple[str, ...] = ()  # human sentences: what was clamped, capped, merged or assumed

    @property
    def is_market(self) -> bool:
        return len(self.entries) == 1 and self.entries[0].price is None


class RejectCode(StrEnum):
    HALTED = "halted"
    INVALID_SIGNAL = "invalid_signal"
    UNKNOWN_SYMBOL = "unknown_symbol"
    SYMBOL_SUSPENDED = "symbol_suspended"
    SYMBOL_ALREADY_OPEN = "symbol_already_open"
    TOO_MANY_POSITIONS = "too_many_positions"
    SIGNAL_TOO_OLD = "signal_too_old"
    NO_MARK_PRICE = "no_mark_price"
    STOP_ALREADY_CROSSED = "stop_already_crossed"
    TARGET_CROSSED = "target_crossed"
    ENTRY_TOO_FAR = "entry_too_far"
    SIZE_BELOW_MINIMUM = "size_below_minimum"
    INSUFFICIENT_MARGIN = "insufficient_margin"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a signal is no trade. The symbol is kept apart from the sentence so that no one adds it a
    second time: a caller that names the symbol itself (an event's "BTC-USDT long rejected: ...")
    writes `text`; the trader's answer is `reason`, which names it once."""

    code: RejectCode
    symbol: str
    text: str  # one human sentence, without the symbol

    @property
    def reason(self) -> str:
        """The sentence for the trader, naming the symbol once: `BTC-USDT: <text>`."""
        return f"{self.symbol}: {self.text}"


def assess(signal: TradeSignal, market: MarketView, limits: RiskLimits) -> TradePlan | Rejection:
    """A plan for this signal in this market, or the reason there is none."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return _assess(signal, market, limits)


def _assess(signal: TradeSignal, market: MarketView, limits: RiskLimits) -> TradePlan | Rejection:
    gate = _admission(signal, market, limits)
    if isinstance(gate, Rejection):
        return gate
    levels = _levels(signal, gate, market.mark_price)
    if isinstance(levels, Rejection):
        return levels
    problem = _crossed(signal, levels) or _too_far(signal, levels, limits)
    if problem:
        return problem
    leverage, notes = plan_leverage(signal, gate, limits)
    sized = fit_size(
        levels, gate, market.equity, market.available, limits.risk_per_trade_percent,
        limits.max_position_size_usd, limits.fee_buffer_percent, leverage,
    )
    if sized.size < gate.min_size:
        return _too_small(signal.symbol, sized, levels, market, limits, leverage)
    received = () if signal.posted_at is not None else (
        "no posted_at: the signal counts as posted when the server received it",
    )
    return TradePlan(
        leverage=leverage,
        size=sized.size,
        entries=sized.entries,
        stop_loss=levels.stop,
        take_profits=merge_equal_prices(split_take_profits(sized.size, levels.targets, gate)),
        risk_usd=sized.risk_usd,
        notional_usd=sized.notional_usd,
        reference_price=levels.reference,
        limited_by=sized.limited_by,
        notes=(*notes, *sized.notes, *_merged_targets(signal.take_profits, levels.targets, gate), *received),
    )


def _merged_targets(
    written: tuple[Decimal, ...], rounded: tuple[Decimal, ...], inst: Instrument
) -> tuple[str, ...]:
    """A note for each tick price that several (distinct) targets of the signal round to."""
    groups: dict[Decimal, list[str]] = {}
    for n, (price, on_tick) in enumerate(zip(written, rounded, strict=True), start=1):
        groups.setdefault(on_tick, []).append(f"TP{n} {fmt(price)}")
    return tuple(
        f"{' and '.join(names)} are one price on the {fmt(inst.tick_size)} tick ({fmt(on_tick)}): "
        "merged into one target carrying their shares"
        for on_tick, names in groups.items()
        if len(names) > 1
    )


def _reject(code: RejectCode, symbol: str, text: str) -> Rejection:
    return Rejection(code=code, symbol=symbol, text=text)


def _admission(signal: TradeSignal, market: MarketView, limits: RiskLimits) -> Instrument | Rejection:
    """The checks that need no price: the trading state, the signal itself and the symbol."""
    sym = signal.symbol
    if market.halted:
        return _reject(RejectCode.HALTED, sym, "trading is halted, no new trade is opened")
    problem = consistency_problem(
        signal.side, signal.entries, signal.stop_loss, signal.take_profits, signal.leverage
    )
    if problem:
        return _reject(RejectCode.INVALID_SIGNAL, sym, problem)
    repeated = _repeated_target(signal.take_profits)
    if repeated:
        return _reject(RejectCode.INVALID_SIGNAL, sym, repeated)
    inst = market.instrument
    if inst is None or inst.inst_id != sym:
        unknown = PAPER_UNKNOWN if limits.paper_catalogue else LIVE_UNKNOWN
        return _reject(RejectCode.UNKNOWN_SYMBOL, sym, unknown)
    if not inst.is_live:
        state = inst.state
        return _reject(RejectCode.SYMBOL_SUSPENDED, sym, f"the instrument is not trading (state {state})")
    if sym in market.symbols_with_open_trade:
        return _reject(RejectCode.SYMBOL_ALREADY_OPEN, sym, "a trade of ours is already open on this symbol")
    if market.open_positions >= limits.max_open_positions:
        return _reject(
            RejectCode.TOO_MANY_POSITIONS, sym,
            f"{market.open_positions} positions are open, the limit is {limits.max_open_positions}",
        )
    return _age_problem(signal, market.now, limits.max_signal_age_seconds) or inst


def _repeated_target(targets: tuple[Decimal, ...]) -> str | None:
    """The sentence for a price written twice among the targets (equal values: 62000 and 62000.0)."""
    for later, price in enumerate(targets[1:], start=2):
        first = targets.index(price) + 1
        if first < later:
            return (
                f"TP{first} and TP{later} are both {fmt(price)}: a target written twice is likely a "
                "typo; send each target once"
            )
    return None


def _age_problem(signal: TradeSignal, now: datetime, max_age: int) -> Rejection | None:
    if signal.posted_at is None or max_age <= 0:
        return None
    posted = signal.posted_at
    now, posted = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (now, posted))  # naive = UTC
    age = (now - posted).total_seconds()
    if age > max_age:
        return _reject(
            RejectCode.SIGNAL_TOO_OLD, signal.symbol,
            f"the signal was posted {int(age)} s ago, older than the {max_age} s limit",
        )
    if -age > max_age:
        return _reject(
            RejectCode.INVALID_SIGNAL, signal.symbol,
            f"the signal's posted_at is {int(-age)} s in the future; check the clocks",
        )
    return None


def _order_for_fill(side: Side, prices: set[Decimal]) -> tuple[Decimal, ...]:
    return tuple(sorted(prices, reverse=side is Side.LONG))


def _entry_rungs(signal: TradeSignal, inst: Instrument) -> tuple[Decimal, ...]:
    if len(signal.entries) == 2:
        low, high = sorted(signal.entries)
        prices = {inst.round_price(low), inst.round_price((low + high) / 2), inst.round_price(high)}
    else:
        prices = {inst.round_price(p) for p in signal.entries}
    return _order_for_fill(signal.side, prices)


def _levels(signal: TradeSignal, inst: Instrument, mark: Decimal) -> Levels | Rejection:
    """The signal's prices on the tick grid, still in the right order, with the sizing reference."""
    sym, long = signal.symbol, signal.side is Side.LONG
    if not mark.is_finite() or mark <= 0:
        return _reject(RejectCode.NO_MARK_PRICE, sym, "no usable mark price, so the trade cannot be sized")
    stop = inst.round_price(signal.stop_loss, "down" if long else "up")
    if stop <= 0:
        text = f"the stop loss {fmt(signal.stop_loss)} is under one tick"
        return _reject(RejectCode.INVALID_SIGNAL, sym, text)
    rungs = _entry_rungs(signal, inst)
    targets = tuple(inst.round_price(p) for p in signal.take_profits)
    for price in (*rungs, *targets):
        if price <= 0 or (price <= stop if long else price >= stop):
            return _reject(
                RejectCode.INVALID_SIGNAL, sym,
                f"price {fmt(price)} is within one tick ({fmt(inst.tick_size)}) of the stop {fmt(stop)}",
            )
    for target in targets:
        for rung in rungs:
            if target <= rung if long else target >= rung:
                return _reject(
                    RejectCode.INVALID_SIGNAL, sym,
                    f"target {fmt(target)} is within one tick of the entry {fmt(rung)}",
                )
    reference = (min(rungs) + max(rungs)) / 2 if rungs else mark
    return Levels(side=signal.side, mark=mark, rungs=rungs, stop=stop, targets=targets, reference=reference)


def _crossed(signal: TradeSignal, levels: Levels) -> Rejection | None:
    sym, mark, long = signal.symbol, levels.mark, signal.side is Side.LONG
    if mark <= levels.stop if long else mark >= levels.stop:
        return _reject(
            RejectCode.STOP_ALREADY_CROSSED, sym,
            f"the mark price {fmt(mark)} is already past the stop loss {fmt(levels.stop)}",
        )
    if levels.rungs:
        return None
    for n, target in enumerate(levels.targets, start=1):
        if mark >= target if long else mark <= target:
            return _reject(
                RejectCode.TARGET_CROSSED, sym,
                f"the mark price {fmt(mark)} is already past TP{n} {fmt(target)}, "
                "too late for a market entry",
            )
    return None


def _too_far(signal: TradeSignal, levels: Levels, limits: RiskLimits) -> Rejection | None:
    """The fat-finger guard (see the module docstring): entry prices, or a market entry's stop and TP1."""
    mark = levels.mark
    if levels.rungs:
        checked = [("entry", p) for p in levels.rungs]
        limit, setting = limits.max_entry_deviation_percent, "MAX_ENTRY_DEVIATION_PERCENT"
    else:
        checked = [("stop loss", levels.stop), ("TP1", levels.targets[0])]
        limit, setting = limits.max_stop_distance_percent, "MAX_STOP_DISTANCE_PERCENT"
    for what, price in checked:
        deviation = abs(price - mark) / mark * 100
        if deviation > limit:
            return _reject(
                RejectCode.ENTRY_TOO_FAR, signal.symbol,
                f"the {what} {fmt(price)} is {show(deviation, 2)}% from the mark price {fmt(mark)}, "
                f"more than the {fmt(limit)}% allowed ({setting})",
            )
    return None


def plan_leverage(signal: TradeSignal, inst: Instrument, limits: RiskLimits) -> tuple[int, tuple[str, ...]]:
    """The leverage a plan for `signal` uses, and the note when it is lower than asked."""
    requested = signal.leverage if signal.leverage is not None else limits.default_leverage
    used = max(1, min(requested, limits.max_leverage, inst.max_leverage))
    if used == requested:
        return used, ()
    bound = "MAX_LEVERAGE" if used == limits.max_leverage else f"the maximum of {inst.inst_id}"
    return used, (f"leverage {requested}x lowered to {used}x ({bound})",)


def _too_small(
    sym: str, sized: Sizing, levels: Levels, market: MarketView, limits: RiskLimits, leverage: int
) -> Rejection:
    inst_min = fmt(sized.min_size)
    raw = show(sized.raw_contracts, 4)
    if sized.limited_by == "margin":
        return _reject(
            RejectCode.INSUFFICIENT_MARGIN, sym,
            f"the {show(market.available, 2)} USDT available covers only {raw} contracts at {leverage}x "
            f"leverage, under the instrument's minimum of {inst_min}",
        )
    if sized.limited_by == "max_position_size_usd":
        why = f"MAX_POSITION_SIZE_USD of {show(limits.max_position_size_usd, 2)} USDT"
    elif sized.limited_by == "max_order_size":
        why = "the instrument's maximum order size"
    else:
        stop_pct = abs(levels.reference - levels.stop) / levels.reference * 100
        why = (
            f"risk {fmt(limits.risk_per_trade_percent)}% of {show(market.equity, 2)} USDT "
            f"with a {show(stop_pct, 2)}% stop"
        )
    return _reject(
        RejectCode.SIZE_BELOW_MINIMUM, sym,
        f"size {raw} contracts is under the instrument's minimum of {inst_min} ({why})",
    )
