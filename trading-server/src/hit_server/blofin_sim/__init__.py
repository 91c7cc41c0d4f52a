"""A local BloFin futures exchange: BloFin's REST paths, envelopes, signatures and error codes.

`create_app(SimConfig(...))` builds an ASGI app for httpx.ASGITransport or uvicorn; `app.state.sim` is
the engine (`Simulator`). Control API under `/sim/` (no signature): prices, faults, state, reset.
"""

from .app import create_app
from .config import SimConfig
from .engine import Simulator
from .faults import Fault, FaultPlan
from .models import SimEvent

__all__ = ["Fault", "FaultPlan", "SimConfig", "SimEvent", "Simulator", "create_app"]
