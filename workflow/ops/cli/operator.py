"""The operator's commands (issue 19): ``order retry|resend-approval|set-approver|renew|
revoke``, ``notify failed|retry|ack``, ``ca crl``."""
from __future__ import annotations

import click

from adapters.abilities import REVOCATION_REASONS, PublishesCRL, Revokes
from workflow.errors import ValidationError
from workflow.ops.cli.common import emit_rows, handle_errors, pass_ctx

def _ids_or_all(ids: tuple[str, ...], all_: bool) -> list[int] | None:
    if bool(ids) == all_:
        raise ValidationError("id", "give notification ids or --all (not both)")
    if all_:
        return None
    try:
        return [int(i) for i in ids]
    except ValueError:
        raise ValidationError("id", f"notification ids are numbers (`certflow notify failed`), "
                              f"not {' '.join(ids)!r}") from None


def register(main: click.Group) -> None:
    order, ca = main.commands["order"], main.commands["ca"]

    @order.command("retry")
    @click.argument("order_id")
    @pass_ctx
    @handle_errors
    def retry(ctx, order_id: str) -> None:
        """Make every pending effect of the order due now (attempt counts kept); exit 2
        when nothing is pending. The daemon runs them on its next pass.

        \b
        Example: certflow order retry 20261125-1a2b3c4d && certflow daemon --once
        """
        n = ctx.engine().retry(order_id, actor="cli")
        click.echo(f"{order_id}: {n} pending effect(s) due now")

    @order.command("resend-approval")
    @click.argument("order_id")
    @pass_ctx
    @handle_errors
    def resend_approval(ctx, order_id: str) -> None:
        """Mail the approval URL again to the approver of an order awaiting approval by
        mail. The same token is resent while it is valid (it stays single-use); an
        expired or spent token is refused (exit 2): set the approver again instead.

        \b
        Example: certflow order resend-approval 20261125-1a2b3c4d
        """
        address = ctx.engine().resend_approval(order_id, actor="cli")
        click.echo(f"{order_id}: approval mail resent to {address}")

    @order.command("set-approver")
    @click.argument("order_id")
    @click.argument("address")
    @pass_ctx
    @handle_errors
    def set_approver(ctx, order_id: str, address: str) -> None:
        """Change the approver before approval (email validation): admin@, administrator@,
        webmaster@, hostmaster@ or postmaster@ the domain (BR 3.2.2.4.4). Recorded in the
        history; an application the CA holds is withdrawn and made again (new token).

        \b
        Example: certflow order set-approver 20261125-1a2b3c4d webmaster@example.jp
        """
        o = ctx.engine().set_approver(order_id, address, actor="cli")
        click.echo(f"{o.id} {o.state} approver {o.approver}")

    @order.command("renew")
    @click.argument("order_id")
    @pass_ctx
    @handle_errors
    def renew(ctx, order_id: str) -> None:
        """Open the renewal of a finished order now, whatever the fraction of its
        lifetime (a CA incident, a key compromise); prints the new order's id.

        \b
        Example: certflow order renew 20261125-1a2b3c4d
        """
        engine = ctx.engine()
        new_id = engine.renew_now(order_id, actor="cli")
        click.echo(f"{new_id} {engine.get(new_id).state} (renewal of {order_id})")

    @order.command("revoke")
    @click.argument("order_id")
    @click.option("--reason", required=True, metavar="R",
                  help=f"RFC 5280 reason: {', '.join(REVOCATION_REASONS)}.")
    @pass_ctx
    @handle_errors
    def revoke(ctx, order_id: str, reason: str) -> None:
        """Revoke the order's certificate at the CA and record it (final state `revoked`;
        the customer is told). The local CA lists it on its CRL (`certflow ca crl`), ACME
        uses revokeCert; with the manual CA revoke it at the CA first, then record it
        here. Installed files stay in place until a renewal replaces them.

        \b
        Example: certflow order revoke 20261125-1a2b3c4d --reason keyCompromise
        """
        engine = ctx.engine()
        o = engine.revoke(order_id, reason, actor="cli")
        by_hand = "" if isinstance(engine.adapters.ca, Revokes) else \
            " (recorded: the CA revokes only by hand, as the operator did)"
        click.echo(f"{o.id} {o.state} ({reason}){by_hand}")

    @ca.command("crl")
    @pass_ctx
    @handle_errors
    def crl(ctx) -> None:
        """Print the local CA's CRL (PEM, signed by the intermediate) for publishing.

        \b
        Example: certflow ca crl > /var/www/crl/certflow.crl.pem
        """
        from workflow.ops.cli.order import _local_ca
        click.echo(_local_ca(ctx, PublishesCRL).crl_pem().rstrip("\n"))

    @main.group()
    def notify() -> None:
        """Notifications that failed past their retries: list, retry, acknowledge.

        \b
        Example:
          certflow notify failed --json
        """

    @notify.command("failed")
    @click.option("--json", "as_json", is_flag=True, help="print rows as JSON.")
    @pass_ctx
    @handle_errors
    def failed(ctx, as_json: bool) -> None:
        """Failed notifications nobody acknowledged yet.

        \b
        Example: certflow notify failed
        """
        emit_rows(ctx.engine().failed_notifications(), as_json, "failed notifications",
                  ("id", "order_id", "template", "attempts", "failed_at", "last_error"),
                  no_wrap=("id", "order_id"))

    def _on_failed(name: str, method: str, done: str, doc: str) -> None:
        @click.argument("ids", nargs=-1)
        @click.option("--all", "all_", is_flag=True, help="every failed notification.")
        @pass_ctx
        @handle_errors
        def command(ctx, ids, all_: bool) -> None:
            n = getattr(ctx.engine(), method)(_ids_or_all(ids, all_))
            click.echo(f"{n} notification(s) {done}")
        command.__doc__ = doc
        notify.command(name)(command)

    _on_failed("retry", "retry_notifications", "queued again",
               "Queue failed notifications again, due now (the daemon sends them; one more "
               "attempt each).\n\n\b\nExample: certflow notify retry 42 43   |   "
               "certflow notify retry --all")
    _on_failed("ack", "ack_notifications", "acknowledged",
               "Acknowledge failed notifications: they leave `status` and `notify failed`."
               "\n\n\b\nExample: certflow notify ack 42   |   certflow notify ack --all")
