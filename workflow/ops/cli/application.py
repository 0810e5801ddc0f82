"""``certflow order query`` and ``certflow order amend``: incomplete applications."""
from __future__ import annotations

import click

from workflow.ops.cli.common import emit_json, handle_errors, pass_ctx


def register(main: click.Group) -> None:
    order = main.commands["order"]

    @order.command("query")
    @click.argument("order_id")
    @click.option("--field", "fields", multiple=True, required=True, metavar="FIELD",
                  help="a field the customer must complete: common_name (cn), organization "
                  "(org), unit, locality, prefecture, country, email; repeat for several.")
    @click.option("--note", help="what support adds for the customer (in the mail).")
    @click.option("--json", "as_json", is_flag=True, help="print the order as JSON.")
    @pass_ctx
    @handle_errors
    def query(ctx, order_id: str, fields: tuple[str, ...], note: str | None,
              as_json: bool) -> None:
        """Ask the customer to complete the application: the order (ordered or paid)
        waits in needs_info, a mail names each field and what is expected.

        \b
        Example: certflow order query 20261125-1a2b3c4d --field unit --field locality \\
                   --note 'the ward of the head office'
        """
        o = ctx.engine().query(order_id, list(fields), note, actor="cli")
        emit_json(o.to_dict()) if as_json else click.echo(f"{o.id} {o.state}")

    @order.command("amend")
    @click.argument("order_id")
    @click.option("--cn", "common_name", help="common name (not after payment).")
    @click.option("--org", "organization", help="organization, official English name.")
    @click.option("--unit", help="organizational unit.")
    @click.option("--locality", help="city/ward, e.g. Shinjuku-ku.")
    @click.option("--prefecture", help="prefecture, e.g. Tokyo.")
    @click.option("--country", help="ISO 3166 two-letter code.")
    @click.option("--email", help="the customer's registered address.")
    @click.option("--json", "as_json", is_flag=True, help="print the order as JSON.")
    @pass_ctx
    @handle_errors
    def amend(ctx, order_id: str, as_json: bool, **fields) -> None:
        """Record the customer's answer to a query: checked like a new order, the order
        returns to where it was queried from; history keeps each old and new value.

        \b
        Example: certflow order amend 20261125-1a2b3c4d --org "Example Corp." --unit Sales
        """
        given = {k: v for k, v in fields.items() if v is not None}
        o = ctx.engine().amend(order_id, actor="cli", **given)
        emit_json(o.to_dict()) if as_json else click.echo(f"{o.id} {o.state}")
