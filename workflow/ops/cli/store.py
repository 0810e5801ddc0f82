"""``certflow store copy --to postgresql://…``: move a SQLite store to PostgreSQL."""
from __future__ import annotations

import click

from workflow.ops.cli.common import CommandRefused, emit_json, handle_errors, pass_ctx


def register(main: click.Group) -> None:
    @main.group()
    def store() -> None:
        """The order store itself (SQLite file or PostgreSQL database).

        \b
        Example:
          certflow store copy --to postgresql://certflow@db1:5432/certflow
        """

    @store.command("copy")
    @click.option("--to", "url", required=True, metavar="URL",
                  help="an empty PostgreSQL database: postgresql://USER@HOST:PORT/DB")
    @click.option("--json", "as_json", is_flag=True, help="print what was copied as JSON.")
    @pass_ctx
    @handle_errors
    def copy(ctx, url: str, as_json: bool) -> None:
        """Copy this workspace's SQLite store into an empty PostgreSQL database: every
        table (orders, events, outbox, certificates, sealed keys, …), verified by replay
        before it commits. A target that holds rows is refused (exit 2), nothing written.

        \b
        Example:
          certflow store copy --to postgresql://certflow@db1:5432/certflow
          # then in config.toml: [store] url = "postgresql://certflow@db1:5432/certflow"
        """
        from workflow.store.copy import copy_store
        if not url.startswith(("postgresql://", "postgres://")):
            raise CommandRefused(f"--to must be a postgresql:// URL (got {url.split(':', 1)[0]}:…)")
        engine = ctx.engine()
        if engine.config["store"].get("url"):
            raise CommandRefused("store copy reads a SQLite store: this workspace's store.url "
                                 "is already PostgreSQL")
        report = copy_store(engine.store, url, engine.lifecycle)
        if as_json:
            emit_json({"to": report.url, "rows": report.rows,
                       "verified_orders": report.verified_orders})
            return
        counts = ", ".join(f"{t} {n}" for t, n in report.rows.items())
        click.echo(f"copied to {report.url}: {counts}; {report.verified_orders} orders "
                   "verified by replay")
