"""``certflow daemon | status | graph | replay | export | import | doctor | demo``."""
from __future__ import annotations

import sys

import click
from rich.markup import escape

from workflow.ops.cli.common import emit_json, handle_errors, pass_ctx


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--once", is_flag=True, help="drain all work due now, then exit (cron, tests).")
    @pass_ctx
    @handle_errors
    def daemon(ctx, once: bool) -> None:
        """Run the scheduler: effects, deadlines (10-day approval expiry), renewals.

        \b
        Examples:
          certflow daemon            # long-running; SIGTERM finishes the current effect
          certflow daemon --once     # one pass of every job (cron, tests)
        """
        from workflow.effects.daemon import Daemon
        engine = ctx.engine()
        engine.adapters  # wired before any work: a bad master key or CA exits 2, nothing run
        d = Daemon(engine)
        if once:
            totals = d.run_once()
            click.echo(f"deadlines fired {totals['deadlines']}, effects run {totals['effects']}, "
                       f"renewals opened {totals['renewals']}")
        else:
            d.run_forever()

    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="print the summary as JSON.")
    @pass_ctx
    @handle_errors
    def status(ctx, as_json: bool) -> None:
        """Summary: orders per state, orders on hold (the 20 oldest), deadlines in the
        next 48 h (the 20 nearest), failed effects and notifications, with counts.

        \b
        Example: certflow status
        """
        from workflow.ops.status import summary
        s = summary(ctx.engine())
        if as_json:
            emit_json(s)
            return
        from rich.console import Console
        from rich.table import Table
        con = Console()
        t = Table(title="orders per state")
        t.add_column("state")
        t.add_column("orders", justify="right")
        for state, n in s["states"].items():
            t.add_row(state, str(n))
        con.print(t)
        for title, count, rows, cols in (
                ("on hold", s["on_hold_count"], s["on_hold"],
                 ("id", "common_name", "reason", "updated_at")),
                ("deadlines in the next 48 h", s["deadlines_48h_count"], s["deadlines_48h"],
                 ("id", "state", "common_name", "deadline_at", "deadline_trigger")),
                ("failed effects", s["failed_effects_count"], s["failed_effects"],
                 ("order_id", "effect", "param", "last_error"))):
            if rows:
                shown = f" ({len(rows)} of {count} shown)" if count > len(rows) else ""
                tt = Table(title=f"{title}: {count}{shown}")
                for c in cols:
                    tt.add_column(c, overflow="fold", no_wrap=c in ("id", "order_id"))
                for r in rows:
                    tt.add_row(*(escape(str(r.get(c) or "")) for c in cols))
                con.print(tt)
        if s["failed_notifications"]:
            con.print(f"failed notifications: {s['failed_notifications']} "
                      "(certflow notify failed)")

    @main.command()
    @click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
                  show_default=True)
    @click.option("--states", "states_ref", metavar="MODULE:ATTR", help="another lifecycle value.")
    @handle_errors
    def graph(fmt: str, states_ref: str | None) -> None:
        """Draw the lifecycle from states/.

        \b
        Example: certflow graph --format mermaid > docs/lifecycle.mmd
        """
        from workflow.ops.graph import dot, mermaid
        from workflow.history.replay import load_lifecycle
        lifecycle = load_lifecycle(states_ref)
        click.echo((mermaid if fmt == "mermaid" else dot)(lifecycle), nl=False)

    @main.command()
    @click.argument("order_ids", nargs=-1)
    @click.option("--all", "all_", is_flag=True, help="every order.")
    @click.option("--verify", is_flag=True, help="compare with the stored rows; exit 1 on a difference.")
    @click.option("--states", "states_ref", metavar="MODULE:ATTR",
                  help="replay against another lifecycle (what-if), e.g. mymod:LIFECYCLE.")
    @click.option("--json", "as_json", is_flag=True, help="one row per order: {id, ok, state, error}.")
    @pass_ctx
    @handle_errors
    def replay(ctx, order_ids, all_: bool, verify: bool, states_ref: str | None, as_json: bool) -> None:
        """Fold recorded events through the lifecycle (effects off).

        \b
        Examples:
          certflow replay --all --verify
          certflow replay --all --states mypolicy:NO_EXPIRY --json
        """
        from workflow.history.replay import run_replay
        rows = run_replay(ctx.engine(), list(order_ids), all_, verify, states_ref, progress=not as_json)
        bad = [r for r in rows if not r["ok"]]
        if as_json:
            emit_json(rows)
        else:
            for r in bad:
                click.echo(f"{r['id']}: {r['error']}")
            click.echo(f"{len(rows)} orders replayed, {len(rows) - len(bad)} ok, {len(bad)} refused or differing")
        if bad:
            sys.exit(1)

    @main.command("export")
    @click.argument("file", type=click.Path(dir_okay=False))
    @pass_ctx
    @handle_errors
    def export_(ctx, file: str) -> None:
        """Write every order with its history to FILE.jsonl (no keys, no tokens).

        \b
        Example: certflow export backup-2026-11-25.jsonl
        """
        from workflow.history.transfer import export_file
        n = export_file(ctx.engine(), file)
        click.echo(f"exported {n} orders to {file}")

    @main.command("import")
    @click.argument("file", type=click.Path(dir_okay=False))
    @pass_ctx
    @handle_errors
    def import_(ctx, file: str) -> None:
        """Read orders and histories from FILE.jsonl, verifying each by replay.
        All or nothing: a corrupt line or an order already here imports nothing.

        \b
        Example: certflow import backup-2026-11-25.jsonl
        """
        from workflow.history.transfer import import_file
        n = import_file(ctx.engine(), file)
        click.echo(f"imported {n} orders from {file}")

    @main.command()
    @pass_ctx
    @handle_errors
    def doctor(ctx) -> None:
        """Check config, database, CA, webroot and install targets, notifier; exit 1
        naming the first failing check.

        \b
        Example: certflow --config /srv/certflow/config.toml doctor
        """
        from workflow.ops.doctor import run_doctor
        sys.exit(run_doctor(ctx.config_path))

    @main.command()
    @click.option("--dir", "directory", default="demo-workspace", show_default=True,
                  help="workspace to create (emptied first).")
    @handle_errors
    def demo(directory: str) -> None:
        """A story on the embedded defaults with a moved clock: file validation to
        installed, mail approval by token, a 10-day cancellation, an application-only
        delivery, a rejection.

        \b
        Example: certflow demo --dir /tmp/certflow-demo
        """
        from workflow.ops.demo import run_demo
        run_demo(directory)
