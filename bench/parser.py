"""Signal parser throughput and latency over a corpus (default: the bundled copy of the public corpus).

    .venv/bin/python bench/parser.py [--corpus PATH] [--seconds 3]

Two phases over the whole corpus, round after round (after one warm-up round), each for half the time
budget, and ONE JSON line:
- throughput: untimed rounds (no per-message clock reads or bookkeeping, which would be measured along
  with the parser): messages_per_s (messages / wall time) and cpu_messages_per_s (messages / this
  process's CPU time: on a machine shared with other work, the throughput of the core actually given to
  the parser);
- latency: every parse timed with perf_counter_ns: mean_us, p50_us, p99_us, max_us, and
  timed_messages_per_s (the same throughput with the timer overhead included, for comparison); and with
  this thread's CPU clock: cpu_p50_us, cpu_p99_us (what a parse costs the core it runs on: the figure to
  read on a busy machine, where the wall clock also counts the time other work held the core).
Also: messages (parses in the throughput phase), timed_messages, corpus_size, signals (per round).
Target (issue #14): p99 <= 1 ms per message (p99_us on a quiet machine; cpu_p99_us on a busy one).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

from hit_bot.parser import parse

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO / "discord-bot" / "tests" / "data" / "public_corpus.jsonl"


def load(path: pathlib.Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [str(json.loads(line)["text"]) for line in lines if line.strip()]


def throughput(texts: list[str], seconds: float) -> dict[str, float | int | None]:
    """Untimed rounds: how many messages a second the parser itself gets through."""
    clock = time.perf_counter
    messages = 0
    cpu_started = time.process_time()
    started = clock()
    deadline = started + seconds
    while clock() < deadline:
        for text in texts:
            parse(text)
        messages += len(texts)
    wall = clock() - started
    cpu = time.process_time() - cpu_started
    return {
        "messages_per_s": round(messages / wall),
        "cpu_messages_per_s": round(messages / cpu) if cpu > 0 else None,
        "messages": messages,
    }


def latency(texts: list[str], seconds: float) -> dict[str, float | int | None]:
    """Every parse timed: the distribution a single message sees."""
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    durations: list[int] = []
    cpu_durations: list[int] = []
    started = clock()
    deadline = started + int(seconds * 1e9)
    while clock() < deadline:
        for text in texts:
            t0, c0 = clock(), cpu_clock()
            parse(text)
            cpu_durations.append(cpu_clock() - c0)
            durations.append(clock() - t0)
    wall = clock() - started
    durations.sort()
    cpu_durations.sort()
    n = len(durations)
    return {
        "timed_messages_per_s": round(n / (wall / 1e9)),
        "mean_us": round(sum(durations) / n / 1000, 2),
        "p50_us": round(durations[n // 2] / 1000, 2),
        "p99_us": round(durations[min(n - 1, int(n * 0.99))] / 1000, 2),
        "max_us": round(durations[-1] / 1000, 2),
        "cpu_p50_us": round(cpu_durations[n // 2] / 1000, 2),
        "cpu_p99_us": round(cpu_durations[min(n - 1, int(n * 0.99))] / 1000, 2),
        "timed_messages": n,
    }


def run(texts: list[str], seconds: float) -> dict[str, float | int | None]:
    signals = sum(parse(t).kind == "signal" for t in texts)  # warm-up round
    result = throughput(texts, seconds / 2)
    result.update(latency(texts, seconds / 2))
    result.update(corpus_size=len(texts), signals=signals)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=pathlib.Path, default=DEFAULT_CORPUS)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    print(json.dumps(run(load(args.corpus), args.seconds)))


if __name__ == "__main__":
    main()
