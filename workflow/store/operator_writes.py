"""The operator's writes (issue 19), inside a command's transaction: make an order's
pending effects due now, retry or acknowledge failed notifications, and keep
``order_names`` in step with the orders."""
from __future__ import annotations

from workflow.store.names import search_names
from workflow.store.operator_schema import INSERT_NAME


def _ids(ids: list[int] | None) -> tuple[str, tuple]:
    if ids is None:
        return "", ()
    return f" AND id IN ({', '.join('?' * len(ids))})", tuple(ids)


class OperatorWrites:
    """Mixed into the Transaction; uses its ``conn``."""

    def index_names(self, order_id: str, common_name: str, sans_json: str | None) -> None:
        self.conn.executemany(INSERT_NAME, [(order_id, n)
                                            for n in search_names(common_name, sans_json)])

    def effects_due_now(self, order_id: str, stamp: str) -> int:
        """Every pending effect of the order due at ``stamp``, attempts kept (a lease a
        worker holds stays: that run ends as it would); how many are pending."""
        return self.conn.execute("UPDATE outbox SET next_at = ? WHERE order_id = ? "
                                 "AND status = 'pending'", (stamp, order_id)).rowcount

    def retry_notifications(self, ids: list[int] | None, stamp: str) -> int:
        """Failed notifications pending again, due at ``stamp``, attempts kept."""
        where, args = _ids(ids)
        return self.conn.execute(
            "UPDATE outbox SET status = 'pending', next_at = ?, done_at = NULL, "
            "lease_owner = NULL, lease_until = NULL WHERE effect = 'notify' "
            "AND status = 'failed'" + where, (stamp, *args)).rowcount

    def ack_notifications(self, ids: list[int] | None, stamp: str) -> int:
        """Failed notifications an operator has seen: ``acked``, out of ``status``."""
        where, args = _ids(ids)
        return self.conn.execute(
            "UPDATE outbox SET status = 'acked', done_at = ? WHERE effect = 'notify' "
            "AND status = 'failed'" + where, (stamp, *args)).rowcount
