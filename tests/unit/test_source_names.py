"""Every name certflow's code uses is defined: an import lost in a merge (an ``except``
clause naming an exception that is not imported) fails here, not in production on the
first error that reaches it."""
from __future__ import annotations

from pyflakes import api, messages
from pyflakes.reporter import Reporter

from support.helpers import ROOT


class _Collect(Reporter):
    def __init__(self) -> None:
        super().__init__(None, None)
        self.found: list[str] = []

    def flake(self, message) -> None:
        if isinstance(message, (messages.UndefinedName, messages.UndefinedLocal,
                                messages.UndefinedExport)):
            self.found.append(str(message))

    def syntaxError(self, filename, msg, lineno, offset, text) -> None:  # noqa: N802
        self.found.append(f"{filename}:{lineno}: {msg}")

    def unexpectedError(self, filename, msg) -> None:  # noqa: N802
        self.found.append(f"{filename}: {msg}")


def test_no_module_uses_an_undefined_name():
    report = _Collect()
    for package in ("states", "workflow", "adapters", "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            api.checkPath(str(path), report)
    assert report.found == []
