"""What every command group of the CLI shares: the exit-code mapping of errors, the
lazily made Engine, and JSON output."""
from __future__ import annotations

import functools
import json
import os
import sys

import click

from workflow.errors import CertflowError, StoreUnavailable


class CommandRefused(click.ClickException):
    """Exit 2 with one line: how the CLI reports any refusal (the errors are the meaning)."""
    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"certflow: {self.message}", err=True)


class Unavailable(CommandRefused):
    """EX_TEMPFAIL: the same command may work later."""

    exit_code = 75


def handle_errors(fn):
    """Map a busy/full/read-only store to exit 75, every other CertflowError to exit 2;
    anything else is a bug: exit 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from adapters.base import AdapterError
        try:
            return fn(*args, **kwargs)
        except StoreUnavailable as exc:
            raise Unavailable(exc.message) from None
        except AdapterError as exc:  # the outside world failed: say which kind of failure
            raise CommandRefused(f"{type(exc).__name__}: {exc.message}") from None
        except CertflowError as exc:
            raise CommandRefused(exc.message or str(exc)) from None
        except click.ClickException:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("CERTFLOW_DEBUG"):
                raise
            click.echo(f"certflow: unexpected error: {type(exc).__name__}: {exc} "
                       "(set CERTFLOW_DEBUG=1 for a traceback)", err=True)
            sys.exit(1)
    return wrapper


class Ctx:
    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self._engine = None

    def engine(self):
        if self._engine is None:
            from workflow.engine import Engine
            self._engine = Engine.from_config(self.config_path)
        return self._engine


pass_ctx = click.make_pass_decorator(Ctx)


def emit_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def emit_rows(rows: list[dict], as_json: bool, title: str, cols: tuple[str, ...],
              no_wrap: tuple[str, ...] = ()) -> None:
    """A listing: JSON, or a table of ``cols`` (``no_wrap`` ones are never folded)."""
    if as_json:
        emit_json(rows)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    t = Table(title=title)
    for c in cols:
        t.add_column(c, overflow="fold", no_wrap=c in no_wrap)
    for r in rows:
        t.add_row(*(escape(str(r.get(c) if r.get(c) is not None else "")) for c in cols))
    Console().print(t)
