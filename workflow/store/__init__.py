"""Persistence: every SQL statement certflow runs lives in this package."""
from workflow.store.sqlite import Store

__all__ = ["Store"]
