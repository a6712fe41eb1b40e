"""Package version."""

__version__ = "0.0.5"
