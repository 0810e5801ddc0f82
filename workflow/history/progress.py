"""Progress bars on long replays, exports and imports: rich on a terminal, silent otherwise."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

#: below this many orders the work is over before a bar would help
PROGRESS_MIN_ORDERS = 200


@contextmanager
def progress(label: str, total: int) -> Iterator[Callable[[], None]]:
    """advance() for a rich progress bar on stderr when it is a terminal, else a no-op."""
    if not (sys.stderr.isatty() and total >= PROGRESS_MIN_ORDERS):
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import Progress
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)
