"""The operator's reads (issue 19): filtered, paged order listings in constant memory,
an order's pending effects, failed notifications, and a bounded summary for ``status``.

Every listing pages by order id (``id > ?``), a stable cursor, through indexes of
migration 003, so the cost is that of the page, not of the table. Portable SQL only.
"""
from __future__ import annotations

from typing import Iterator

from workflow.store.names import like_pattern
from workflow.store.records import order_record as _record
from workflow.store.schema import ORDER_COLUMNS

#: an order row as listings give it: everything but the CSR (bulky; ``order show`` has it)
_LISTED = ", ".join("NULL AS csr" if c == "csr" else f"o.{c}" for c in ORDER_COLUMNS)
_CERT = "c.serial, c.not_before, c.not_after, c.sha256"
#: rows read per query while streaming a listing
PAGE = 1000
#: how many rows of each kind ``status`` shows
SUMMARY_ROWS = 20


def _filters(states, contract, cn, email, expiring, renewal_of, after) -> tuple[list[str], list]:
    where, args = [], []
    if states:
        where.append(f"o.state IN ({', '.join('?' * len(states))})")
        args += list(states)
    if contract is not None:
        where.append("o.contract = ?")
        args.append(contract)
    if email is not None:
        where.append("o.email = ?")
        args.append(email)
    if renewal_of is not None:
        where.append("o.renewal_of = ?")
        args.append(renewal_of)
    if cn is not None:
        where.append("o.id IN (SELECT order_id FROM order_names WHERE name LIKE ? ESCAPE '\\')")
        args.append(like_pattern(cn))
    if expiring is not None:
        where.append("o.id IN (SELECT order_id FROM certificates WHERE not_after >= ? "
                     "AND not_after <= ?)")
        args += list(expiring)
    if after is not None:
        where.append("o.id > ?")
        args.append(after)
    return where, args


class OperatorReads:
    """Mixed into the store; uses its ``reading()`` (and ``state_counts()``, the one
    per-state count, of ObservationReads beside it)."""

    def find_orders(self, states: tuple[str, ...] = (), contract: str | None = None,
                    cn: str | None = None, email: str | None = None,
                    expiring: tuple[str, str] | None = None, renewal_of: str | None = None,
                    limit: int | None = None, after: str | None = None) -> Iterator[dict]:
        """Order records (csr None, certificate summary under ``certificate``) by id,
        after ``after``, at most ``limit``; streamed a page at a time. ``expiring`` is
        (from, to) ISO stamps of the certificate's not_after."""
        left = limit
        cursor = after
        # several states: one walk of the (state, id) index per state, merged by id, so a
        # page never sorts every order of those states
        groups = [(state,) for state in states] if len(states) > 1 else [tuple(states)]
        while left is None or left > 0:
            page = PAGE if left is None else min(PAGE, left)
            rows = []
            for group in groups:
                where, args = _filters(group, contract, cn, email, expiring, renewal_of, cursor)
                sql = (f"SELECT {_LISTED}, {_CERT} FROM orders o "
                       "LEFT JOIN certificates c ON c.order_id = o.id"
                       + (" WHERE " + " AND ".join(where) if where else "")
                       + " ORDER BY o.id LIMIT ?")
                with self.reading() as conn:
                    rows += [_record(r) for r in conn.execute(sql, (*args, page))]
            if len(groups) > 1:
                rows = sorted(rows, key=lambda r: r["id"])[:page]
            yield from rows
            if len(rows) < page:
                return
            cursor = rows[-1]["id"]
            if left is not None:
                left -= len(rows)

    def order_deadline(self, order_id: str) -> tuple[str | None, str | None]:
        """(deadline_at, deadline_trigger) of the order."""
        with self.reading() as conn:
            row = conn.execute("SELECT deadline_at, deadline_trigger FROM orders WHERE id = ?",
                               (order_id,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def pending_effects(self, order_id: str) -> list[dict]:
        with self.reading() as conn:
            return [dict(r) for r in conn.execute(
                "SELECT id, effect, param, attempts, next_at, last_error FROM outbox "
                "WHERE order_id = ? AND status = 'pending' ORDER BY next_at, id", (order_id,))]

    def failed_notifications(self, ids: list[int] | None = None) -> list[dict]:
        sql, args = ("SELECT id, order_id, param, attempts, last_error, done_at FROM outbox "
                     "WHERE effect = 'notify' AND status = 'failed'"), ()
        if ids is not None:
            sql, args = sql + f" AND id IN ({', '.join('?' * len(ids))})", tuple(ids)
        with self.reading() as conn:
            return [dict(r) for r in conn.execute(sql + " ORDER BY id", args)]

    def bounded_summary(self, hold_state: str, deadline_stamp: str) -> dict:
        """``certflow status``: counts, and at most SUMMARY_ROWS rows of each list."""
        n = SUMMARY_ROWS
        with self.snapshot():
            with self.reading() as conn:
                one = lambda sql, *a: conn.execute(sql, a).fetchone()[0]  # noqa: E731
                return {
                    "counts": self.state_counts(),
                    "on_hold_count": one("SELECT count(*) FROM orders WHERE state = ?",
                                         hold_state),
                    "on_hold": [dict(r) for r in conn.execute(
                        "SELECT id, common_name, reason, updated_at FROM orders WHERE state = ? "
                        "ORDER BY updated_at, id LIMIT ?", (hold_state, n))],
                    "deadlines_count": one("SELECT count(*) FROM orders WHERE deadline_at "
                                           "IS NOT NULL AND deadline_at <= ?", deadline_stamp),
                    "deadlines": [dict(r) for r in conn.execute(
                        "SELECT id, state, common_name, deadline_at, deadline_trigger FROM orders "
                        "WHERE deadline_at IS NOT NULL AND deadline_at <= ? "
                        "ORDER BY deadline_at, id LIMIT ?", (deadline_stamp, n))],
                    "failed_notifications": one("SELECT count(*) FROM outbox WHERE "
                                                "effect = 'notify' AND status = 'failed'"),
                    "failed_effects": [dict(r) for r in conn.execute(
                        "SELECT order_id, effect, param, attempts, last_error, done_at FROM outbox "
                        "WHERE status = 'failed' ORDER BY done_at DESC, id LIMIT ?", (n,))],
                    "failed_effects_count": one("SELECT count(*) FROM outbox "
                                                "WHERE status = 'failed'"),
                    "pending_effects": one("SELECT count(*) FROM outbox WHERE status = 'pending'"),
                }
