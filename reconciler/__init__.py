"""reconciler: configuration as code for the m3ter usage-billing platform."""

__version__ = "0.1.0"
