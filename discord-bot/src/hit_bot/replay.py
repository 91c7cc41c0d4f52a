"""Replay a file of messages through the bot's own parse -> forward -> outcome path, without Discord.

A file is JSONL (one `{"text": ...}` per line) when it ends in .jsonl, else plain text with messages
separated by blank lines. Message n (from 1) gets signal_id `replay:<file-stem>:<n>`, so replaying the
same file twice trades nothing new: the server answers the stored outcome.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from hit_bot.pipeline import Forwarded, Origin, Outcome, Parser, process, reason_of, verdict
from hit_bot.trading_client import Delivered, TradingClient
from hit_shared.logs import signal_context

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class ReplayFileError(Exception):
    """The file cannot be read as messages; the message says where and why."""


@dataclass(frozen=True, slots=True)
class ReplayRow:
    number: int
    signal_id: str
    outcome: Outcome

    @property
    def summary(self) -> str:
        outcome = self.outcome
        if isinstance(outcome, Forwarded):
            s = outcome.signal
            text = f"{s.side.value} {s.symbol}"
            if isinstance(outcome.result, Delivered) and outcome.result.replayed:
                text += " (already received)"
            reason = reason_of(outcome)
            return f"{text}: {reason}" if reason else text
        return reason_of(outcome) or ""


def read_messages(path: Path) -> list[str]:
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayFileError(f"cannot read {path}: {exc}") from None
    if path.suffix.lower() == ".jsonl":
        messages = []
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                raise ReplayFileError(f"{path}:{number} is not valid JSON") from None
            if not isinstance(item, dict) or not isinstance(item.get("text"), str):
                raise ReplayFileError(f'{path}:{number} needs a "text" string')
            messages.append(item["text"])
        return messages
    return [block.strip() for block in re.split(r"\n\s*\n", content) if block.strip()]


def signal_prefix(path: Path) -> str:
    stem = _UNSAFE.sub("-", path.stem).strip("-") or "file"
    return f"replay:{stem[:80]}"


async def replay(path: Path, *, parse: Parser, client: TradingClient) -> list[ReplayRow]:
    """Send each message of the file, one after the other; the rows come back in file order."""
    prefix = signal_prefix(path)
    rows = []
    for number, text in enumerate(read_messages(path), start=1):
        signal_id = f"{prefix}:{number}"
        with signal_context(signal_id):
            outcome = await process(text, Origin(signal_id=signal_id), parse=parse, client=client)
        rows.append(ReplayRow(number, signal_id, outcome))
    return rows


def format_table(rows: list[ReplayRow]) -> str:
    header = ("#", "outcome", "detail")
    body = [(str(r.number), verdict(r.outcome).value, r.summary) for r in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(2)]
    lines = [f"{a:>{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in [header, *body]]
    counts: dict[str, int] = {}
    for _, kind, _ in body:
        counts[kind] = counts.get(kind, 0) + 1
    lines.append("total: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no messages"))
    return "\n".join(lines)
