"""``certflow order …`` and ``certflow ca …``."""
from __future__ import annotations

import click
from rich.markup import escape

from adapters.abilities import PublishesRoot, TakesApprovals, approval_tokens
from workflow.ops.cli.common import emit_json, emit_rows, handle_errors, pass_ctx
from workflow.errors import ValidationError


def _order_json(order) -> dict:
    return order.to_dict()


def _print_order(order, lifecycle) -> None:
    from rich.console import Console
    from rich.table import Table
    t = Table(show_header=False, box=None)
    d = _order_json(order)
    for key in ("id", "state", "common_name", "sans", "plan", "contract", "validation", "approver",
                "email", "deadline_at", "reason", "renewal_of", "superseded_by", "version",
                "created_at", "updated_at"):
        value = d.get(key)
        if value not in (None, [], ""):
            t.add_row(key, escape(", ".join(value) if isinstance(value, list) else str(value)))
    if d.get("query"):  # needs_info: what the customer was asked
        t.add_row("query", escape(", ".join(d["query"]["fields"])
                                  + (f" ({d['query']['note']})" if d["query"].get("note") else "")))
    if order.certificate:
        c = order.certificate
        t.add_row("certificate", f"serial {c.serial}\nnot_after {c.not_after}\nsha256 {c.sha256}")
    Console().print(t)
    state = lifecycle.state(order.state)
    if order.csr and not (state.final or state.carries_certificate):  # while it is with the CA
        click.echo(order.csr)



