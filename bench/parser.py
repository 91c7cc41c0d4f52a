"""Signal parser throughput and latency over a corpus (default: the bundled copy of the public corpus).

    .venv/bin/python bench/parser.py [--corpus PATH] [--seconds 3]

Parses the whole corpus round after round (after one warm-up round) until the time budget is spent,
timing every parse with perf_counter_ns, and prints ONE JSON line:
messages_per_s (messages / wall time of the timed rounds, timer overhead included), cpu_messages_per_s
(messages / CPU time of this process over the same rounds: on a machine shared with other work, the
throughput of the core actually given to the parser), mean_us, p50_us, p99_us and max_us (per parse,
wall clock), messages (parses timed), rounds, corpus_size, signals (parsed as signals per round).
Targets (issue #2): >= 50,000 messages/s and p99 < 100 us on one core.
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


def run(texts: list[str], seconds: float) -> dict[str, float | int | None]:
    signals = sum(parse(t).kind == "signal" for t in texts)  # warm-up round
    clock = time.perf_counter_ns
    durations: list[int] = []
    rounds = 0
    cpu_started = time.process_time()
    started = clock()
    deadline = started + int(seconds * 1e9)
    while clock() < deadline:
        for text in texts:
            t0 = clock()
            parse(text)
            durations.append(clock() - t0)
        rounds += 1
    wall = clock() - started
    cpu = time.process_time() - cpu_started
    durations.sort()
    n = len(durations)
    return {
        "messages_per_s": round(n / (wall / 1e9)),
        "cpu_messages_per_s": round(n / cpu) if cpu > 0 else None,
        "mean_us": round(sum(durations) / n / 1000, 2),
        "p50_us": round(durations[n // 2] / 1000, 2),
        "p99_us": round(durations[min(n - 1, int(n * 0.99))] / 1000, 2),
        "max_us": round(durations[-1] / 1000, 2),
        "messages": n,
        "rounds": rounds,
        "corpus_size": len(texts),
        "signals": signals,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=pathlib.Path, default=DEFAULT_CORPUS)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    print(json.dumps(run(load(args.corpus), args.seconds)))


if __name__ == "__main__":
    main()
