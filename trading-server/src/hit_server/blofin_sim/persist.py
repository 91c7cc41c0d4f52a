"""The simulator's account saved to a JSON file and restored from it, so a paper exchange outlives a
restart of the server that runs it (the journal outlives it too: the two must agree).

What is saved is what BloFin keeps for an account: cash, last prices, margin and position mode,
leverage, positions, orders, TP/SL orders, every clientOrderId used, fills, closed positions and the id
counters (see `Simulator.reset`). What is not (`TRANSIENT`): the configuration (credentials, limits:
given again at every start), the instrument catalog, subscribers, the private WebSocket's event
backlog, the indexes rebuilt from the orders, and the adversarial test modes, which a restart ends.

One account: the simulator's default one (the configured key, the one paper mode trades on), with the
market's prices. Accounts added to a simulator (`POST /sim/accounts`, `SimConfig.accounts`: a fleet for
tests and benchmarks, see `registry.py`) are not saved: they start afresh with the simulator.

The file: `{"format": FORMAT, "version": VERSION, "saved_at_ms": ..., "account": {...}}`. Decimals are
strings (exact); a record (order, position, ...) is an object of its dataclass fields by name. It is
written atomically (a temporary file beside it, fsync, `os.replace`), so a crash leaves the previous
state or the new one, never half of one. A file that cannot be used raises `SavedStateError`, whose
message names the file and what to do: the caller must not start an empty exchange in its place
without deciding what happens to the trades that lived on it.

`autosave.AutoSave` keeps the file current; it saves through one `Encoder`, which remembers the text
of the records that can no longer change, so a save costs what is new or live, not the whole history.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import tempfile
import time
from dataclasses import fields, is_dataclass
from decimal import Decimal
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from .engine import Simulator
from .models import ClosedPosition, Fill, MarginMode, SimOrder, SimPosition, SimTpsl

R = TypeVar("R")
PositionMode = Literal["net_mode", "long_short_mode"]

FORMAT = "hit-paper-exchange"
VERSION = 1

# Simulator attributes deliberately not saved (see the module docstring); a test checks that every
# attribute of a Simulator is either saved (`SAVED`) or named here.
TRANSIENT = frozenset({
    "config", "clock_ms", "subscribers", "events",
    "market", "starting_balance", "first_id",  # given at construction; the prices are saved: `summary`
    "orders_by_client_id", "tpsl_by_client_id", "_open_orders", "_live_tpsl",  # rebuilt from the records
    # adversity.py's test modes:
    "client_id_used_at", "lag", "duplicate_window_ms", "partial_fraction", "attached_tpsl_lost",
    "item_faults",
})
SAVED = frozenset({
    "cash", "margin_mode", "position_mode", "leverage", "positions", "orders", "tpsl_orders",
    "used_client_ids", "fills", "position_history", "_ids", "_seq",
})


class SavedStateError(Exception):
    """The saved account cannot be used; the message says which file, why, and what to do."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"The paper exchange's saved state {path} cannot be used: {why}. If you have a good copy, "
            f"put it back. Otherwise move {path.name} aside (or delete it) and start again: the paper "
            "exchange then starts afresh, and the journal's open paper trades are ended as "
            "'paper exchange reset' (their P&L is not counted)."
        )
        self.path = path


# -- records <-> JSON ------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """`json.dumps`' hook for what JSON lacks: decimals as strings, a record as the object of its
    fields (the instance's own dict: the simulator's records are plain dataclasses, no other
    attributes), which the encoder then writes, nested records included, at C speed."""
    if isinstance(value, Decimal):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return vars(value)
    raise TypeError(f"{type(value).__name__} is not part of a saved account")


_FIELDS: dict[type, tuple[tuple[str, Any], ...]] = {}


def _fields_of(cls: type) -> tuple[tuple[str, Any], ...]:
    """A record class's field names with their resolved types (resolving them is slow: once each)."""
    typed = _FIELDS.get(cls)
    if typed is None:
        hints = get_type_hints(cls)
        typed = _FIELDS[cls] = tuple((f.name, hints[f.name]) for f in fields(cls))
    return typed


