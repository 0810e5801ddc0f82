"""The ``certflow`` command line. Exit 0 ok; 2 refused (bad input, invalid transition,
unknown id, broken config: one line on stderr, nothing written); 75 temporarily
unavailable (the store is busy, full or read-only: one line, nothing half-written);
1 unexpected."""
from __future__ import annotations

from pathlib import Path

import click

from workflow.ops.cli.common import Ctx, handle_errors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", envvar="CERTFLOW_CONFIG", default="config.toml",
              show_default=True, metavar="FILE", help="config file ($CERTFLOW_CONFIG).")
@click.option("-v", "--verbose", is_flag=True, help="log what the engine does to stderr.")
@click.option("--log-format", type=click.Choice(("text", "json")), default=None,
              help="log lines as text, or one JSON object per line (default: [daemon] "
              "log_format).")
@click.pass_context
def main(ctx: click.Context, config_path: str, verbose: bool, log_format: str | None) -> None:
    """certflow: SSL/TLS certificate orders as persisted state machines.

    \b
    Quick start:
      certflow init ws && cd ws
      certflow order place --cn www.example.jp --org "Example Corp." \\
          --locality Shinjuku-ku --prefecture Tokyo --country JP \\
          --plan basic --contract C-1001 --email owner@example.jp
      certflow order pay ID && certflow daemon --once
    """
    from workflow.ops.logformat import configure
    configure(verbose, log_format)
    ctx.obj = Ctx(config_path, log_format)


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="overwrite an existing config.toml.")
@click.option("--ssh-key", is_flag=True, help="also make [install.ssh] identity, the key "
              "certflow logs in to ssh:// servers with (see `certflow ssh pubkey`).")
@handle_errors
def init(directory: str, force: bool, ssh_key: bool) -> None:
    """Write config.toml and the data directories (embedded defaults) into DIRECTORY.

    \b
    Example: certflow init /srv/certflow
    """
    from workflow.ops.workspace import init_workspace
    path = init_workspace(Path(directory), force=force, ssh_key=ssh_key)
    click.echo(f"workspace ready: {path}")


from workflow.ops.cli import ops as cli_ops, order as cli_order  # noqa: E402  (the sub-commands)

cli_order.register(main)
cli_ops.register(main)

from workflow.ops.cli import application as cli_application, contract as cli_contract  # noqa: E402

cli_application.register(main)
cli_contract.register(main)

from workflow.ops.cli import ssh as cli_ssh  # noqa: E402

cli_ssh.register(main)

from workflow.ops.cli import store as cli_store  # noqa: E402

cli_store.register(main)

from workflow.ops.cli import operator as cli_operator  # noqa: E402  (needs `order` and `ca`)

cli_operator.register(main)
from workflow.ops.cli import web as cli_web  # noqa: E402

cli_web.register(main)
