"""The steps of a simulation run and the seeded generator that writes them.

A run is a list of steps, decided entirely by the seed before anything runs, so a failing run is
repeated by its seed alone, and a shorter failing run is found by leaving steps out (`driver.minimize`).
Each step is a small JSON object: `op` says what happens, `wait` how many simulated seconds pass after
it (the server's tasks run meanwhile), and the other keys are the op's arguments.

What the generator mixes, with its own model of prices (only `price` steps move them, so it knows the
price every signal will meet):
- signals: market, limit and zone entries; long and short; 1 to 10 targets, some equal; resent with
  the same signal_id (the bot's retries), sometimes at once (concurrent duplicates); several signal_ids
  for one symbol close together (concurrent same-symbol signals); sent to either live process;
- price moves: small steps, gaps through several levels, whipsaws;
- exchange faults: 429s, 5xx, timeouts, lost replies, delays and error codes, at random per request;
  and the simulator's adversarial modes: lookups that lag behind acceptance, a duplicate clientOrderId
  accepted again after a window, refused items of a batch, partial fills;
- crashes at a chosen exchange call of a process (before the exchange sees it, or after it carried it
  out), restarts, a second process on the same journal, reconciliation sweeps at random moments;
- a trader's hand on the exchange: cancelling a position's stops, closing a position, changing a
  symbol's leverage, moving funds in or out of the account without the stream saying so (the account
  mirror's balance is then stale until it is read again);
- a trader's actions through the API (close, partial close, cancel, stop, targets), each under an
  Idempotency-Key, some sent again with the same key (at once, or later, to the other process), some
  keys reused for another request; sensible and wrong-sided stops and targets.

With several accounts (`accounts` > 1, the fleet: ARCHITECTURE.md, "The fleet"), every signal goes to
every account, and every step about one account (faults, adversarial modes, crashes, processes, sweeps,
the stream, a trader's hand, actions) names it in `account`. One account per run, the untouched one, is
never named: the yardstick for isolation (nothing done to the others may change its trades). The
accounts are drawn from a generator of their own, so a seed's steps are the same whatever the number of
accounts, apart from the `account` keys (and with one account there are none: the runs of every seed
are what they were before the fleet).
"""

from __future__ import annotations

import random
from decimal import ROUND_DOWN, Decimal
from typing import Any

Step = dict[str, Any]

SYMBOLS: dict[str, Decimal] = {  # the simulator's starting prices (blofin_sim/catalog.py)
    "BTC-USDT": Decimal(60000),
    "ETH-USDT": Decimal(3000),
    "DOGE-USDT": Decimal("0.15"),
    "SOL-USDT": Decimal(150),
}
TICKS: dict[str, Decimal] = {
    "BTC-USDT": Decimal("0.1"), "ETH-USDT": Decimal("0.01"), "DOGE-USDT": Decimal("0.00001"),
    "SOL-USDT": Decimal("0.001"),
}
FAULT_KINDS = ("http_429", "http_5xx", "timeout", "drop_reply", "delay", "error_code")
# the steps about one account (with several accounts, `account` names it); the others (signals, resends,
# price moves) are everyone's
ACCOUNT_OPS = frozenset({
    "faults", "fault", "lag", "duplicate_window", "item_faults", "partial_fills", "crash", "second_process",
    "restart", "sweep", "stream_drop", "hand_cancel_stops", "hand_leverage", "hand_close", "hand_transfer",
    "action", "action_again",
})


def _tick(symbol: str, price: Decimal) -> Decimal:
    tick = TICKS[symbol]
    return (price / tick).to_integral_value(ROUND_DOWN) * tick