class TokenCommand(click.Command):
    """A command whose one argument is a token, never options: ``-4M_z9Pn9h…`` is a token
    (click read it as the short options -4 -M … -h, printed the help and exited 0, having
    approved nothing). Only a lone ``-h``/``--help`` asks for the help."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in ("-h", "--help", "--"):
            args = ["--", *args]
        return super().parse_args(ctx, args)

def register(main: click.Group) -> None:
    @main.group()
    def order() -> None:
        """Place, pay, cancel, resume and inspect certificate orders.

        \b
        Example:
          certflow order list --state awaiting_approval
        """

    @order.command("place")
    @click.option("--cn", "common_name", required=True, help="common name: the host of https://… (www.example.jp).")
    @click.option("--org", "organization", required=True, help="organization, official English name.")
    @click.option("--unit", help="organizational unit (optional).")
    @click.option("--locality", required=True, help="city/ward, e.g. Shinjuku-ku or Yokohama-shi.")
    @click.option("--prefecture", required=True, help="prefecture, e.g. Tokyo.")
    @click.option("--country", required=True, help="ISO 3166 two-letter code, e.g. JP.")
    @click.option("--plan", help="lite|basic|pro|flex|secure|advance|expert|ex-cloud "
                  "(default: the contract's plan; another is refused).")
    @click.option("--contract", required=True, help="hosting contract id from config.toml.")
    @click.option("--email", required=True, help="the customer's registered address.")
    @click.option("--validation", help="file|email|email-whois|http-01|dns-01 (default from config).")
    @click.option("--approver", help="with --validation email: admin@, administrator@, webmaster@, "
                  "hostmaster@ or postmaster@ the domain (default admin@<domain>).")
    @click.option("--language", default="ja", show_default=True, help="customer mail language: ja|en.")
    @click.option("--renewal-of", help="the order this one renews.")
    @click.option("--json", "as_json", is_flag=True, help="print the order as JSON.")
    @pass_ctx
    @handle_errors
    def place(ctx, as_json: bool, **fields) -> None:
        """Record a new order (ends `ordered`, or `rejected` with a reason).

        \b
        Example:
          certflow order place --cn www.example.jp --org "Example Corp." --locality Shinjuku-ku \\
            --prefecture Tokyo --country JP --plan basic --contract C-1001 --email owner@example.jp
        """
        o = ctx.engine().place(actor="cli", **{k: v for k, v in fields.items() if v is not None})
        emit_json(_order_json(o)) if as_json else click.echo(f"{o.id} {o.state}"
                                                             + (f": {o.reason}" if o.reason else ""))

    def _simple(name: str, trigger: str, doc: str, with_reason: bool = False):
        @click.argument("order_id")
        @click.option("--json", "as_json", is_flag=True, help="print the order as JSON.")
        @pass_ctx
        @handle_errors
        def command(ctx, order_id: str, as_json: bool, reason: str | None = None) -> None:
            data = {"reason": reason} if reason else {}
            o = ctx.engine().fire(order_id, trigger, actor="cli", **data)
            emit_json(_order_json(o)) if as_json else click.echo(f"{o.id} {o.state}")
        command.__doc__ = doc
        if with_reason:
            command = click.option("--reason", help="why (told to the customer).")(command)
        order.command(name)(command)

    _simple("pay", "pay", "Confirm payment: work starts.\n\n\b\nExample: certflow order pay 20261125-1a2b3c4d")
    _simple("resume", "resume", "Put a held order back where it was and re-queue its work.\n\n\b\n"
            "Example: certflow order resume 20261125-1a2b3c4d")
    _simple("cancel", "cancel", "Cancel an order (customer request).\n\n\b\n"
            "Example: certflow order cancel 20261125-1a2b3c4d --reason 'customer withdrew'",
            with_reason=True)

    @order.command("csr")
    @click.argument("order_id")
    @click.argument("file", type=click.Path(dir_okay=False))
    @pass_ctx
    @handle_errors
    def csr(ctx, order_id: str, file: str) -> None:
        """Record the customer's CSR (PEM or DER) of an application-only order.

        \b
        Example: certflow order csr 20261125-1a2b3c4d /home/customer/www.example.jp.csr
        """
        o = ctx.engine().submit_csr(order_id, _read(file, "csr"), actor="cli")
        click.echo(f"{o.id} {o.state}")

    @order.command("issue")
    @click.argument("order_id")
    @click.argument("cert", type=click.Path(dir_okay=False))
    @click.option("--chain", type=click.Path(dir_okay=False), help="intermediate certificate(s), PEM.")
    @pass_ctx
    @handle_errors
    def issue(ctx, order_id: str, cert: str, chain: str | None) -> None:
        """Record the certificate a CA sent (manual CA). It is verified against the
        order's key, names and the trust roots before anything is installed.

        \b
        Example: certflow order issue 20261125-1a2b3c4d server.crt --chain intermediate.crt
        """
        text = _read(cert, "certificate").decode("ascii", "replace")
        chain_text = _read(chain, "chain").decode("ascii", "replace") if chain else ""
        o = ctx.engine().record_certificate(order_id, text, chain_text, actor="cli")
        click.echo(f"{o.id} {o.state} sha256 {o.certificate.sha256}")

    @order.command("show")
    @click.argument("order_id")
    @click.option("--json", "as_json", is_flag=True, help="print the order as JSON.")
    @pass_ctx
    @handle_errors
    def show(ctx, order_id: str, as_json: bool) -> None:
        """Show one order: where it stands and why (reason, deadline and what fires
        then, pending effects), with its CSR while it is with the CA.

        \b
        Example: certflow order show 20261125-1a2b3c4d --json
        """
        from workflow.ops.cli.listing import print_explanation
        engine = ctx.engine()
        o = engine.get(order_id)
        why = engine.explain(order_id)
        if as_json:
            emit_json({**_order_json(o), "pending": why["pending"],
                       "deadline_trigger": why["deadline_trigger"]})
            return
        _print_order(o, engine.lifecycle)
        print_explanation(why)

    @order.command("list")
    @click.option("--state", "states", multiple=True, help="only orders in this state (repeat "
                  "for several).")
    @click.option("--contract", help="only orders of this hosting contract.")
    @click.option("--cn", help="a part of the common name or of a SAN (A-label or U-label).")
    @click.option("--email", help="only orders of this customer address.")
    @click.option("--expiring-within", type=int, metavar="DAYS",
                  help="certificates expiring within DAYS days (not yet expired).")
    @click.option("--renewal-of", help="the renewal of this order.")
    @click.option("--limit", type=int, help="at most N rows (table default 100; JSON: all).")
    @click.option("--after", metavar="ID", help="the rows after this order id (the next page).")
    @click.option("--json", "as_json", is_flag=True, help="rows as JSON (streamed; no CSR).")
    @pass_ctx
    @handle_errors
    def list_(ctx, states, contract, cn, email, expiring_within, renewal_of, limit, after,
              as_json: bool) -> None:
        """List orders by id, filtered and paged: id, state, common name, contract,
        not_after, age.

        \b
        Examples:
          certflow order list --state on_hold
          certflow order list --cn example.jp --expiring-within 30
          certflow order list --limit 100 --after 20261125-1a2b3c4d
        """
        from workflow.ops.cli.listing import list_orders
        list_orders(ctx.engine(), dict(states=states, contract=contract, cn=cn, email=email,
                                       expiring_within=expiring_within, renewal_of=renewal_of,
                                       limit=limit, after=after), as_json)

    @order.command("history")
    @click.argument("order_id")
    @click.option("--json", "as_json", is_flag=True, help="print events as JSON.")
    @pass_ctx
    @handle_errors
    def history(ctx, order_id: str, as_json: bool) -> None:
        """The order's events, oldest first.

        \b
        Example: certflow order history 20261125-1a2b3c4d
        """
        events = ctx.engine().history(order_id)
        if as_json:
            emit_json([e.to_dict() for e in events])
            return
        from rich.console import Console
        from rich.table import Table
        t = Table(title=f"order {order_id}")
        for col in ("seq", "at", "trigger", "from", "to", "actor", "detail"):
            t.add_column(col, overflow="fold")
        for e in events:
            t.add_row(str(e.seq), e.at, e.trigger, e.source, e.dest, e.actor,
                      escape(", ".join(f"{k}={v}" for k, v in e.data.items())[:100]))
        Console().print(t)

    @main.group()
    def ca() -> None:
        """The embedded local CA: approve tokens, list applications, print the root.

        \b
        Example:
          certflow ca applications --json
        """

    # a token is URL-safe base64: one in 64 starts with "-", which is no option here
    @ca.command("approve", cls=TokenCommand)
    @click.argument("token")
    @pass_ctx
    @handle_errors
    def approve(ctx, token: str) -> None:
        """Approve an application with the token from the approval mail (single use):
        the token, or the whole approval URL.

        \b
        Example: certflow ca approve q3X…   (the part after ?token= in the mail)
                 certflow ca approve 'https://certflow.localhost/approve?token=q3X…'
        """
        found = approval_tokens(token)
        app_id = _local_ca(ctx, TakesApprovals).approve(found[0] if found else token)
        order_id = ctx.engine().poll_now(app_id)
        click.echo(f"approved application {app_id}" + (f" (order {order_id})" if order_id else ""))

    @ca.command("applications")
    @click.option("--json", "as_json", is_flag=True, help="print rows as JSON.")
    @pass_ctx
    @handle_errors
    def applications(ctx, as_json: bool) -> None:
        """Applications the local CA has received (one per idempotency key).

        \b
        Example: certflow ca applications --json
        """
        emit_rows(_local_ca(ctx, TakesApprovals).applications(), as_json,
                  "local CA applications", ("application_id", "order_id", "common_name",
                                            "validation", "status", "created_at"))

    @ca.command("root")
    @pass_ctx
    @handle_errors
    def root(ctx) -> None:
        """Print the local CA's root certificate (PEM), to trust it in a browser or test.

        \b
        Example: certflow ca root > certflow-root.pem
        """
        click.echo(_local_ca(ctx, PublishesRoot).root_pem().rstrip("\n"))


def _local_ca(ctx, ability):
    engine = ctx.engine()
    ca = engine.adapters.ca
    if not isinstance(ca, ability):
        raise ValidationError("ca.kind", f"ca.kind is {engine.config['ca']['kind']!r}: "
                              "this command needs a CA that runs here (the local CA)")
    return ca


#: a CSR, certificate or chain is a few KiB; anything past this is not one
INPUT_FILE_CAP = 1 << 20


def _read(path: str, field: str) -> bytes:
    from adapters.common.files import read_capped
    return read_capped(path, INPUT_FILE_CAP, field)
