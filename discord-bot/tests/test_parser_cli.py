"""`python -m hit_bot.parser`: the --jsonl stream, the readable form, and --score on a corpus."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


# -- --score: the parser measured on a corpus of messages with their expected outcome ---------------------

PUBLIC_CORPUS = Path(__file__).resolve().parent / "data" / "public_corpus.jsonl"


def _signal(
    side: str, symbol: str, entries: list[Any], stop: Any, targets: list[Any], lev: int | None = None
) -> dict[str, Any]:
    return {
        "side": side,
        "symbol": symbol,
        "entries": entries,
        "stop_loss": stop,
        "take_profits": targets,
        "leverage": lev,
    }


MIXED_CORPUS = [
    {
        "id": "s1",
        "family": "plain",
        "text": "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 62000, 64000",
        "expect": _signal("long", "BTC-USDT", [60000], 58000, [62000, 64000]),
    },
    None,  # a blank line: skipped, but it still counts for the line numbers
    {
        "id": "s2",
        "text": "SHORT ETH-USDT Entry: 3200 SL: 3300 TP: 3000",
        "expect": _signal("short", "ETH-USDT", [3200], 3350, [3000]),
    },
    {
        "id": "s3",
        "text": "LONG SOL-USDT Entry: 150 TP: 160",
        "expect": _signal("long", "SOL-USDT", [150], 140, [160]),
    },
    {"id": "n1", "family": "plain", "text": "gm everyone", "expect": None},
    {
        "id": "n2",
        "text": "LONG BTC-USDT Entry: 60000 SL: 58000 TP: 62000",
        "expect": {"refuse": "the channel's admin said so"},
    },
    {
        "id": "n3",
        "text": "LONG BTC-USDT Entry: 60000 SL: 61000 TP: 62000",
        "expect": {"refuse": "stop above entry"},
    },
    {
        # entries in any order, exact decimals, and an equal target written twice may be merged
        "id": "s4",
        "text": "SHORT XRP-USDT Entry: 0.5123 - 0.52 SL: 0.5301 TP: 0.4800, 0.48, 0.45",
        "expect": _signal("short", "XRP-USDT", ["0.52", 0.5123], 0.5301, [0.48, 0.45]),
    },
]


def _write_corpus(path: Path, cases: list[dict[str, Any] | None]) -> Path:
    lines = ["" if case is None else json.dumps(case, ensure_ascii=False) for case in cases]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _score_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, dict[str, Any]]:
    status = main(args)
    return status, json.loads(capsys.readouterr().out)


def test_parser_cli_score_counts_right_wrong_missed_and_false_trades(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = _write_corpus(tmp_path / "corpus.jsonl", MIXED_CORPUS)
    status, report = _score_json(capsys, ["--score", str(corpus), "--json"])
    assert status == 1  # a false trade fails the score
    assert report["cases"] == 7
    assert report["signals"] == {"total": 4, "right": 2, "wrong": 1, "missed": 1, "recall": 0.5}
    assert report["non_signals"] == {"total": 3, "ignored": 1, "refused": 1, "false_trades": 1}
    assert report["fields"]["stop_loss"] == {"right": 2, "of": 3}
    assert report["fields"]["entries"] == {"right": 3, "of": 3}
    assert report["fields"]["take_profits"] == {"right": 3, "of": 3}
    assert report["passed"] is False
    problems = {p["id"]: p for p in report["problems"]}
    assert set(problems) == {"s2", "s3", "n2"}
    assert problems["s2"]["kind"] == "wrong" and problems["s2"]["line"] == 3
    assert "stop_loss 3300, expected 3350" in problems["s2"]["detail"]
    assert problems["s3"]["kind"] == "missed" and "no stop loss" in problems["s3"]["detail"]
    assert (
        problems["n2"]["kind"] == "false_trade" and "the channel's admin said so" in problems["n2"]["detail"]
    )
    assert report["families"]["plain"] == {
        "cases": 2,
        "right": 1,
        "wrong": 0,
        "missed": 0,
        "not_traded": 1,
        "false_trades": 0,
    }


def test_parser_cli_score_prints_a_readable_summary_as_a_subprocess(tmp_path: Path) -> None:
    corpus = _write_corpus(tmp_path / "corpus.jsonl", MIXED_CORPUS)
    proc = _run(["--score", str(corpus)], b"")
    text = proc.stdout.decode()
    assert proc.returncode == 1, proc.stderr.decode()
    assert "7 messages" in text
    assert "recall 50.0%" in text
    assert "FALSE TRADES 1" in text
    assert "stop_loss 2/3" in text
    assert "n2 (line 6)" in text and "s2 (line 3)" in text and "s3 (line 4)" in text
    assert "stop_loss 3300, expected 3350" in text
    assert text.rstrip().endswith("FAIL: 1 false trade")


def test_parser_cli_score_passes_a_clean_corpus_and_holds_a_minimum_recall(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = _write_corpus(tmp_path / "clean.jsonl", [MIXED_CORPUS[0], MIXED_CORPUS[4], MIXED_CORPUS[7]])
    assert main(["--score", str(clean), "--min-recall", "1"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("PASS")
    with_a_miss = _write_corpus(tmp_path / "miss.jsonl", [MIXED_CORPUS[0], MIXED_CORPUS[3]])
    assert main(["--score", str(with_a_miss)]) == 0  # no false trade, no minimum asked
    capsys.readouterr()
    status, report = _score_json(capsys, ["--score", str(with_a_miss), "--min-recall", "0.9", "--json"])
    assert status == 1
    assert report["passed"] is False and report["signals"]["recall"] == 0.5


def test_parser_cli_score_reads_the_public_corpus_without_a_miss(capsys: pytest.CaptureFixture[str]) -> None:
    status, report = _score_json(capsys, ["--score", str(PUBLIC_CORPUS), "--json", "--min-recall", "1"])
    assert status == 0, report["problems"]
    assert report["signals"]["total"] >= 32 and report["signals"]["recall"] == 1.0
    assert report["non_signals"]["false_trades"] == 0


def test_parser_cli_score_says_a_missing_file_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.jsonl"
    proc = _run(["--score", str(missing)], b"")
    error = proc.stderr.decode()
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert str(missing) in error and "no such file" in error.lower()
    assert "Traceback" not in error


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([json.dumps(MIXED_CORPUS[0]), "this is not json"], "line 2: not valid JSON"),
        (['["text", "expect"]'], "line 1: not a JSON object"),
        (['{"expect": null}'], 'line 1: no string field "text"'),
        (['{"text": "gm"}'], 'line 1: no field "expect"'),
        (['{"text": "gm", "expect": 5}'], "line 1: expect must be null, a signal or"),
        ([json.dumps({"text": "x", "expect": _signal("up", "BTC-USDT", [], 1, [2])})], "line 1: expect.side"),
        (
            [json.dumps({"text": "x", "expect": _signal("long", "BTC-USDT", [], "abc", [2])})],
            "expect.stop_loss",
        ),
        (
            [json.dumps({"text": "x", "expect": _signal("long", "BTC-USDT", [], 1, [])})],
            "expect.take_profits",
        ),
        ([json.dumps({"text": "x", "expect": {"side": "long"}})], 'line 1: expect has no "symbol"'),
        ([], "has no cases"),
    ],
)
def test_parser_cli_score_names_the_bad_line_of_a_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: list[str], message: str
) -> None:
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["--score", str(corpus)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert str(corpus) in captured.err


def test_parser_cli_score_reports_undecodable_bytes_by_line_without_a_traceback(tmp_path: Path) -> None:
    corpus = tmp_path / "bytes.jsonl"
    corpus.write_bytes(json.dumps(MIXED_CORPUS[0]).encode() + b'\n{"text": "\xff\xfe", "expect": null}\n')
    proc = _run(["--score", str(corpus), "--json"], b"")
    error = proc.stderr.decode()
    assert proc.returncode == 2
    assert "line 2: not valid UTF-8" in error
    assert "Traceback" not in error


def test_parser_cli_json_flag_needs_score(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--json", SIGNAL])
    assert stopped.value.code == 2
    assert "--json" in capsys.readouterr().err


# -- management messages (issue #17) ---------------------------------------------------------------------


def test_parser_cli_jsonl_prints_a_management_line() -> None:
    lines = [
        json.dumps({"text": "Фиксируем половину, стоп в безубыток"}, ensure_ascii=False),
        json.dumps({"text": "#SOL 止损调整到 141.5"}, ensure_ascii=False),
        json.dumps({"text": "TP1 hit ✅"}, ensure_ascii=False),
    ]
    proc = _run(["--jsonl"], ("\n".join(lines) + "\n").encode())
    assert proc.returncode == 0, proc.stderr.decode()
    partial, stop, hit = (json.loads(line) for line in proc.stdout.decode().splitlines())
    assert {k: partial[k] for k in ("ok", "kind", "action", "symbol", "price", "fraction")} == {
        "ok": False,
        "kind": "management",
        "action": "partial_close",
        "symbol": None,
        "price": None,
        "fraction": "0.5",
    }
    assert partial["error"] is None and "половину" in partial["reason"]
    assert (stop["action"], stop["symbol"], stop["price"], stop["breakeven"]) == (
        "move_stop",
        "SOL-USDT",
        "141.5",
        False,
    )
    assert (hit["action"], hit["fraction"], hit["targets"]) == ("tp_hit", None, [])


def test_parser_cli_prints_a_management_reading_and_how_it_was_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["Тейк 1 взяли, стоп двигаем в точку входа"]) == 1  # not a signal
    out = capsys.readouterr().out
    assert out.startswith("management (asks for an action)\n  action:       move_stop\n")
    assert "  stop to:      breakeven (the entry)\n" in out
    assert '"стоп" stop, "двигаем" move, "точку входа" breakeven -> move_stop' in out


MANAGEMENT_CORPUS = [
    {"id": "m1", "family": "ru", "text": "Закрываю половину", "action": "partial_close", "fraction": 0.5},
    {
        "id": "m2",
        "text": "Move SL to 61250 on BTC",
        "action": "move_stop",
        "symbol": "BTC-USDT",
        "price": 61250,
    },
    # labelled as a report, read as an order: a money action the message did not ask for
    {"id": "m3", "text": "Close BTC now", "action": "tp_hit", "symbol": "BTC-USDT"},
    # the right action with a price the line does not have: also not asked for
    {"id": "m4", "text": "Move SL to 61000", "action": "move_stop", "price": 60000},
    # a report read as another report: wrong, but no money moves
    {"id": "m5", "text": "TP1 hit", "action": "sl_hit"},
    {"id": "m6", "text": "gm everyone", "action": "other"},
    {"id": "s1", "text": SIGNAL, "expect": _signal("long", "BTC-USDT", [60000], 58000, [65000])},
]


def test_parser_cli_score_reads_a_management_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = _write_corpus(tmp_path / "management.jsonl", MANAGEMENT_CORPUS)
    status, report = _score_json(capsys, ["--score", str(corpus), "--json"])
    assert status == 1  # two money actions not asked for
    assert report["management"] == {
        "total": 6,
        "right": 2,
        "wrong": 3,
        "missed": 1,
        "read_as_signal": 0,
        "rate": 2 / 6,
        "money_actions_not_asked": 2,
        "by_action": {
            "move_stop": {"right": 1, "of": 2},
            "other": {"right": 0, "of": 1},
            "partial_close": {"right": 1, "of": 1},
            "sl_hit": {"right": 0, "of": 1},
            "tp_hit": {"right": 0, "of": 1},
        },
    }
    assert report["signals"]["right"] == 1 and report["non_signals"]["false_trades"] == 0
    kinds = {p["id"]: p["kind"] for p in report["problems"]}
    assert kinds == {
        "m3": "unasked_money",
        "m4": "unasked_money",
        "m5": "management_wrong",
        "m6": "management_missed",
    }


def test_parser_cli_score_prints_management_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = _write_corpus(tmp_path / "management.jsonl", MANAGEMENT_CORPUS[:2])
    assert main(["--score", str(corpus), "--min-recall", "1"]) == 0
    text = capsys.readouterr().out
    assert "management       2   read right 2" in text and "read right 100.0%" in text
    assert "MONEY ACTIONS NOT ASKED FOR 0" in text
    assert "signals " not in text  # a management-only corpus has no signal lines
    assert text.rstrip().endswith("PASS")
    corpus = _write_corpus(tmp_path / "unasked.jsonl", MANAGEMENT_CORPUS[2:3])
    assert main(["--score", str(corpus)]) == 1
    text = capsys.readouterr().out
    assert "MONEY ACTIONS NOT ASKED FOR (" in text and "m3 (line 1): action close, expected tp_hit" in text
    assert text.rstrip().endswith("FAIL: 1 money action not asked for")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ({"text": "x", "action": "buy"}, "action must be one of close, partial_close"),
        ({"text": "x", "action": "close", "price": "abc"}, "price holds 'abc', which is not a price"),
        ({"text": "x", "action": "close", "symbol": 5}, "symbol must be a string or null"),
        ({"text": "x"}, 'no field "expect" (a signal, null, or {"refuse": "<why>"}) or "action"'),
    ],
)
def test_parser_cli_score_names_a_bad_management_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: dict[str, Any], problem: str
) -> None:
    corpus = _write_corpus(tmp_path / "bad.jsonl", [MANAGEMENT_CORPUS[0], line])
    assert main(["--score", str(corpus)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {corpus} line 2: ") and problem in err
    assert "Traceback" not in err
