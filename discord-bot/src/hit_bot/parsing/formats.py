"""The named signal formats. Each one says whether it explains a scanned message and which prices it
reads from it; direction, symbol, leverage and every consistency check are shared (hit_bot.parser).

To add a format: write a `SignalFormat` here (a `detect` and a `read`), add it to `PATTERNS` in
hit_bot/parser.py at the right priority (the first format whose `detect` is true wins), and give it its
own tests and a renderer in the round-trip property test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from hit_bot.parsing.scan import Scan, numbers


class Prices(NamedTuple):
    """The prices a format read; `market` is true when the entry is at market (entries then empty)."""

    entries: tuple[Decimal, ...]
    stops: tuple[Decimal, ...]
    take_profits: tuple[Decimal, ...]
    market: bool = False
    problem: str | None = None
    trigger: str | None = None  # the entry was written as a level to cross: `above 60500` (ABOVE)


@dataclass(frozen=True, slots=True)
class SignalFormat:
    """One named way of writing a signal; `example` is a canonical message of this format."""

    name: str
    example: str
    detect: Callable[[Scan], bool]
    read: Callable[[Scan], Prices]


def read_labelled(scan: Scan) -> Prices:
    """Prices from labels; without any entry label, the unlabelled prices before the first price label
    are the entries (`LONG BTC 60000 SL 58000 TP 65000`), and with none at all the entry is market."""
    problem = scan.problems[0] if scan.problems else None
    entries = scan.entries
    trigger = scan.entry_triggers[0] if scan.entry_triggers else None
    if scan.market and entries:
        problem = problem or "the entry is given both as market and as a price"
    elif not scan.market and not entries:
        if scan.unread_entries:
            problem = problem or f"its {scan.unread_entries[0]} has no price that can be read"
        entries = scan.orphans()
        trigger = scan.orphan_trigger() if entries else None
        if not entries and numbers(scan.header):
            # Market only when the message says so or has no entry at all: prices before the labels
            # that no label explains may be an entry the parser did not recognise.
            problem = problem or "it has prices outside any label and no entry: write Entry: or market"
    return Prices(tuple(entries), tuple(scan.stops), tuple(scan.targets), not entries, problem, trigger)


_NUM = r"[0-9]+(?:\.[0-9]+)?K?"
_CHAIN = re.compile(
    rf"(?<![A-Z0-9.#])(?P<entry>{_NUM}(?:[ ]*-[ ]*{_NUM})?|MARKET|CMP|NOW)[ ]*/[ ]*"
    rf"(?P<rest>{_NUM}(?:[ ]*/[ ]*{_NUM})+)(?![0-9.A-Z])"
)


def read_compact(scan: Scan) -> Prices:
    """`entry/stop/target[/target...]`, the entry a price, a `60000-59500` zone or a market word."""
    match = _CHAIN.search(scan.text)
    if match is None:
        return Prices((), (), ())
    entries = numbers(match["entry"].replace("-", " "))
    rest = numbers(match["rest"].replace("/", " "))
    return Prices(tuple(entries), tuple(rest[:1]), tuple(rest[1:]), not entries)


def _is_alert_card(scan: Scan) -> bool:
    text = scan.text
    return scan.labelled and ("SIGNAL ALERT" in text or ("PAIR" in text and "SIDE" in text))


def _is_compact(scan: Scan) -> bool:
    return not scan.labelled and "/" in scan.text and _CHAIN.search(scan.text) is not None


ALERT_CARD = SignalFormat(
    "alert_card",
    "**TRADING SIGNAL ALERT**\n**📝PAIR:** TIA/USDT __(LOW RISK)__🟢\n**SIDE:** __SHORT📉__\n"
    "**📍ENTRY:** `0.566409`\n**✖️SL:** `0.578367` (-36.73%)\n**TP1:** `0.560457` (16.81%)\n"
    "**⚖️LEVERAGE:** 16x\n**TP1:** 0.46 R:R",
    _is_alert_card,
    read_labelled,
)
COMPACT = SignalFormat("compact", "LONG BTCUSDT 60000/58000/65000", _is_compact, read_compact)
EMOJI = SignalFormat(
    "emoji",
    "📈 BTC-USDT 💰 60000 🛑 58000 🎯 65000",
    lambda scan: scan.labelled and scan.emoji,
    read_labelled,
)
LABELLED = SignalFormat(
    "labelled",
    "#BTC/USDT\nSignal Type: Regular (Long)\nLeverage: Cross 20x\nEntry Targets:\n1) 60000\n2) 59500\n"
    "Take-Profit Targets:\n1) 61000\n2) 62000\nStop Targets:\n1) 58000",
    lambda scan: scan.labelled and scan.multi_line,
    read_labelled,
)
STANDARD = SignalFormat(
    "standard", "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000", lambda scan: scan.labelled, read_labelled
)


DEFAULT_FORMATS = (ALERT_CARD, COMPACT, EMOJI, LABELLED, STANDARD)
