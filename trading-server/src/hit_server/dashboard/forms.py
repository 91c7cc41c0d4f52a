"""Reading what a browser sends: form bodies and query strings, checked field by field.

Nothing here raises on bad input: each reader returns the value or a sentence saying what is wrong,
which the page shows (400), so a hand-edited URL or form never ends in a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs

from starlette.requests import Request

from hit_server.dashboard.reads import HistoryFilter
from hit_shared.models import SIGNAL_ID_PATTERN
from hit_shared.trade_actions import IDEMPOTENCY_KEY_PATTERN

SYMBOL = re.compile(r"^[A-Za-z0-9]{1,15}-[A-Za-z0-9]{1,15}$")
SIGNAL_ID = re.compile(SIGNAL_ID_PATTERN)
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
MAX_FIELD = 500


class BadInput(ValueError):
    """A field the user must fix; the message says which and how."""


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form body as one value per field (the first one given)."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput("The form could not be read (not UTF-8 text).") from exc
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=20)
    except ValueError as exc:  # more fields than any dashboard form has
        raise BadInput("The form could not be read (too many fields).") from exc
    return {name: values[0][:MAX_FIELD] for name, values in fields.items() if values}


def signal_id(value: str) -> str:
    if not SIGNAL_ID.fullmatch(value):
        raise BadInput("That is not a trade id.")
    return value


def idempotency_key(value: str | None) -> str:
    """The confirmation form's key: the API's rule for an Idempotency-Key."""
    if value is None or not IDEMPOTENCY_KEY.fullmatch(value):
        raise BadInput("This form is incomplete or was altered; go back, reload it and confirm again.")
    return value


def history_filter(query: Mapping[str, str]) -> HistoryFilter:
    """The History page's filters from its query string; empty fields mean "any"."""

    def field(name: str) -> str | None:
        value = (query.get(name) or "").strip()
        return value or None

    symbol, side, outcome = field("symbol"), field("side"), field("outcome")
    if symbol is not None and not SYMBOL.fullmatch(symbol):
        raise BadInput("Symbol: write it like BTC-USDT.")
    if side is not None and side not in ("long", "short"):
        raise BadInput("Side: long or short.")
    if outcome is not None and outcome not in ("win", "loss", "flat"):
        raise BadInput("Outcome: win, loss or flat.")
    source = field("source")
    if source is not None and len(source) > 128:
        raise BadInput("Source: at most 128 characters.")
    start, end = _date(field("from"), "From"), _date(field("to"), "To")
    if start is not None and end is not None and start > end:
        raise BadInput("The date range ends before it starts.")
    return HistoryFilter(
        symbol=symbol.upper() if symbol else None,
        source=source,
        side=side,
        outcome=outcome,
        start=start,
        end=end,
    )


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadInput(f"{name}: a date like 2026-01-31.") from exc


def price(value: str | None, name: str = "Price") -> Decimal:
    try:
        found = Decimal((value or "").strip())
    except InvalidOperation as exc:
        raise BadInput(f"{name}: a number like 3050.5.") from exc
    if not found.is_finite() or found <= 0 or found >= Decimal("1e12"):
        raise BadInput(f"{name}: a positive number.")
    return found


def fraction(value: str | None) -> Decimal:
    """A close's part as a percentage (1-100) turned into a fraction."""
    try:
        percent = Decimal((value or "100").strip())
    except InvalidOperation as exc:
        raise BadInput("Part to close: a percentage from 1 to 100.") from exc
    if not percent.is_finite() or percent <= 0 or percent > 100:
        raise BadInput("Part to close: a percentage from 1 to 100.")
    return percent / 100


def page_number(value: str | None) -> int:
    try:
        number = int(value or "1")
    except ValueError as exc:
        raise BadInput("Page: a whole number.") from exc
    if not 1 <= number <= 100_000:
        raise BadInput("Page: a whole number from 1.")
    return number
