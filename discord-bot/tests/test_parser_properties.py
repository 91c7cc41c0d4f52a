"""Property tests: the parser never raises, reads back a signal rendered in any named format, never
trades a signal that breaks a consistency rule, and never trades a management message (issue #17)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hit_bot.parser import INTERNAL_ERROR, PATTERNS, parse
from hit_shared.models import SignalCore, consistency_problem, fmt

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASES = ["BTC", "ETH", "SOL", "XRP", "DOGE", "TIA", "ARB", "AVAX", "1000PEPE", "WIF", "LINK", "SUI"]
# Coins whose price scale the parser does not check (hit_bot/parsing/checks.py): any magnitude reads.
UNSCALED_BASES = ["TIA", "ARB", "1000PEPE", "WIF", "SUI", "OP", "NEAR", "SEI"]
SIGNAL_WORDS = [
    "LONG", "SHORT", "BUY", "SELL", "Entry:", "SL:", "TP:", "TP1:", "Targets:", "Stop", "Leverage:", "10x",
    "x20", "BTC-USDT", "#ETH", "$SOL", "60000", "58,000", "0.5123", "-5", "(-6%)", "1)", "2.", "📈", "📉",
    "💰", "🛑", "🎯", "🟢", "🔴", "**", "__", "`", ">", "\n", "\r\n", "\t", "|", "/", "-", ",", "market",
    "CMP", "@", "R:R", "1-4%", "Cross", "(10.0X)", "1️⃣", "：", "６", "?", "hit", "http://x.y/1",
]


def _check(text: str) -> None:
    result = parse(text)
    assert result.kind in ("signal", "management", "not_signal", "invalid")
    assert result.reason != INTERNAL_ERROR
    assert (result.signal is not None) == (result.kind == "signal")
    assert (result.reason is not None) == (result.kind == "invalid")
    assert (result.management is not None) == (result.kind == "management")
    if result.management is not None:
        assert result.management.reason
        assert result.management.fraction is None or 0 < result.management.fraction < 1
    if result.signal is not None:
        s = result.signal
        assert result.format in PATTERNS
        assert consistency_problem(s.side, s.entries, s.stop_loss, s.take_profits, s.leverage) is None
        SignalCore.model_validate(s.model_dump())  # a produced signal passes full validation


@FAST
@given(st.text())
@example("")
@example("\x00\ud7ff\U0010ffff")
@example("LONG BTC-USDT Entry: 1e999 SL: 0.0 TP: 9" * 3)
def test_parser_never_raises_on_any_text(text: str) -> None:
    _check(text)


@FAST
@given(st.lists(st.sampled_from(SIGNAL_WORDS), max_size=40).map(" ".join))
def test_parser_never_raises_on_signal_like_word_soup(text: str) -> None:
    _check(text)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(min_size=4000, max_size=20000) | st.text(alphabet="0123456789.,-/ :LONGSHORTP", min_size=3000))
def test_parser_never_raises_on_long_text(text: str) -> None:
    _check(text)


PATHOLOGICAL = [
    "1" * 3999, "1," * 1999, "(1" * 1999, "1%" * 1999, "TP1 " * 999, "R:R 1" * 799, "\n1)" * 1300,
    "LONG BTC-USDT Entry: " + "1 " * 1980, "🎯1" * 1300, "1-" * 1999, "0," * 1999, "1 (" * 1333,
    "LONG BTCUSDT " + "1/" * 1990, "STOP LOSS TARGETS " * 222, "1K" * 1999, "#1" * 1999,
]


def test_parser_survives_pathological_repetitions() -> None:
    for text in PATHOLOGICAL:
        _check(text)


def test_parser_handles_huge_messages_quickly() -> None:
    assert parse("LONG BTC-USDT " + "60000 " * 100_000).kind != "signal"
    assert parse("9" * 50_000).kind == "not_signal"


@dataclass(frozen=True)
class Signal:
    long: bool
    base: str
    quote: str
    entries: tuple[Decimal, ...]
    stop: Decimal
    targets: tuple[Decimal, ...]
    leverage: int | None


@st.composite
def signals(draw: st.DrawFn, max_entries: int = 2, max_targets: int = 5) -> Signal:
    """A consistent signal whose prices share one magnitude (within the parser's 10x sanity bound)."""
    entries_n = draw(st.integers(0, max_entries))
    targets_n = draw(st.integers(1, max_targets))
    ints = sorted(draw(st.sets(st.integers(100, 900), min_size=1 + entries_n + targets_n,
                               max_size=1 + entries_n + targets_n)))
    unit = Decimal(1).scaleb(-draw(st.integers(-2, 6)))
    prices = [Decimal(i) * unit for i in ints]
    long = draw(st.booleans())
    if not long:
        prices.reverse()
    return Signal(
        long=long,
        base=draw(st.sampled_from(UNSCALED_BASES)),
        quote=draw(st.sampled_from(["USDT", "USDT", "USDC"])),
        entries=tuple(prices[1 : 1 + entries_n]),
        stop=prices[0],
        targets=tuple(prices[1 + entries_n :]),
        leverage=draw(st.none() | st.integers(1, 150)),
    )


def _side(s: Signal, style: int) -> str:
    word = "LONG" if s.long else "SHORT"
    return [word, word.lower(), word.capitalize(), "BUY" if s.long else "SELL", f"**{word}**"][style % 5]


def render_standard(s: Signal) -> str:
    entry = " - ".join(fmt(p) for p in s.entries) or "market"
    lev = f" Leverage: {s.leverage}x" if s.leverage else ""
    tps = ", ".join(fmt(p) for p in s.targets)
    return f"{_side(s, len(s.targets))} {s.base}-{s.quote} Entry: {entry} SL: {fmt(s.stop)} TP: {tps}{lev}"


def render_compact(s: Signal) -> str:
    entry = "-".join(fmt(p) for p in s.entries) or "market"
    lev = f" {s.leverage}x" if s.leverage else ""
    chain = "/".join([entry, fmt(s.stop), *(fmt(p) for p in s.targets)])
    return f"{_side(s, len(s.entries))} {s.base}{s.quote}{lev} {chain}"


def render_emoji(s: Signal) -> str:
    arrow = "📈" if s.long else "📉"
    entry = f" 💰 {' - '.join(fmt(p) for p in s.entries)}" if s.entries else ""
    lev = f" x{s.leverage}" if s.leverage else ""
    tps = " ".join(f"🎯 {fmt(p)}" for p in s.targets)
    return f"{arrow} {s.base}/{s.quote}{entry} 🛑 {fmt(s.stop)} {tps}{lev}"


def render_labelled(s: Signal) -> str:
    side = "Long" if s.long else "Short"
    lines = [f"#{s.base}/{s.quote}", f"Signal Type: Regular ({side})"]
    if s.leverage:
        lines.append(f"Leverage: Cross {s.leverage}x")
    lines.append("Entry Targets:")
    lines += [f"{i}) {fmt(p)}" for i, p in enumerate(s.entries, 1)] or ["market"]
    lines.append("Take-Profit Targets:")
    lines += [f"{i}) {fmt(p)}" for i, p in enumerate(s.targets, 1)]
    lines += ["Stop Targets:", f"1) {fmt(s.stop)}"]
    return "\r\n".join(lines) if len(s.targets) % 2 else "\n".join(lines)


def render_alert_card(s: Signal) -> str:
    side = "LONG📈" if s.long else "SHORT📉"
    risk = "__(LOW RISK)__🟢" if len(s.targets) % 2 else "__(HIGH RISK)__🔴"
    lines = ["**TRADING SIGNAL ALERT**", "", f"**📝PAIR:** {s.base}/{s.quote} {risk}", "",
             "**TYPE:** __SWING 🚀__", "**SIZE: 1-4%**", f"**SIDE:** __{side}__", ""]
    lines.append(f"**📍ENTRY:** `{fmt(s.entries[0])}`" if s.entries else "**📍ENTRY:** `CMP`")
    lines += [f"**✖️SL:** `{fmt(s.stop)}`          (-36.73%)", "", "**💰TAKE PROFIT TARGETS:**", ""]
    lines += [f"**TP{i}:** `{fmt(p)}`          ({i * 7}.81%)" for i, p in enumerate(s.targets, 1)]
    if s.leverage:
        lines += ["", f"**⚖️LEVERAGE:** {s.leverage}x"]
    lines.append("")
    lines += [f"**TP{i}:** 0.{i}6 R:R" for i in range(1, len(s.targets) + 1)]
    lines += ["", "**⚠️PROTECT YOUR CAPITAL, MANAGE RISK, LETS PRINT!**"]
    return "\n".join(lines)


RENDERERS: dict[str, tuple[Callable[[Signal], str], st.SearchStrategy[Signal]]] = {
    "standard": (render_standard, signals()),
    "compact": (render_compact, signals()),
    "emoji": (render_emoji, signals(max_entries=1)),
    "labelled": (render_labelled, signals(max_entries=4)),
    "alert_card": (render_alert_card, signals(max_entries=1)),
}


def test_parser_has_a_renderer_for_every_named_format() -> None:
    assert set(RENDERERS) == set(PATTERNS)


def _round_trip(name: str, s: Signal) -> None:
    render, _ = RENDERERS[name]
    text = render(s)
    result = parse(text)
    assert result.kind == "signal", (text, result.reason)
    assert result.format == name, text
    got = result.signal
    assert got is not None
    assert got.side.value == ("long" if s.long else "short")
    assert got.symbol == f"{s.base}-{s.quote}"
    assert got.entries == s.entries, text
    assert got.stop_loss == s.stop, text
    assert got.take_profits == s.targets, text
    assert got.leverage == s.leverage, text


@FAST
@given(st.data())
def test_parser_reads_back_a_signal_rendered_in_each_format(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(RENDERERS)))
    _round_trip(name, data.draw(RENDERERS[name][1]))


