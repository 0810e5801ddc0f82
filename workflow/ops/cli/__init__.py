"""The ``certflow`` command line. Exit 0 ok; 2 refused (bad input, invalid transition,
unknown id, broken config: one line on stderr, nothing written); 75 temporarily
unavailable (the store is busy, full or read-only: one line, nothing half-written);
1 unexpected."""
from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="CERTFLOW_CONFIG", default="config.toml",
              show_default=True, metavar="FILE", help="config file ($CERTFLOW_CONFIG).")
@click.option("-v", "--verbose", is_flag=True, help="log what the engine does to stderr.")
@click.pass_context
def main(ctx: click.Context, config_path: str, verbose: bool) -> None:
    """certflow: SSL/TLS certificate orders as persisted state machines.

    \b
    Quick start:
      certflow init ws && cd ws
      certflow order place --cn www.example.jp --org "Example Corp." \\
          --locality Shinjuku-ku --prefecture Tokyo --country JP \\
          --plan basic --contract C-1001 --email owner@example.jp
      certflow order pay ID && certflow daemon --once
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # -v tells what certflow does; the FSM library's per-callback lines are not that
    logging.getLogger("transitions").setLevel(logging.WARNING)
    ctx.obj = Ctx(config_path)


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="overwrite an existing config.toml.")
@handle_errors
def init(directory: str, force: bool) -> None:
    """Write config.toml and the data directories (embedded defaults) into DIRECTORY.

    \b
    Example: certflow init /srv/certflow
    """
    from workflow.ops.workspace import init_workspace
    path = init_workspace(Path(directory), force=force)
    click.echo(f"workspace ready: {path}")


from workflow.ops.cli import ops as cli_ops, order as cli_order  # noqa: E402  (registers the sub-commands)

cli_order.register(main)
cli_ops.register(main)
