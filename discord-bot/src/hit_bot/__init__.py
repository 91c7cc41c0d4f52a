"""hit_bot: the HIT Discord bot (watches channels, parses signals, forwards, reports)."""

__version__ = "0.1.0"
