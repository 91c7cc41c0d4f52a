"""`python -m hit_bot.parser`: see how a message reads, parse a JSON-lines stream, or score a corpus.

    python -m hit_bot.parser "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000"   (and how it was read)
    python -m hit_bot.parser --jsonl < messages.jsonl
    python -m hit_bot.parser --score corpus.jsonl [--json] [--min-recall 0.95]

`--jsonl` reads one JSON object per line (`{"text": "..."}`) and writes one JSON line per input line, in
order, flushed at once: `{"ok": true, "format": ..., "signal": {...}}` (prices as decimal strings),
`{"ok": false, "kind": "management", "action": ..., "symbol": ..., "price": ..., "fraction": ...,
"breakeven": ..., "targets": [...], "reason": ..., "error": null}` for a management message (prices and
the fraction as decimal strings or null), `{"ok": false, "error": null}` for a message that is not a
signal, `{"ok": false, "error": "<reason>"}` for a broken signal or an input line that is not a JSON
object with a string `text`. Blank lines are
skipped. The exit status is 0 for a stream; for one message it is 0 only when it is a signal.

`--score` reads a corpus of messages with their expected outcome: signals (`expect`) and management
messages (`action`), one corpus may hold both (format and figures: hit_bot/scoring.py); it prints the
score, or with `--json` one JSON object. Exit status: 0 when nothing was traded that should not be, no
money action was read that a message did not ask for, and the recall (of signals, and of management
messages) is at least `--min-recall` (default 0); 1 otherwise; 2 when the corpus can't be read (a
missing file, a bad line: the message names it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from hit_bot import scoring
from hit_bot.parser import ParseResult, parse
from hit_bot.parsing.explain import explain
from hit_bot.parsing.management import Management
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


def management_json(management: Management) -> dict[str, Any]:
    """A management reading as plain JSON values, prices and the fraction as decimal strings (or null)."""
    return {
        "ok": False,
        "kind": "management",
        "action": management.action.value,
        "symbol": management.symbol,
        "price": None if management.price is None else fmt(management.price),
        "fraction": None if management.fraction is None else fmt(management.fraction),
        "breakeven": management.breakeven,
        "targets": [fmt(p) for p in management.targets],
        "reason": management.reason,
        "error": None,
    }


def result_json(result: ParseResult) -> dict[str, Any]:
    if result.signal is not None:
        return {"ok": True, "format": result.format, "signal": signal_json(result.signal)}
    if result.management is not None:
        return management_json(result.management)
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
    if result.management is not None:
        return describe_management(result.management)
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


def describe_management(m: Management) -> str:
    """A person's view of a management reading, several lines (its action, then the figures it has)."""
    rows = [("action", m.action.value), ("symbol", m.symbol or "not named")]
    if m.breakeven:
        rows.append(("stop to", "breakeven (the entry)"))
    elif m.price is not None:
        rows.append(("price", fmt(m.price)))
    if m.fraction is not None:
        rows.append(("part", f"{fmt(m.fraction)} of the position"))
    if m.targets:
        rows.append(("targets", ", ".join(fmt(p) for p in m.targets) + (" (added)" if m.added else "")))
    rows.append(("why", m.reason))
    kind = "asks for an action" if m.moves_money else "a report: nothing to do"
    return "\n".join([f"management ({kind})", *(f"  {k + ':':<14}{v}" for k, v in rows)])


# -- reporting -------------------------------------------------------------------------------------------

_HEADINGS: dict[scoring.ProblemKind, str] = {
    "false_trade": "FALSE TRADES (a trade where none was expected)",
    "unasked_money": "MONEY ACTIONS NOT ASKED FOR (management read as an action the message did not ask)",
    "wrong": "READ WRONG (traded, with a field wrong)",
    "missed": "MISSED (an expected signal not traded)",
    "management_wrong": "MANAGEMENT READ WRONG (the action or a field wrong, no money action it did not ask)",
    "management_missed": "MANAGEMENT MISSED (not read as management)",
}
_FAMILY_COLUMNS = ("cases", "right", "wrong", "missed", "not_traded", "false_trades")


def verdict(tally: scoring.Score, min_recall: float) -> str:
    """`PASS`, or `FAIL: ` and what failed."""
    failures = []
    if tally.false_trades:
        failures.append(f"{tally.false_trades} false trade{'s' if tally.false_trades > 1 else ''}")
    if tally.unasked_money:
        failures.append(
            f"{tally.unasked_money} money action{'s' if tally.unasked_money > 1 else ''} not asked for"
        )
    if tally.recall is not None and tally.recall < min_recall:
        failures.append(f"recall {tally.recall:.1%} is under the minimum {min_recall:.1%}")
    rate = tally.management_rate
    if rate is not None and rate < min_recall:
        failures.append(f"management read right {rate:.1%} is under the minimum {min_recall:.1%}")
    return "FAIL: " + ", ".join(failures) if failures else "PASS"


