"""A local BloFin futures exchange: BloFin's REST paths, envelopes, signatures and error codes.

`create_app(SimConfig(...))` builds an ASGI app for httpx.ASGITransport or uvicorn; `app.state.sim` is
the default account's engine (`Simulator`), `app.state.sim_state` everything else (`SimState`). Control
API under `/sim/` (no signature): prices, faults, state, reset, accounts (`routes_sim.py`).

It serves one account, or a fleet of them by API key on one market: `registry.py` (accounts and how a
request, a WebSocket login and the control API find theirs), `market.py` (shared prices; a move visits
only the accounts resting something there), `limits.py` (BloFin's limits per key and per IP).
"""

from .app import create_app
from .config import SimConfig
from .engine import Simulator
from .faults import Fault, FaultPlan
from .models import SimEvent

__all__ = ["Fault", "FaultPlan", "SimConfig", "SimEvent", "Simulator", "create_app"]
