"""The one root of every error certflow raises, with declared fields.

It lives in states/ because states/ imports nothing of ours: the engine (workflow/) and
the adapters (adapters/) may both import it without crossing a room boundary.

A subclass declares the values that caused it in ``fields``; the constructor takes them
by keyword, refuses undeclared ones, and every declared field is an attribute (None when
not given), so callers read ``exc.field`` rather than ``getattr(exc, "field", default)``.

    class TransientError(CertflowError):
        fields = ("retry_after",)

    raise TransientError("CA busy", retry_after=30.0)
"""
from __future__ import annotations

from typing import ClassVar


class CertflowError(Exception):
    fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, message: str, **values: object) -> None:
        declared = self.declared_fields()
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise TypeError(f"{type(self).__name__} declares no field {', '.join(unknown)}")
        super().__init__(message)
        self.message = message
        for name in declared:
            setattr(self, name, values.get(name))

    @classmethod
    def declared_fields(cls) -> tuple[str, ...]:
        """The fields of this class and of every CertflowError above it, in MRO order."""
        names: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            names.update(dict.fromkeys(getattr(klass, "fields", ()) if
                                       issubclass(klass, CertflowError) else ()))
        return tuple(names)

    def details(self) -> dict[str, object]:
        """The declared fields and their values (for logs and JSON error output)."""
        return {name: getattr(self, name) for name in self.declared_fields()}
