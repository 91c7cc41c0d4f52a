"""A seeded simulation of the whole server against the exchange simulator, with faults, crashes and
races, checking the money invariants after every step.

The practice is deterministic simulation testing (as FoundationDB and TigerBeetle do it): every run is
decided by its seed, runs on virtual time (an hour of trading in a fraction of a second), and a run that
breaks an invariant can be repeated exactly and shrunk to a few steps. The parts:

- `clock`: the virtual-time event loop;
- `world`: the exchange simulator, its accounts (one, or several side by side as the fleet trades them),
  each with its journal and its server processes (the real app) that can crash;
- `steps`: the seeded generator of what happens (signals, prices, faults, crashes, a trader's hand);
- `invariants`: what must always hold;
- `driver`: runs steps and checks, and shrinks a failing run (`minimize`);
- `python -m hit_server.simulation`: runs many seeds and reports as JSON.
"""
