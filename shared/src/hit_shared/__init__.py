"""hit_shared: the pydantic models that the HIT bot and trading server both speak."""

__version__ = "0.1.0"
