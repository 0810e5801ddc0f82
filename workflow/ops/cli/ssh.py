"""``certflow ssh pubkey | trust HOST[:PORT]``: the identity certflow logs in with, and the
host keys it pins (no silent trust on first use: a server is trusted only through here)."""
from __future__ import annotations

import click

from workflow.ops.cli.common import CommandRefused, emit_json, handle_errors, pass_ctx


def _remote_installer(ctx):
    from adapters.abilities import LogsInRemotely
    from workflow import config as config_mod
    from workflow.wiring import installer
    found = installer(config_mod.load(ctx.config_path))
    if not isinstance(found, LogsInRemotely):
        raise CommandRefused("the configured installer does not log in to servers")
    return found


def register(main: click.Group) -> None:
    @main.group()
    def ssh() -> None:
        """SSH servers of contracts (servers = ["ssh://USER@HOST[:PORT]/DIR"]).

        \b
        Example:
          certflow init --ssh-key . && certflow ssh pubkey
          certflow ssh trust web1.example.jp
        """

    @ssh.command()
    @pass_ctx
    @handle_errors
    def pubkey(ctx) -> None:
        """Print the public half of [install.ssh] identity, for the servers' authorized_keys.

        \b
        Example: certflow ssh pubkey >> authorized_keys
        """
        click.echo(_remote_installer(ctx).public_key())

    @ssh.command()
    @click.argument("host_port", metavar="HOST[:PORT]")
    @click.option("--expect", metavar="SHA256:...", help="record only if the fingerprint is this "
                  "(as the server's admin read it from `ssh-keygen -lf`).")
    @click.option("--replace", is_flag=True, help="drop another key pinned for this host "
                  "(after a real re-key).")
    @click.option("--json", "as_json", is_flag=True, help="print {host, fingerprint, recorded}.")
    @pass_ctx
    @handle_errors
    def trust(ctx, host_port: str, expect: str | None, replace: bool, as_json: bool) -> None:
        """Show HOST's SSH host key fingerprint and pin it in [install.ssh] known_hosts.

        \b
        Examples:
          certflow ssh trust web1.example.jp
          certflow ssh trust 192.0.2.10:2222 --expect SHA256:...
        """
        shown, recorded = _remote_installer(ctx).trust_host(host_port, expect, replace)
        if as_json:
            emit_json({"host": host_port, "fingerprint": shown, "recorded": recorded})
            return
        click.echo(f"{host_port} {shown} " + ("recorded" if recorded else "already pinned"))
