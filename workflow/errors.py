"""Typed errors of the engine. Every one carries the values that caused it.

    CertflowError                  anything certflow refuses or cannot do (CLI exit 2)
     ├── ValidationError(.field)   bad input: an order field, a CSR, a certificate, config
     │    └── ConfigError          config.toml unreadable or invalid (.path, .line)
     ├── InvalidTransition         the trigger does not apply in the order's state, or a
     │                             guard refused it (.order_id, .state, .trigger, .reason)
     ├── ConcurrencyError          another process moved the order first (.order_id, .expected, .found)
     └── NotFound                  no such order / token (.what, .key)

Messages are one line and never contain private keys, tokens or passwords.
"""
from __future__ import annotations


class CertflowError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(CertflowError):
    def __init__(self, field: str, message: str, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class ConfigError(ValidationError):
    def __init__(self, field: str, message: str, path: str = "", line: int | None = None) -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(field, f"{where}{message}")
        self.path = path
        self.line = line


class InvalidTransition(CertflowError):
    def __init__(self, order_id: str, state: str, trigger: str, reason: str | None = None) -> None:
        msg = f"order {order_id}: cannot {trigger} in state {state}"
        super().__init__(f"{msg}: {reason}" if reason else msg)
        self.order_id = order_id
        self.state = state
        self.trigger = trigger
        self.reason = reason


class ConcurrencyError(CertflowError):
    def __init__(self, order_id: str, expected: int, found: int | None) -> None:
        super().__init__(f"order {order_id} changed meanwhile: expected version {expected}, found {found}")
        self.order_id = order_id
        self.expected = expected
        self.found = found


class NotFound(CertflowError):
    def __init__(self, what: str, key: str) -> None:
        super().__init__(f"{what} {key} not found")
        self.what = what
        self.key = key
