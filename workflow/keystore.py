"""Private keys of orders: made once per order, sealed by the master key in the ``keys``
table, unsealed only in memory for CSR signing and installation."""
from __future__ import annotations

from adapters.base import PermanentError
from workflow.clock import iso


class KeyStore:
    def __init__(self, engine) -> None:
        self.engine = engine

    def _sealed(self, order_id: str) -> bytes | None:
        row = self.engine.store.conn.execute("SELECT sealed FROM keys WHERE order_id = ?",
                                             (order_id,)).fetchone()
        return row[0] if row else None

    def private_key(self, order, create: bool) -> bytes:
        """The order's key PEM. With ``create``, make it first if the order has none; a
        renewal keeps its predecessor's key when ``[renewal] fresh_key = false``."""
        a = self.engine.adapters
        sealed = self._sealed(order.id)
        if sealed is None:
            if not create:
                raise PermanentError(f"order {order.id} has no private key")
            algorithm = self.engine.config["keys"]["algorithm"]
            if order.renewal_of and not self.engine.config["renewal"]["fresh_key"]:
                sealed = self._sealed(order.renewal_of)
            if sealed is None:
                sealed = a.vault.encrypt(a.keys.generate_key(algorithm))
            with self.engine.store.immediate() as conn:
                # a crashed earlier attempt may have stored one: the first key stays
                conn.execute("INSERT OR IGNORE INTO keys VALUES (?, ?, ?, ?)",
                             (order.id, algorithm, sealed, iso(self.engine.now())))
            sealed = self._sealed(order.id)
        return a.vault.decrypt(sealed)
