"""How the ``certflow`` command writes its log to stderr: text lines, or one JSON object
per line (``--log-format json``, ``[daemon] log_format = "json"``).

Only the CLI calls :func:`configure`; importing certflow configures nothing. Both formats
pass every line through :func:`redact` first: private keys, certificate requests and
approval tokens never reach a log, even from an adapter's error text.
"""
from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_PEM_SECRET = re.compile(r"-----BEGIN ([A-Z ]*PRIVATE KEY|CERTIFICATE REQUEST)-----.*?"
                         r"(-----END \1-----|$)", re.S)
_TOKEN = re.compile(r"((?:\?|&|\b)token=)[^&\s\"']+")


def redact(text: str) -> str:
    text = _PEM_SECRET.sub(lambda m: f"<{m.group(1).lower()} hidden>", text)
    return _TOKEN.sub(r"\1<hidden>", text)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}``, the line's own values (``order``,
    ``trigger``, ``source``, ``dest``, ``actor``; ``effect``, ``attempt``, ``result``,
    ``duration_seconds``) and ``exception`` when there is one; one object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name,
                "message": redact(record.getMessage())}
        line.update(getattr(record, "certflow", None) or {})
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


_HANDLER_MARK = "_certflow_cli"


def configure(verbose: bool, fmt: str | None) -> None:
    """The CLI's stderr handler on the root logger (INFO with ``-v``, else WARNING). Like
    ``logging.basicConfig``, it leaves a root logger that has someone else's handlers
    alone (the CLI called inside another program, or under a test runner)."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]
    if len(ours) != len(root.handlers):
        return
    for old in ours:
        root.removeHandler(old)
    handler = logging.StreamHandler()
    setattr(handler, _HANDLER_MARK, True)
    handler.setFormatter(formatter(fmt or "text"))
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    # -v tells what certflow does; the FSM library's per-callback lines are not that
    logging.getLogger("transitions").setLevel(logging.WARNING)


def use_format(fmt: str) -> None:
    """Switch the CLI's handler to ``fmt`` (``[daemon] log_format``, once config is read)."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, _HANDLER_MARK, False):
            handler.setFormatter(formatter(fmt))
