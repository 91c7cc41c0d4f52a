"""`python -m hit_server.simulation`: run seeds of the whole-system simulation and report as JSON.

  python -m hit_server.simulation --seeds 2000            seeds 0..1999, a JSON summary at the end
  python -m hit_server.simulation --seed 17 --show        one seed, its steps and what it found
  python -m hit_server.simulation --seed 17 --minimize    the shortest failing list of steps, as JSON
  python -m hit_server.simulation --seeds 60 --accounts 3 three accounts on one market (the fleet)

Exit status 1 when any seed breaks an invariant; each failing seed prints how to run it again.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from hit_server.simulation.driver import minimize, run_seed
from hit_server.simulation.steps import generate


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m hit_server.simulation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run (default 100)")
    parser.add_argument("--first", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--seed", type=int, help="run this one seed only")
    parser.add_argument("--steps", type=int, default=60, help="steps per seed (default 60)")
    parser.add_argument("--accounts", type=int, default=1,
                        help="accounts trading side by side on the one simulator (default 1)")
    parser.add_argument("--show", action="store_true", help="print the steps of each failing seed")
    parser.add_argument("--minimize", action="store_true", help="shrink a failing --seed to fewer steps")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.CRITICAL)  # the server's own log lines would drown the report
    seeds = [args.seed] if args.seed is not None else list(range(args.first, args.first + args.seeds))
    started = time.perf_counter()
    simulated = 0.0
    steps = 0
    failing: list[dict[str, Any]] = []
    for seed in seeds:
        result = run_seed(seed, args.steps, args.accounts)
        simulated += result.simulated_s
        steps += len(result.steps)
        if result.ok:
            continue
        failure: dict[str, Any] = {"seed": seed, "violations": result.violations,
                                   "again": result.reproduction()}
        if args.show:
            failure["steps"] = result.steps
        if args.minimize and args.seed is not None:
            steps_of_seed = generate(seed, args.steps, args.accounts)
            failure["minimized_steps"] = minimize(steps_of_seed, result.violations, args.accounts)
        failing.append(failure)
        sys.stderr.write(json.dumps(failure) + "\n")
    elapsed = time.perf_counter() - started
    summary = {
        "seeds": len(seeds), "accounts": args.accounts, "steps": steps, "steps_per_seed": args.steps,
        "simulated_hours": round(simulated / 3600, 2), "wall_seconds": round(elapsed, 2),
        "steps_per_second": round(steps / elapsed, 1) if elapsed else None,
        "violations": sum(len(f["violations"]) for f in failing),
        "failing_seeds": [f["seed"] for f in failing],
    }
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
