"""clientOrderIds derived from the signal_id, so a retry or a restart can only ever name the same
orders (rule 1: at most once) and an unknown outcome can be looked up instead of resent.

BloFin accepts up to 32 letters and digits. An id is the first 24 hex characters of
SHA-256(signal_id) (96 bits: collisions are not a practical concern) followed by a role code:
`e1`..`e20` entries, `t1`..`t10` take profits, `sl` the stop attached to the entries (as
journaled), `sl<k>` the k-th stop the executor placed on the position, `cl` a closing order; the
position monitor adds `t<n>b<k>` (take profit n of fill batch k), `s<k>` (its k-th stop) and
`c<k>` (a close at market); a trader's action on a trade (POST /api/v1/trades/{id}/close, ...) adds
`x<n>` (its close at market, n the action's number on the trade). `body_hash` fingerprints a
signal's canonical JSON to tell a retry (same body) from a conflict (same id, different body).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

from hit_shared.models import TradeSignal

PREFIX_LENGTH = 24
_VALID = re.compile(r"^[A-Za-z0-9]{1,32}$")


def signal_prefix(signal_id: str) -> str:
    return hashlib.sha256(signal_id.encode()).hexdigest()[:PREFIX_LENGTH]


def entry_id(signal_id: str, index: int) -> str:
    """The clientOrderId of entry number `index` (1-based)."""
    return _checked(f"{signal_prefix(signal_id)}e{index}")


def take_profit_id(signal_id: str, index: int) -> str:
    """The clientOrderId of take profit number `index` (1-based)."""
    return _checked(f"{signal_prefix(signal_id)}t{index}")


def stop_id(signal_id: str) -> str:
    return _checked(f"{signal_prefix(signal_id)}sl")


def stop_attempt_id(signal_id: str, attempt: int) -> str:
    """The `attempt`-th stop placed on the position by the executor (`Executor.ensure_stop`): a fresh
    id per attempt, so a lookup after an unclear answer can only find this attempt's order, never an
    earlier stop that was cancelled or has fired."""
    return _checked(f"{signal_prefix(signal_id)}sl{attempt}")


def close_id(signal_id: str) -> str:
    return _checked(f"{signal_prefix(signal_id)}cl")


def batch_take_profit_id(signal_id: str, index: int, batch: int) -> str:
    """Take profit `index` of fill batch `batch`, placed by the position monitor as entries fill."""
    return _checked(f"{signal_prefix(signal_id)}t{index}b{batch}")


def monitor_stop_id(signal_id: str, move: int) -> str:
    """The `move`-th stop the position monitor placed (repair, whole-position cover, breakeven)."""
    return _checked(f"{signal_prefix(signal_id)}s{move}")


_NUMBERED = {"batch": re.compile(r"^t[0-9]{1,2}b([0-9]{1,3})$"), "stop": re.compile(r"^s([0-9]{1,4})$")}


def last_number(client_order_ids: Iterable[str], kind: Literal["batch", "stop"]) -> int:
    """The highest fill batch (`t<n>b<k>`) or monitor stop (`s<k>`) number among these ids; 0 if none.
    The next batch or stop takes the next number: a number already journaled may have reached the
    exchange (its intent is journaled before it is sent), so it is never used again."""
    numbers = (_NUMBERED[kind].match(cid[PREFIX_LENGTH:]) for cid in client_order_ids)
    return max((int(m.group(1)) for m in numbers if m), default=0)


def monitor_close_id(signal_id: str, attempt: int) -> str:
    """A close at market by the position monitor (rule 2), one id per attempt."""
    return _checked(f"{signal_prefix(signal_id)}c{attempt}")


def action_close_id(signal_id: str, action: int) -> str:
    """The close at market sent by the trader's `action`-th action on the trade (a full or partial close):
    derived from the action's number, so a retry or a restart finds it instead of sending another. Not a
    close for safety (`is_close_of`): a trade it closes ends as closed by hand (exit `manual`)."""
    return _checked(f"{signal_prefix(signal_id)}x{action}")


_CLOSE = re.compile(r"^(cl|c[0-9]{1,4})$")


def is_close_of(signal_id: str, client_order_id: str | None) -> bool:
    """Whether the id names a close at market of this signal's position that the server sent (`cl` by
    the executor, `c<k>` by the position monitor): closes for safety, when a stop could not be kept."""
    prefix = signal_prefix(signal_id)
    cid = client_order_id or ""
    return cid.startswith(prefix) and _CLOSE.match(cid[len(prefix):]) is not None


# Every form above, and nothing else: the kill switch and reconciliation touch only these.
_OURS = re.compile(
    rf"^[0-9a-f]{{{PREFIX_LENGTH}}}(e[0-9]{{1,2}}|t[0-9]{{1,2}}(b[0-9]{{1,3}})?|sl[0-9]{{0,3}}|cl|s[0-9]{{1,4}}|c[0-9]{{1,4}})$"
)


def is_ours(client_order_id: str | None) -> bool:
    """True for a clientOrderId this server derives; a trader's own orders (any other id, or none)
    are never touched by the kill switch."""
    return bool(client_order_id) and _OURS.match(client_order_id or "") is not None


def _checked(value: str) -> str:
    if not _VALID.match(value):
        raise ValueError(f"not a valid BloFin clientOrderId: {value!r}")
    return value


def body_hash(signal: TradeSignal) -> str:
    """SHA-256 of the signal's canonical JSON (sorted keys, no whitespace, decimals normalised)."""
    data = signal.model_dump(mode="json")
    for key in ("entries", "take_profits"):
        data[key] = [_norm(v) for v in data[key]]
    data["stop_loss"] = _norm(data["stop_loss"])
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _norm(value: str) -> str:
    """`60000`, `60000.0` and `6E+4` are the same price, so they hash alike."""
    return format(Decimal(value).normalize(), "f")
