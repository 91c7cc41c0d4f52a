"""`python -m hit_bot.parser`: the --jsonl stream (as the corpus scorer runs it) and the readable form."""

from __future__ import annotations

import io
import json
import subprocess
import sys

from hit_bot.parser_cli import main, run_jsonl

SIGNAL = "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 65000"


def _run(args: list[str], stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "hit_bot.parser", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_parser_cli_jsonl_answers_each_line_in_order_as_a_subprocess() -> None:
    lines = [
        json.dumps({"text": SIGNAL}),
        json.dumps({"text": "gm everyone"}),
        "this is not json",
        json.dumps({"text": "LONG BTC-USDT Entry: 60000 TP: 65000"}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"message": "no text field"}),
        json.dumps({"text": "📉 ETH-USDT 💰 3200 🛑 3300 🎯 3000 🎯 2900"}, ensure_ascii=False),
    ]
    proc = _run(["--jsonl"], ("\n".join(lines) + "\n").encode())
    assert proc.returncode == 0, proc.stderr.decode()
    out = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert len(out) == len(lines)
    assert out[0] == {
        "ok": True,
        "format": "standard",
        "signal": {
            "side": "long",
            "symbol": "BTC-USDT",
            "entries": ["60000"],
            "stop_loss": "58000",
            "take_profits": ["65000"],
            "leverage": None,
        },
    }
    assert out[1] == {"ok": False, "error": None}
    assert out[2]["ok"] is False and "not valid JSON" in out[2]["error"]
    assert out[3]["ok"] is False and "stop loss" in out[3]["error"]
    assert out[4]["ok"] is False and "not a JSON object" in out[4]["error"]
    assert out[5]["ok"] is False and '"text"' in out[5]["error"]
    assert out[6]["ok"] is True and out[6]["signal"]["take_profits"] == ["3000", "2900"]


def test_parser_cli_jsonl_reports_undecodable_bytes_and_goes_on() -> None:
    out = io.BytesIO()
    answered = run_jsonl(iter([b'{"text": "\xff\xfe"}\n', b"\n", json.dumps({"text": SIGNAL}).encode()]), out)
    replies = [json.loads(line) for line in out.getvalue().decode().splitlines()]
    assert answered == 2
    assert replies[0] == {"ok": False, "error": "input line 1 is not valid UTF-8"}
    assert replies[1]["ok"] is True


def test_parser_cli_prints_a_signal_readably() -> None:
    proc = _run([SIGNAL + " Leverage: 10x"], b"")
    text = proc.stdout.decode()
    assert proc.returncode == 0
    assert "signal (standard)" in text
    assert "BTC-USDT" in text and "58000" in text and "10x" in text


def test_parser_cli_says_why_a_signal_is_refused() -> None:
    assert main(["LONG BTC-USDT Entry: 60000 SL: 61000 TP: 65000"]) == 1
    proc = _run(["LONG BTC-USDT Entry: 60000 SL: 61000 TP: 65000"], b"")
    assert proc.returncode == 1
    assert "invalid signal (standard): stop loss 61000 is above the entry 60000" in proc.stdout.decode()


def test_parser_cli_reads_one_message_from_stdin() -> None:
    proc = _run([], b"gm, BTC looking strong")
    assert proc.returncode == 1
    assert "not a signal" in proc.stdout.decode()