class Generator:
    """Writes the steps of one run from its seed."""

    def __init__(self, seed: int, length: int, accounts: int = 1) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self.seed = seed
        self.length = length
        self.accounts = accounts
        self.who = random.Random(f"{seed}/accounts")  # noqa: S311 - which account a step is about
        self.untouched = self.who.randrange(accounts) if accounts > 1 else None
        symbols = list(SYMBOLS)
        self.rng.shuffle(symbols)
        self.symbols = symbols[: self.rng.randint(1, 3)]  # few symbols: signals compete for them
        self.prices = {s: SYMBOLS[s] for s in self.symbols}
        self.sent: list[Step] = []
        self.keys: list[str] = []
        self._key_account: dict[str, int] = {}
        self.count = 0

    def steps(self) -> list[Step]:
        out: list[Step] = []
        if self.rng.random() < 0.7:
            out.extend(self._aimed([self._faults()]))
        while len(out) < self.length:
            out.extend(self._aimed(self._next()))
        return out[: self.length]

    def _aimed(self, steps: list[Step]) -> list[Step]:
        """With several accounts, each step about one account names one (never the untouched one); an
        action sent again names the account of the action it repeats."""
        if self.accounts < 2:
            return steps
        for step in steps:
            if step["op"] in ACCOUNT_OPS:
                if step["op"] == "action_again":
                    step["account"] = self._key_account.get(step["key"], 0)
                    continue
                step["account"] = self.who.choice([n for n in range(self.accounts) if n != self.untouched])
                if step["op"] == "action":
                    self._key_account[step["key"]] = step["account"]
        return steps

    # -- what comes next ---------------------------------------------------------------------------

    def _next(self) -> list[Step]:
        roll = self.rng.random()
        if roll < 0.30:
            return self._signals()
        if roll < 0.62:
            return self._price_moves()
        if roll < 0.68:
            return [self._resend()] if self.sent else self._signals()
        if roll < 0.71:
            return [self._faults()]
        if roll < 0.74:
            return [self._adversity()]
        if roll < 0.80:
            return [self._crash()]
        if roll < 0.86 and self.sent:
            return self._actions()
        return [self._other(roll)]

    def _other(self, roll: float) -> Step:
        """Processes, sweeps, the stream and a trader's hand on the exchange."""
        process, symbol = self.rng.randint(0, 1), self.rng.choice(self.symbols)
        if roll < 0.89:
            step: Step = {"op": "second_process"}
        elif roll < 0.92:
            step = {"op": "sweep", "process": process}
        elif roll < 0.94:
            step = {"op": "hand_cancel_stops", "symbol": symbol}
        elif roll < 0.95:
            step = {"op": "hand_leverage", "symbol": symbol, "leverage": self.rng.choice([1, 2, 7, 25, 50])}
        elif roll < 0.96:
            step = {"op": "hand_close", "symbol": symbol}
        elif roll < 0.98:
            step = {"op": "stream_drop", "process": process}
        elif roll < 0.99:
            step = {"op": "hand_transfer", "fraction": self.rng.choice(["0.1", "0.5", "-0.3"])}
        else:
            step = {"op": "restart", "process": process}
        step["wait"] = self._wait()
        return step

    def _wait(self) -> float:
        roll = self.rng.random()
        if roll < 0.3:
            return 0.0
        if roll < 0.8:
            return round(self.rng.uniform(0.05, 2.0), 3)
        return round(self.rng.uniform(2.0, 40.0), 3)

    # -- signals -----------------------------------------------------------------------------------

    def _signals(self) -> list[Step]:
        symbol = self.rng.choice(self.symbols)
        burst = 1 if self.rng.random() < 0.7 else self.rng.randint(2, 3)  # same-symbol signals at once
        steps = []
        for n in range(burst):
            step = self._signal(symbol)
            step["wait"] = 0.0 if n < burst - 1 else self._wait()
            steps.append(step)
            if self.rng.random() < 0.15:  # a concurrent duplicate of the same signal_id
                steps.append({"op": "resend", "id": step["id"], "process": self.rng.randint(0, 1),
                              "wait": 0.0})
        return steps

    def _signal(self, symbol: str) -> Step:
        self.count += 1
        price = self.prices[symbol]
        long = self.rng.random() < 0.5
        sign = Decimal(1) if long else Decimal(-1)
        kind = self.rng.choices(["market", "limit", "zone"], [5, 3, 2])[0]
        pct = self._percent
        if kind == "market":
            entries: list[Decimal] = []
            near = far = price
        elif kind == "limit":
            near = far = price * (1 - sign * pct(0.1, 2.5))
            entries = [_tick(symbol, near)]
        else:  # a zone: the entry nearer the market, and the one further away
            near = price * (1 - sign * pct(0.0, 1.0))
            far = near * (1 - sign * pct(0.3, 2.0))
            entries = [_tick(symbol, near), _tick(symbol, far)]
        risk = pct(0.4, 9.0)
        stop = _tick(symbol, far * (1 - sign * risk))
        targets = self._targets(symbol, near, sign, risk)
        step: Step = {
            "op": "signal", "id": f"sim-{self.seed}-{self.count}", "process": self.rng.randint(0, 1),
            "body": {
                "side": "long" if long else "short", "symbol": symbol,
                "entries": [str(e) for e in entries], "stop_loss": str(stop),
                "take_profits": [str(t) for t in targets],
            },
        }
        if self.rng.random() < 0.3:
            step["body"]["leverage"] = self.rng.choice([1, 3, 5, 10, 20])
        self.sent.append(step)
        return step

    def _percent(self, low: float, high: float) -> Decimal:
        """A random fraction between `low` and `high` percent."""
        return Decimal(str(round(self.rng.uniform(low, high), 4))) / 100

    def _targets(self, symbol: str, reference: Decimal, sign: Decimal, risk: Decimal) -> list[Decimal]:
        count = self.rng.choice([1, 1, 2, 3, 3, 3, 4, 5, 10])
        targets: list[Decimal] = []
        level = Decimal(0)
        for _ in range(count):
            roll = self.rng.random()
            if targets and roll < 0.08:  # a target written twice (refused: likely a typo)
                targets.append(targets[-1])
                continue
            if targets and roll < 0.2:  # one a fraction of a tick further: equal on the tick grid
                targets.append(targets[-1] + sign * TICKS[symbol] * Decimal("0.4"))
                continue
            step = risk * Decimal(str(round(self.rng.uniform(0.3, 1.5), 3)))
            level = min(level + step, Decimal("0.8"))  # a short's targets stay above zero
            targets.append(_tick(symbol, reference * (1 + sign * level)))
        return targets

    def _resend(self) -> Step:
        original = self.rng.choice(self.sent)
        return {"op": "resend", "id": original["id"], "process": self.rng.randint(0, 1), "wait": self._wait()}

    # -- a trader's actions on a trade ---------------------------------------------------------------

    def _actions(self) -> list[Step]:
        """One action on the trade open on a symbol (the driver finds it then; a recent signal's id when
        there is none, to be refused), perhaps sent again with the same Idempotency-Key. Prices are
        percent offsets from the market at that moment, on the trade's protective (stop) or profit
        (targets) side, a few on the wrong side; the driver turns them into prices."""
        signal = self.rng.choice(self.sent[-4:])
        kind = self.rng.choices(["close", "stop", "cancel", "targets"], [3, 3, 2, 2])[0]
        self.keys.append(f"key-{self.seed}-{len(self.keys) + 1}")
        key = self.keys[-1]
        if len(self.keys) > 1 and self.rng.random() < 0.08:  # an old key reused for another request
            key = self.rng.choice(self.keys[:-1])
        step: Step = {"op": "action", "kind": kind, "symbol": signal["body"]["symbol"], "id": signal["id"],
                      "key": key, "process": self.rng.randint(0, 1), "args": self._action_args(kind),
                      "wait": self._wait()}
        steps = [step]
        if self.rng.random() < 0.3:  # the same request again: at once (concurrent) or later
            again = {"op": "action_again", "key": key, "process": self.rng.randint(0, 1),
                     "wait": self._wait()}
            if self.rng.random() < 0.5:
                step["wait"] = 0.0
            steps.append(again)
        return steps

    def _action_args(self, kind: str) -> dict[str, Any]:
        if kind == "close":
            roll = self.rng.random()
            return {} if roll < 0.4 else {"fraction": self.rng.choice(["1", "0.5", "0.25", "0.333", "0.9"])}
        if kind == "cancel":
            return {"close_filled": self.rng.random() < 0.4}
        wrong = self.rng.random() < 0.12  # a stop that would fire at once, a target already crossed
        if kind == "stop":
            if self.rng.random() < 0.4:
                return {"breakeven": True}
            offset = self.rng.uniform(0.2, 6.0)
            return {"offset_pct": round(-offset if wrong else offset, 3)}
        offsets = sorted(round(self.rng.uniform(0.3, 8.0), 3) for _ in range(self.rng.randint(1, 3)))
        return {"offsets_pct": [-o if wrong else o for o in offsets]}

    # -- the market --------------------------------------------------------------------------------

    def _price_moves(self) -> list[Step]:
        symbol = self.rng.choice(self.symbols)
        roll = self.rng.random()
        if roll < 0.6:  # a small step
            moves = [self.rng.uniform(-0.6, 0.6)]
        elif roll < 0.85:  # a gap through several levels
            moves = [self.rng.choice([-1, 1]) * self.rng.uniform(2.0, 9.0)]
        else:  # a whipsaw
            swing = self.rng.uniform(1.0, 6.0)
            moves = [swing, -2 * swing, swing] if self.rng.random() < 0.5 else [-swing, 2 * swing, -swing]
        steps = []
        for n, move in enumerate(moves):
            price = _tick(symbol, self.prices[symbol] * (1 + Decimal(str(round(move, 4))) / 100))
            if price <= 0:
                continue
            self.prices[symbol] = price
            wait = self._wait() if n == len(moves) - 1 else round(self.rng.uniform(0.0, 0.5), 3)
            steps.append({"op": "price", "symbol": symbol, "price": str(price), "wait": wait})
        return steps

    # -- faults and processes ----------------------------------------------------------------------

    def _faults(self) -> Step:
        if self.rng.random() < 0.25:
            return {"op": "faults", "probability": 0, "wait": self._wait()}
        kinds = self.rng.sample(FAULT_KINDS, self.rng.randint(1, len(FAULT_KINDS)))
        return {
            "op": "faults", "probability": round(self.rng.uniform(0.02, 0.3), 3), "kinds": kinds,
            "seed": self.rng.randint(0, 10**6), "wait": self._wait(),
        }

    def _adversity(self) -> Step:
        """The simulator's adversarial modes (blofin_sim/adversity.py), one at a time, on or off."""
        kind = self.rng.choice(["lag", "duplicate_window", "item_faults", "partial_fills"])
        step: Step = {"op": kind, "wait": self._wait()}
        off = self.rng.random() < 0.3
        if kind == "lag":
            step.update(ms=0 if off else self.rng.choice([200, 1500, 5000]), lookups=self.rng.randint(0, 3))
        elif kind == "duplicate_window":
            step["ms"] = None if off else self.rng.choice([0, 1000, 60_000])
        elif kind == "item_faults":
            step.update(probability=0 if off else round(self.rng.uniform(0.1, 0.6), 2),
                        code=self.rng.choice(["500", "102015", "429"]), seed=self.rng.randint(0, 10**6))
        else:
            step["fraction"] = None if off else self.rng.choice(["0.1", "0.25", "0.5"])
        return step

    def _crash(self) -> Step:
        return {
            "op": "crash", "process": self.rng.randint(0, 1), "after_calls": self.rng.randint(1, 12),
            "when": self.rng.choice(["before", "after"]), "wait": self._wait(),
        }


def generate(seed: int, length: int = 60, accounts: int = 1) -> list[Step]:
    """The steps of the run with this seed, for a world of `accounts` accounts."""
    return Generator(seed, length, accounts).steps()
