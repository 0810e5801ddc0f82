"""The operator's summary behind ``certflow status`` (reads only: no write lock), bounded
at any number of orders: see :func:`workflow.operations.summary`."""
from __future__ import annotations


def summary(engine) -> dict:
    return engine.summary()
