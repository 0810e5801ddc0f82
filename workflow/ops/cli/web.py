"""``certflow serve`` and ``certflow operator add|remove``."""
from __future__ import annotations

import sys

import click

from workflow.ops.cli.common import handle_errors, pass_ctx


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--listen", metavar="HOST:PORT", help="override [web] listen.")
    @pass_ctx
    @handle_errors
    def serve(ctx, listen: str | None) -> None:
        """Serve the approval page (/approve) and the operator console (/ops/).

        A process of its own, beside `certflow daemon` (which does not serve it).

        \b
        Examples:
          certflow serve                       # [web] listen, default 127.0.0.1:8080
          certflow serve --listen 127.0.0.1:9000
        """
        from workflow.web.server import listen_address, serve as run
        engine = ctx.engine()
        host, port = listen_address(engine.config, listen)
        engine.adapters  # wired first: a bad master key or CA exits 2 before listening
        click.echo(f"serving on http://{host}:{port}/ (console: /ops/)", err=True)
        run(engine, listen)

    @main.group()
    def operator() -> None:
        """Operators of the web console (/ops/).

        \b
        Example:
          printf '%s\\n' "$PASSWORD" | certflow operator add alice
        """

    @operator.command("add")
    @click.argument("name")
    @pass_ctx
    @handle_errors
    def add(ctx, name: str) -> None:
        """Create operator NAME; the password is read from stdin (one line).

        \b
        Example: printf '%s\\n' "$PASSWORD" | certflow operator add alice
        """
        from workflow import operators
        operators.check_name(name)
        if sys.stdin.isatty():
            password = click.prompt("password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        operators.add(ctx.engine(), name, password)
        click.echo(f"operator {name} added")

    @operator.command("remove")
    @click.argument("name")
    @pass_ctx
    @handle_errors
    def remove(ctx, name: str) -> None:
        """Remove operator NAME (its sessions end at their next request).

        \b
        Example: certflow operator remove alice
        """
        from workflow import operators
        operators.remove(ctx.engine(), name)
        click.echo(f"operator {name} removed")
