"""``certflow contract put|show|list|import|history``: the contract book."""
from __future__ import annotations

import click
from rich.markup import escape

from workflow.errors import NotFound
from workflow.ops.cli.common import emit_json, handle_errors, pass_ctx

_COLUMNS = ("id", "plan", "status", "fixed_ip", "plesk", "servers", "source", "updated_at")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(v if isinstance(v, str) else v.get("path", "") for v in value)
    return str(value)


def register(main: click.Group) -> None:
    @main.group()
    def contract() -> None:
        """Hosting contracts: the store's book (config.toml's tables are its seed).

        \b
        Example:
          certflow contract put C-1001 --plan basic --status active
          certflow contract list --status suspended
        """

    @contract.command("put")
    @click.argument("contract_id")
    @click.option("--plan", help="lite|basic|pro|flex|secure|advance|expert|ex-cloud "
                  "(required for a new contract).")
    @click.option("--status", help="active|suspended|expired|cancelled (new: active).")
    @click.option("--fixed-ip/--no-fixed-ip", default=None, help="the site has a fixed IP address.")
    @click.option("--plesk/--no-plesk", default=None, help="EX-CLOUD with a supported Plesk.")
    @click.option("--server", "servers", multiple=True, metavar="DIR",
                  help="install target directory; repeat for a load-balanced group.")
    @click.option("--reload", help="command run after the files are swapped in.")
    @click.option("--verify", metavar="HOST:PORT", help="TLS endpoint checked after install.")
    @click.option("--webroot", metavar="DIR", help="document root for validation files.")
    @click.option("--json", "as_json", is_flag=True, help="print the contract as JSON.")
    @pass_ctx
    @handle_errors
    def put(ctx, contract_id: str, as_json: bool, servers: tuple[str, ...], **fields) -> None:
        """Create a contract or change the fields given (the others stay). A contract that
        stops being active holds its orders not yet with the CA.

        \b
        Example:
          certflow contract put C-1002 --plan pro --server /srv/web1 --server /srv/web2 \\
            --reload 'systemctl reload nginx' --verify 127.0.0.1:443
          certflow contract put C-1002 --status suspended
        """
        given = {k: v for k, v in fields.items() if v is not None}
        if servers:
            given["servers"] = list(servers)
        c = ctx.engine().contracts.put(contract_id, actor="cli", **given)
        emit_json(c) if as_json else click.echo(f"{c['id']} {c['plan']} {c['status']}")

    @contract.command("show")
    @click.argument("contract_id")
    @click.option("--json", "as_json", is_flag=True, help="print the contract as JSON.")
    @pass_ctx
    @handle_errors
    def show(ctx, contract_id: str, as_json: bool) -> None:
        """Show one contract, its install targets and where it comes from.

        \b
        Example: certflow contract show C-1001 --json
        """
        c = ctx.engine().contracts.get(contract_id)
        if c is None:
            raise NotFound("contract", contract_id)
        if as_json:
            emit_json(c)
            return
        from rich.console import Console
        from rich.table import Table
        t = Table(show_header=False, box=None)
        for key, value in c.items():
            if value not in (None, [], ""):
                t.add_row(key, escape(_text(value)))
        Console().print(t)

    @contract.command("list")
    @click.option("--status", help="only contracts with this status.")
    @click.option("--json", "as_json", is_flag=True, help="print rows as JSON.")
    @pass_ctx
    @handle_errors
    def list_(ctx, status: str | None, as_json: bool) -> None:
        """List contracts (the store's and config.toml's seeds), by id.

        \b
        Example: certflow contract list --status active --json
        """
        rows = ctx.engine().contracts.list(status)
        if as_json:
            emit_json(rows)
            return
        from rich.console import Console
        from rich.table import Table
        t = Table(title="contracts")
        for col in _COLUMNS:
            t.add_column(col, overflow="fold")
        for c in rows:
            t.add_row(*(escape(_text(c.get(col))) for col in _COLUMNS))
        Console().print(t)

    @contract.command("import")
    @click.argument("file", type=click.Path(dir_okay=False))
    @pass_ctx
    @handle_errors
    def import_(ctx, file: str) -> None:
        """Put every contract of a CSV file (header row) or JSON Lines file, all or
        nothing: the first bad line is named and nothing is written.

        \b
        Example: certflow contract import contracts.csv
        """
        from workflow.contract_file import read_items
        items = read_items(file)
        changed = ctx.engine().contracts.put_many(items, actor="cli:import")
        click.echo(f"{len(items)} contracts read, {changed} changed")

    @contract.command("history")
    @click.argument("contract_id")
    @click.option("--json", "as_json", is_flag=True, help="print changes as JSON.")
    @pass_ctx
    @handle_errors
    def history(ctx, contract_id: str, as_json: bool) -> None:
        """Every change of a contract: who, when, before and after.

        \b
        Example: certflow contract history C-1001
        """
        changes = ctx.engine().contracts.history(contract_id)
        if as_json:
            emit_json(changes)
            return
        from rich.console import Console
        from rich.table import Table
        t = Table(title=f"contract {contract_id}")
        for col in ("at", "actor", "changed"):
            t.add_column(col, overflow="fold")
        for ch in changes:
            before, after = ch["before"] or {}, ch["after"]
            diff = [f"{k}: {_text(before.get(k))} → {_text(after.get(k))}"
                    for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
            t.add_row(ch["at"], escape(ch["actor"]), escape("; ".join(diff) or "(created)"))
        Console().print(t)