@st.composite
def broken_signals(draw: st.DrawFn) -> Signal:
    """A signal with exactly one price on the wrong side of the stop or an entry."""
    s = draw(signals(max_entries=2))
    how = draw(st.sampled_from(["stop_past_entry", "target_past_stop", "stop_is_entry", "target_past_entry"]))
    if how == "target_past_entry" and not s.entries:
        how = "target_past_stop"
    if how in ("stop_past_entry", "stop_is_entry") and not s.entries:
        how = "target_past_stop"
    towards_loss = Decimal("0.97") if s.long else Decimal("1.03")
    if how == "stop_past_entry":
        return Signal(s.long, s.base, s.quote, s.entries, s.targets[-1], s.targets, s.leverage)
    if how == "stop_is_entry":
        return Signal(s.long, s.base, s.quote, s.entries, s.entries[0], s.targets, s.leverage)
    if how == "target_past_entry":
        reference = min(s.entries) if s.long else max(s.entries)
        return Signal(s.long, s.base, s.quote, s.entries, s.stop, (*s.targets, reference), s.leverage)
    return Signal(s.long, s.base, s.quote, s.entries, s.stop, (s.stop * towards_loss, *s.targets), s.leverage)


@FAST
@given(broken_signals(), st.sampled_from(["standard", "compact", "emoji", "labelled"]))
def test_parser_never_trades_an_inconsistent_signal(s: Signal, name: str) -> None:
    if name == "emoji" and len(s.entries) > 1:
        s = Signal(s.long, s.base, s.quote, s.entries[:1], s.stop, s.targets, s.leverage)
    text = RENDERERS[name][0](s)
    result = parse(text)
    assert result.kind == "invalid", text
    assert result.reason


