"""Private keys of orders: made once per order, sealed by the master key in the ``keys``
table, unsealed only in memory for CSR signing and installation."""
from __future__ import annotations

from adapters.base import PermanentError
from workflow.clock import iso


class KeyStore:
    def __init__(self, store, adapters, config, clock) -> None:
        self.store, self.adapters, self.config, self.clock = store, adapters, config, clock

    def private_key(self, order, create: bool) -> bytes:
        """The order's key PEM. With ``create``, make it first if the order has none; a
        renewal keeps its predecessor's key when ``[renewal] fresh_key = false``."""
        a = self.adapters
        sealed = self.store.sealed_key(order.id)
        if sealed is None:
            if not create:
                raise PermanentError(f"order {order.id} has no private key")
            algorithm = self.config["keys"]["algorithm"]
            if order.renewal_of and not self.config["renewal"]["fresh_key"]:
                sealed = self.store.sealed_key(order.renewal_of)
            if sealed is None:
                sealed = a.vault.encrypt(a.keys.generate_key(algorithm))
            with self.store.transaction() as tx:
                tx.insert_key(order.id, algorithm, sealed, iso(self.clock.now()))
            sealed = self.store.sealed_key(order.id)
        return a.vault.decrypt(sealed)
