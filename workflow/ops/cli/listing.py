"""What ``order list`` and ``order show`` print: the order table (one page), the streamed
JSON listing, and where an order stands and why."""
from __future__ import annotations

import json
from datetime import datetime

import click
from rich.markup import escape


def _age(created: str, now: datetime) -> str:
    """How long ago the order was placed; 0 for one a moved clock placed in the future."""
    from datetime import timedelta
    from workflow.clock import parse_iso
    delta = max(now - parse_iso(created), timedelta(0))
    days, secs = delta.days, delta.seconds
    return f"{days}d{secs // 3600}h" if days else f"{secs // 3600}h{secs % 3600 // 60}m"


def _style(lifecycle, name: str) -> str:
    state = lifecycle.state(name)
    if name == lifecycle.hold_state:
        return "bold red"
    if state.final:
        return "green" if state.carries_certificate else "yellow"
    return "cyan"


def order_table(orders, now: datetime, lifecycle, title: str = "orders"):
    from rich.table import Table
    t = Table(title=title)
    t.add_column("id", no_wrap=True, min_width=25)  # copied into the next command: whole
    for col in ("state", "common name", "contract", "not_after", "age"):
        t.add_column(col, overflow="fold")
    for o in orders:
        t.add_row(o.id, f"[{_style(lifecycle, o.state)}]{o.state}[/]", escape(o.common_name),
                  escape(o.contract), o.certificate.not_after if o.certificate else "",
                  _age(o.created_at, now))
    return t


#: rows ``order list`` prints as a table when no --limit is given
TABLE_LIMIT = 100


def list_orders(engine, filters: dict, as_json: bool) -> None:
    """``order list``: a table of one page, or every matching row as JSON, streamed a row
    at a time (constant memory at any number of orders; rows leave out the CSR)."""
    if not as_json and filters["limit"] is None:
        filters = {**filters, "limit": TABLE_LIMIT}
    orders = engine.find(**filters)
    if as_json:
        out = click.get_text_stream("stdout")  # buffered: one flush at the end, not per row
        out.write("[")
        for n, order in enumerate(orders):
            row = order.to_dict()
            row.pop("csr", None)
            out.write(("," if n else "") + "\n" + json.dumps(row, ensure_ascii=False, default=str))
        out.write("\n]\n")
        out.flush()
        return
    from rich.console import Console
    page = list(orders)
    Console().print(order_table(page, engine.now(), engine.lifecycle))
    if len(page) == filters["limit"]:
        click.echo(f"more may follow: --after {page[-1].id}", err=True)


def print_explanation(why: dict) -> None:
    """Where an order stands and why (``order show``)."""
    if why["deadline_trigger"]:
        click.echo(f"deadline {why['deadline_at']}: then {why['deadline_trigger']} fires "
                   f"({why['deadline_reason']})")
    if why["reason"]:
        click.echo(f"reason: {why['reason']}")
    if not why["pending"]:
        click.echo("pending effects: none")
        return
    from rich.console import Console
    from rich.table import Table
    t = Table(title="pending effects")
    for col in ("effect", "attempts", "next attempt", "last error"):
        t.add_column(col, overflow="fold")
    for p in why["pending"]:
        name = p["effect"] + (f" {p['param']}" if p["param"] else "")
        t.add_row(escape(name), str(p["attempts"]), p["next_at"] or "",
                  escape(p["last_error"] or ""))
    Console().print(t)
