"""Run a command again when PostgreSQL rolled it back for a serialization failure or a
deadlock (``StoreUnavailable("conflict")``): the transaction wrote nothing, and the
command, run again from the start, reads what the other one committed. SQLite never
raises it (its writers take turns), so this costs nothing there."""
from __future__ import annotations

import functools
import random
import time

from workflow.errors import StoreUnavailable

ATTEMPTS = 5


def retry_conflicts(fn):
    """``fn`` again (up to ATTEMPTS times, a few jittered milliseconds apart) while it
    fails with a conflict; any other error, or the last conflict, goes to the caller."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except StoreUnavailable as exc:
                if exc.condition != "conflict" or attempt == ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.01 * 2 ** attempt))
    return wrapper
