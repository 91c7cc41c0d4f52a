"""The paper-mode price model: a seeded random walk that moves every live instrument's price by ticks."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from .engine import Simulator

STEP_SIGMA = 0.0008  # about 0.08 % per step


class PriceWalk:
    """Each `step()` moves every live price by a seeded Gaussian step rounded to the tick grid.

    Moves go through `Simulator.set_price`, so resting orders and TP/SL fire as they would on BloFin.
    """

    def __init__(self, sim: Simulator, seed: int) -> None:
        self.sim = sim
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not cryptography

    def step(self) -> None:
        for inst_id in sorted(self.sim.instruments):
            inst = self.sim.instruments[inst_id]
            if not inst.is_live:
                continue
            old = self.sim.prices[inst_id]
            moved = old * Decimal(str(1 + self.rng.gauss(0.0, STEP_SIGMA)))
            new = max(inst.tick_size, inst.round_price(moved))
            if new != old:
                self.sim.set_price(inst_id, new)

    async def run(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self.step()
