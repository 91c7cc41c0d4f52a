"""hit_server: the HIT trading server (risk, at-most-once execution on BloFin, journal)."""

__version__ = "0.1.0"