def report_json(tally: scoring.Score, min_recall: float) -> dict[str, Any]:
    """The whole score as plain JSON values (hit_bot.scoring says what each figure means)."""
    return {
        "corpus": tally.corpus,
        "cases": tally.cases,
        "signals": {
            "total": tally.signals,
            "right": tally.right,
            "wrong": tally.wrong,
            "missed": tally.missed,
            "recall": tally.recall,
        },
        "non_signals": {
            "total": tally.non_signals,
            "ignored": tally.ignored,
            "refused": tally.refused,
            "false_trades": tally.false_trades,
        },
        "fields": {
            name: {"right": tally.fields_right[name], "of": tally.signals_read} for name in scoring.FIELDS
        },
        "families": {
            name: {column: getattr(family, column) for column in _FAMILY_COLUMNS}
            for name, family in sorted(tally.families.items())
        },
        "management": {
            "total": tally.management,
            "right": tally.management_right,
            "wrong": tally.management_wrong,
            "missed": tally.management_missed,
            "read_as_signal": tally.management_traded,
            "rate": tally.management_rate,
            "money_actions_not_asked": tally.unasked_money,
            "by_action": {
                action: {"right": tally.actions_right[action], "of": count}
                for action, count in sorted(tally.actions.items())
            },
        },
        "problems": [
            {"id": p.case.id, "line": p.case.line, "kind": p.kind, "detail": p.detail, "text": p.case.text}
            for p in tally.problems
        ],
        "min_recall": min_recall,
        "passed": tally.passes(min_recall),
    }


def _one_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def report_text(tally: scoring.Score, min_recall: float) -> str:
    """The score for a person: totals first, then each problem with its message, then the verdict."""
    lines = [f"{tally.corpus}: {tally.cases} messages scored"]
    if tally.signals or tally.non_signals:
        lines += _signal_lines(tally)
    if tally.management:
        lines += _management_lines(tally)
    for kind, heading in _HEADINGS.items():
        found = [p for p in tally.problems if p.kind == kind]
        if found:
            lines += ["", heading]
            for p in found:
                lines += [
                    f"  {p.case.id} (line {p.case.line}): {p.detail}",
                    f"      {_one_line(p.case.text)}",
                ]
    if tally.families:
        lines += ["", *_family_table(tally.families)]
    return "\n".join([*lines, "", verdict(tally, min_recall)])


def _signal_lines(tally: scoring.Score) -> list[str]:
    recall = "n/a" if tally.recall is None else f"{tally.recall:.1%}"
    fields = ", ".join(f"{name} {tally.fields_right[name]}/{tally.signals_read}" for name in scoring.FIELDS)
    false_trades = tally.false_trades - tally.management_traded
    return [
        f"signals      {tally.signals:>5}   read right {tally.right}, read wrong {tally.wrong}, "
        f"missed {tally.missed}   recall {recall}",
        f"non-signals  {tally.non_signals:>5}   ignored {tally.ignored}, refused {tally.refused}, "
        f"FALSE TRADES {false_trades}",
        f"fields right (of {tally.signals_read} signals read): {fields}",
    ]


def _management_lines(tally: scoring.Score) -> list[str]:
    rate = "n/a" if tally.management_rate is None else f"{tally.management_rate:.1%}"
    actions = ", ".join(f"{a} {tally.actions_right[a]}/{n}" for a, n in sorted(tally.actions.items()))
    return [
        f"management   {tally.management:>5}   read right {tally.management_right}, "
        f"read wrong {tally.management_wrong}, not read as management {tally.management_missed}   "
        f"read right {rate}",
        f"             MONEY ACTIONS NOT ASKED FOR {tally.unasked_money}, "
        f"read as a signal (FALSE TRADES) {tally.management_traded}",
        f"by action (right/of): {actions}",
    ]


def _family_table(families: dict[str, scoring.Family]) -> list[str]:
    """One row per family, its name as wide as the longest (up to 32 characters)."""
    width = min(32, max(len("by family"), *(len(name) for name in families)))
    header = "by family".ljust(width) + "".join(f"  {c.replace('_', ' ')}" for c in _FAMILY_COLUMNS)
    rows = [header]
    for name, family in sorted(families.items()):
        counts = "".join(f"  {getattr(family, c):>{len(c)}}" for c in _FAMILY_COLUMNS)
        rows.append(_one_line(name, width).ljust(width) + counts)
    return rows


def _recall(value: str) -> float:
    """argparse type of --min-recall: a share from 0 to 1."""
    try:
        share = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number from 0 to 1") from None
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not a number from 0 to 1")
    return share


def run_score(path: str, *, as_json: bool, min_recall: float) -> int:
    """Scores the corpus at `path` and prints the report; the exit status (see the module docstring)."""
    try:
        cases = scoring.read_corpus(Path(path))
    except scoring.CorpusError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    tally = scoring.score(cases, path)
    if as_json:
        sys.stdout.write(json.dumps(report_json(tally, min_recall), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(report_text(tally, min_recall) + "\n")
    return 0 if tally.passes(min_recall) else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hit_bot.parser", description="Parse trade signals.")
    ap.add_argument("text", nargs="?", help="one message (default: read it from standard input)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--jsonl", action="store_true", help="read JSON lines {'text': ...} from stdin")
    mode.add_argument("--score", metavar="CORPUS", help="score the parser on a JSON-lines corpus")
    ap.add_argument("--json", action="store_true", help="with --score: the report as one JSON object")
    ap.add_argument(
        "--min-recall", type=_recall, default=0.0, help="with --score: fail under this share (0 to 1)"
    )
    args = ap.parse_args(argv)
    if args.score is None and (args.json or args.min_recall):
        ap.error("--json and --min-recall go with --score")
    if args.score is not None:
        if args.text is not None:
            ap.error("--score reads its messages from the corpus, not from the command line")
        return run_score(args.score, as_json=args.json, min_recall=args.min_recall)
    if args.jsonl:
        run_jsonl(iter(sys.stdin.buffer.readline, b""), sys.stdout.buffer)
        return 0
    text = args.text if args.text is not None else sys.stdin.read()
    result = parse(text)
    sys.stdout.write("\n".join([describe(result), *explain(text)]) + "\n")
    return 0 if result.kind == "signal" else 1
