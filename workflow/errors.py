"""Typed errors of the engine. Every one derives from ``states.errors.CertflowError`` and
carries the values that caused it as declared ``fields``.

    CertflowError                  anything certflow refuses or cannot do (CLI exit 2)
     ├── ValidationError(.field)   bad input: an order field, a CSR, a certificate, config
     │    └── ConfigError          config.toml unreadable or invalid (.path, .line)
     ├── InvalidTransition         the trigger does not apply in the order's state, or a
     │                             guard refused it (.order_id, .state, .trigger, .reason)
     ├── ConcurrencyError          another process moved the order first (.order_id, .expected, .found)
     ├── NotFound                  no such order / token (.what, .key)
     └── StoreUnavailable          the store is busy past its timeout, full or read-only
                                   (.condition, .path): try again later (CLI exit 75)

Messages are one line and never contain private keys, tokens or passwords.
"""
from __future__ import annotations

from states.errors import CertflowError

__all__ = ["CertflowError", "ValidationError", "ConfigError", "InvalidTransition",
           "ConcurrencyError", "NotFound", "StoreUnavailable"]


class ValidationError(CertflowError):
    fields = ("field", "value")

    def __init__(self, field: str, message: str, value: object = None) -> None:
        super().__init__(message, field=field, value=value)


class ConfigError(ValidationError):
    fields = ("path", "line")

    def __init__(self, field: str, message: str, path: str = "", line: int | None = None) -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        CertflowError.__init__(self, f"{where}{message}", field=field, path=path, line=line)


class InvalidTransition(CertflowError):
    fields = ("order_id", "state", "trigger", "reason")

    def __init__(self, order_id: str, state: str, trigger: str, reason: str | None = None) -> None:
        msg = f"order {order_id}: cannot {trigger} in state {state}"
        super().__init__(f"{msg}: {reason}" if reason else msg, order_id=order_id, state=state,
                         trigger=trigger, reason=reason)


class ConcurrencyError(CertflowError):
    fields = ("order_id", "expected", "found")

    def __init__(self, order_id: str, expected: int, found: int | None) -> None:
        super().__init__(f"order {order_id} changed meanwhile: expected version {expected}, "
                         f"found {found}", order_id=order_id, expected=expected, found=found)


class NotFound(CertflowError):
    fields = ("what", "key")

    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"{what} {key} not found", what=what, key=key)


class StoreUnavailable(CertflowError):
    """Temporarily unavailable: nothing was written; the same command may succeed later."""

    fields = ("condition", "path")
    #: condition → what the operator reads
    CONDITIONS = {"busy": "busy (another process holds the write lock past store.busy_timeout_ms)",
                  "full": "full (no space left for the database)",
                  "read-only": "read-only (the database or its directory cannot be written)",
                  "unreachable": "unreachable (the PostgreSQL server cannot be reached, or the "
                                 "connection was lost)",
                  "conflict": "in conflict with another command (a serialization failure or "
                              "deadlock; it was rolled back)"}

    def __init__(self, condition: str, path: str) -> None:
        super().__init__(f"store {path} is {self.CONDITIONS.get(condition, condition)}; "
                         "nothing was written, try again later", condition=condition, path=path)
