"""`python -m hit_bot.parser`: see how a message reads, or parse a JSON-lines stream.

    python -m hit_bot.parser "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000"
    python -m hit_bot.parser --jsonl < messages.jsonl

`--jsonl` reads one JSON object per line (`{"text": "..."}`) and writes one JSON line per input line, in
order, flushed at once: `{"ok": true, "format": ..., "signal": {...}}` (prices as decimal strings),
`{"ok": false, "error": null}` for a message that is not a signal, `{"ok": false, "error": "<reason>"}`
for a broken signal or an input line that is not a JSON object with a string `text`. Blank lines are
skipped. The exit status is 0 for a stream; for one message it is 0 only when it is a signal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any, BinaryIO

from hit_bot.parser import ParseResult, parse
from hit_shared.models import SignalCore, fmt


def signal_json(signal: SignalCore) -> dict[str, Any]:
    """A signal as plain JSON values, prices as decimal strings (never floats)."""
    return {
        "side": signal.side.value,
        "symbol": signal.symbol,
        "entries": [fmt(p) for p in signal.entries],
        "stop_loss": fmt(signal.stop_loss),
        "take_profits": [fmt(p) for p in signal.take_profits],
        "leverage": signal.leverage,
    }


def result_json(result: ParseResult) -> dict[str, Any]:
    if result.signal is not None:
        return {"ok": True, "format": result.format, "signal": signal_json(result.signal)}
    if result.format is None:
        return {"ok": False, "error": result.reason}
    return {"ok": False, "format": result.format, "error": result.reason}


def _line_result(raw: bytes, number: int) -> dict[str, Any]:
    try:
        item = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return {"ok": False, "error": f"input line {number} is not valid UTF-8"}
    except json.JSONDecodeError as exc:
        return {"ok": False, "error": f"input line {number} is not valid JSON ({exc.msg})"}
    except RecursionError:
        return {"ok": False, "error": f"input line {number} is nested too deeply to read"}
    if not isinstance(item, dict):
        return {"ok": False, "error": f"input line {number} is not a JSON object"}
    text = item.get("text")
    if not isinstance(text, str):
        return {"ok": False, "error": f'input line {number} has no string field "text"'}
    return result_json(parse(text))


def run_jsonl(lines: Iterable[bytes], out: BinaryIO) -> int:
    """Answers each non-blank input line with one JSON line, flushed; returns how many it answered."""
    answered = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        reply = json.dumps(_line_result(raw, number), ensure_ascii=False) + "\n"
        out.write(reply.encode("utf-8"))
        out.flush()
        answered += 1
    return answered


def describe(result: ParseResult) -> str:
    """A person's view of a parse result, several lines."""
    if result.kind == "not_signal":
        return "not a signal (ignored)"
    if result.signal is None:
        return f"invalid signal ({result.format or 'unknown format'}): {result.reason}"
    s = result.signal
    rows = [
        ("side", s.side.value.upper()),
        ("symbol", s.symbol),
        ("entries", ", ".join(fmt(p) for p in s.entries) or "market"),
        ("stop loss", fmt(s.stop_loss)),
        ("take profits", ", ".join(fmt(p) for p in s.take_profits)),
        ("leverage", f"{s.leverage}x" if s.leverage else "not given"),
    ]
    return "\n".join([f"signal ({result.format})", *(f"  {k + ':':<14}{v}" for k, v in rows)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hit_bot.parser", description="Parse trade signals.")
    ap.add_argument("text", nargs="?", help="one message (default: read it from standard input)")
    ap.add_argument("--jsonl", action="store_true", help="read JSON lines {'text': ...} from stdin")
    args = ap.parse_args(argv)
    if args.jsonl:
        run_jsonl(iter(sys.stdin.buffer.readline, b""), sys.stdout.buffer)
        return 0
    text = args.text if args.text is not None else sys.stdin.read()
    result = parse(text)
    sys.stdout.write(describe(result) + "\n")
    return 0 if result.kind == "signal" else 1
