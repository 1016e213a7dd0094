"""The leaves every other layer stands on: errors, events, one-time notes, JSON Schema values, model catalog.

Nothing here imports from the rest of claudekit (the ``layers`` contract in pyproject.toml keeps it so).
"""

__version__ = "0.1.0"  # claudekit.__version__; here so the store can stamp it without importing claudekit