def record(cls: type[R], raw: Any, where: str) -> R:
    """The record of type `cls` that `jsonable` wrote; ValueError naming `where` if it does not fit."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where} is not an object")
    typed = _fields_of(cls)
    missing = [name for name, _ in typed if name not in raw]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}")
    return cls(**{name: _field(hint, raw[name], f"{where}.{name}") for name, hint in typed})


def _field(hint: Any, raw: Any, where: str) -> Any:
    options = get_args(hint) if get_origin(hint) in (Union, UnionType) else (hint,)
    if raw is None and type(None) in options:
        return None
    for option in options:
        if option is Decimal and isinstance(raw, str):
            return decimal(raw, where)
        if is_dataclass(option) and isinstance(raw, dict):
            return record(option, raw, where)  # type: ignore[arg-type]
        if get_origin(option) is Literal and raw in get_args(option):
            return raw
        if option in (int, str, bool) and type(raw) is option:
            return raw
    raise ValueError(f"{where} has an unexpected value {raw!r}")


def decimal(raw: Any, where: str) -> Decimal:
    if not isinstance(raw, str):
        raise ValueError(f"{where} is not a decimal string")
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise ValueError(f"{where} is not a decimal: {raw!r}") from None
    if not value.is_finite():
        raise ValueError(f"{where} is not a finite decimal")
    return value


def _peek(counter: itertools.count[int]) -> int:
    """The value `next(counter)` would give; the counter is left as it was (itertools.count has no
    read-only accessor, so the value is read from its repr: `count(1000000007)`)."""
    return int(repr(counter).removeprefix("count(").removesuffix(")"))


# -- the account -----------------------------------------------------------------------------------


def summary(sim: Simulator) -> dict[str, Any]:
    """The account without its records (cash, prices, modes, leverage, used clientOrderIds, counters),
    as JSON values."""
    return {
        "cash": str(sim.cash),
        "prices": {inst_id: str(price) for inst_id, price in sorted(sim.prices.items())},
        "margin_mode": sim.margin_mode,
        "position_mode": sim.position_mode,
        "leverage": [
            {"inst_id": inst_id, "margin_mode": mode, "leverage": value}
            for (inst_id, mode), value in sorted(sim.leverage.items())
        ],
        "used_client_ids": sorted(sim.used_client_ids),
        "next_id": _peek(sim._ids),
        "next_seq": _peek(sim._seq),
    }


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=jsonable)


class Encoder:
    """Builds the file's text (call it on the thread that runs the simulator: it reads the records
    as they are). It remembers the text of every record the engine has finished with, which the
    engine never changes again: a fill, a closed position, an order no longer open, a TP/SL order no
    longer live. A paper account keeps every record, as BloFin's history does: encoding them all costs
    ~6 us each, ~35 ms at 1,000 signals, and a save holds the event loop (bench/server.py --rate 200:
    p99 7.6 -> 26-52 ms, +0.4 ms CPU a signal at 320 signals); with the finished ones remembered it
    costs what is new or live. What is remembered belongs to one account: it is forgotten when the
    simulator's id counter is replaced (a reset, a restore)."""

    def __init__(self) -> None:
        self._account: object | None = None
        self._finished: dict[str, str] = {}

    def dumps(self, sim: Simulator) -> str:
        if sim._ids is not self._account:
            self._account, self._finished = sim._ids, {}
        records = {
            "positions": [_json(p) for p in sim.positions.values()],
            "orders": [self._text(o, None if o.is_open else f"o{o.order_id}") for o in sim.orders.values()],
            "tpsl_orders": [
                self._text(t, None if t.state == "live" else f"t{t.tpsl_id}")
                for t in sim.tpsl_orders.values()
            ],
            "fills": [self._text(f, f"f{f.trade_id}") for f in sim.fills],
            "position_history": [self._text(c, f"h{c.history_id}") for c in sim.position_history],
        }
        lists = "".join(f',"{key}":[{",".join(texts)}]' for key, texts in records.items())
        head = _json({"format": FORMAT, "version": VERSION, "saved_at_ms": time.time_ns() // 1_000_000})
        return f'{head[:-1]},"account":{_json(summary(sim))[:-1]}{lists}}}}}'

    def _text(self, record: Any, finished_key: str | None) -> str:
        if finished_key is None:
            return _json(record)
        text = self._finished.get(finished_key)
        if text is None:
            text = self._finished[finished_key] = _json(record)
        return text


def restore(sim: Simulator, account: Any) -> None:
    """Put the saved `account` into `sim` (after a reset; its subscribers stay). Raises ValueError,
    leaving `sim` untouched, when the account does not fit this simulator."""
    if not isinstance(account, dict):
        raise ValueError("the account is not an object")
    positions = _records(account, "positions", SimPosition)
    orders = _records(account, "orders", SimOrder)
    tpsl_orders = _records(account, "tpsl_orders", SimTpsl)
    fills = _records(account, "fills", Fill)
    history = _records(account, "position_history", ClosedPosition)
    named = (
        {p.inst_id for p in positions} | {o.inst_id for o in orders} | {t.inst_id for t in tpsl_orders}
        | {f.inst_id for f in fills} | {c.position.inst_id for c in history}
    )
    unknown = named - sim.instruments.keys()
    if unknown:
        raise ValueError(f"it names instruments this simulator does not list: {', '.join(sorted(unknown))}")
    prices = {k: decimal(v, f"prices.{k}") for k, v in _mapping(account, "prices").items()}
    margin_mode: MarginMode = _field(MarginMode, account.get("margin_mode"), "margin_mode")
    position_mode = _field(PositionMode, account.get("position_mode"), "position_mode")
    leverage = _leverage(account)
    used = account.get("used_client_ids")
    if not isinstance(used, list) or not all(isinstance(cid, str) for cid in used):
        raise ValueError("used_client_ids is not a list of strings")
    cash = decimal(account.get("cash"), "cash")
    next_id = _field(int, account.get("next_id"), "next_id")
    next_seq = _field(int, account.get("next_seq"), "next_seq")

    sim.reset()
    sim.cash = cash
    sim.load_prices({k: v for k, v in prices.items() if k in sim.instruments})
    sim.margin_mode, sim.position_mode, sim.leverage = margin_mode, position_mode, leverage
    sim.positions = {p.inst_id: p for p in positions}
    sim.orders = {o.order_id: o for o in orders}
    sim.orders_by_client_id = {o.client_order_id: o for o in orders if o.client_order_id}
    sim._open_orders = {o.order_id: o for o in orders if o.is_open}
    sim.tpsl_orders = {t.tpsl_id: t for t in tpsl_orders}
    sim.tpsl_by_client_id = {t.client_order_id: t for t in tpsl_orders if t.client_order_id}
    sim._live_tpsl = {t.tpsl_id: t for t in tpsl_orders if t.state == "live"}
    sim.rewatch()
    sim.used_client_ids = set(used)
    sim.fills = fills
    sim.position_history = history
    sim._ids = itertools.count(next_id)
    sim._seq = itertools.count(next_seq)


def _records(account: dict[str, Any], key: str, cls: type[R]) -> list[R]:
    rows = account.get(key)
    if not isinstance(rows, list):
        raise ValueError(f"{key} is not a list")
    return [record(cls, row, f"{key}[{n}]") for n, row in enumerate(rows)]


def _leverage(account: dict[str, Any]) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for n, row in enumerate(_rows(account, "leverage")):
        where = f"leverage[{n}]"
        key = (_field(str, row.get("inst_id"), where), _field(MarginMode, row.get("margin_mode"), where))
        found[key] = _field(int, row.get("leverage"), where)
    return found


def _mapping(account: dict[str, Any], key: str) -> dict[str, Any]:
    value = account.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{key} is not an object")
    return value


def _rows(account: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = account.get(key)
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise ValueError(f"{key} is not a list of objects")
    return value


# -- the file --------------------------------------------------------------------------------------


def dumps(sim: Simulator) -> str:
    """The file's text for the account as it is now (call on the thread that runs the simulator)."""
    return Encoder().dumps(sim)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a crash at any moment leaves the old file or the new one."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def save(sim: Simulator, path: Path) -> None:
    write_atomically(path, dumps(sim))


def load(sim: Simulator, path: Path) -> bool:
    """Restore the account saved at `path` into `sim`: True if restored, False if there is no file.
    Raises SavedStateError when the file exists but cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError) as exc:
        raise SavedStateError(path, f"it cannot be read ({exc})") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise SavedStateError(path, f"it is not valid JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SavedStateError(path, "it is not a saved paper exchange")
    if document.get("version") != VERSION:
        raise SavedStateError(
            path, f"it has format version {document.get('version')!r}, and this version reads {VERSION}"
        )
    try:
        restore(sim, document.get("account"))
    except ValueError as exc:
        raise SavedStateError(path, f"its content is damaged ({exc})") from exc
    return True