# Management phrases (issue #17) of every action and several languages, written around a coin, a price, a
# part, emoji and links the way channels write them: none may ever read as a signal.
MANAGEMENT_PHRASES = [
    "close {coin} now", "Closing {coin} at {price}", "Close {part} of {coin}", "Take {part} profit on {coin}",
    "Move SL to {price}", "SL to breakeven on {coin}", "New SL: {price}", "TP1 hit on {coin} {emoji}",
    "Stopped out on {coin}", "Cancel the {coin} limit order", "Add TP4 at {price}", "New targets: {price}",
    "Entry filled, avg {price}", "Закрываем {coin} по рынку", "Фиксируем {part}, стоп в безубыток",
    "Стоп переносим на {price}", "Тейк 1 есть {emoji}", "Выбило по стопу", "{coin} 止损移到 {price}",
    "{coin} 平仓一半", "止盈1已到达 {emoji}", "这单作废", "Stopu {price} seviyesine çekin", "TP1 geldi",
    "LONG {coin} update: SL moved to {price}, TP 2 {price}", "SHORT {coin}: close {part}, SL {price}",
]
COINS = ["BTC", "#ETH", "$SOL", "BTC-USDT", "ETHUSDT", "LONG XRP", "SHORT DOGE", "#1000PEPE"]
PARTS = ["half", "50%", "30%", "a third", "половину", "25%"]
EMOJI = ["✅", "🎯", "🔥🔥", "🚀", "", "[link](https://t.me/x)"]


@st.composite
def management_messages(draw: st.DrawFn) -> str:
    phrase = draw(st.sampled_from(MANAGEMENT_PHRASES))
    price = draw(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(90000), places=4))
    text = phrase.format(
        coin=draw(st.sampled_from(COINS)),
        price=fmt(price),
        part=draw(st.sampled_from(PARTS)),
        emoji=draw(st.sampled_from(EMOJI)),
    )
    case = draw(st.sampled_from([str, str.upper, str.lower]))
    before, after = draw(st.sampled_from(["", "**", "> "])), draw(st.sampled_from(["", "!", "\n🔥", " ✅"]))
    return before + case(text) + after


@FAST
@given(management_messages())
def test_parser_never_reads_a_management_message_as_a_signal(text: str) -> None:
    _check(text)
    assert parse(text).kind != "signal"
