"""The ACME directory and account behind :class:`adapters.ca.acme.AcmeCA`: one
session per thread, kept between public calls (its HTTPS connection and the nonces the
CA handed out are reused: no handshake and no new-nonce request per call) and dropped
after a failure; the directory read once, the account key made once and registered once
(under the store's account lock, so two processes never make two)."""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator

import josepy as jose
import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.base import PermanentError
from adapters.ca.acme_edge import AcmeNetwork, acme_edge
from adapters.ca.acme_store import AcmeStore
from adapters.common.redact import redact_url

USER_AGENT = "certflow-acme"


@dataclass
class AcmeSession:
    """A connected client for one public call."""

    client: acme_client.ClientV2
    net: AcmeNetwork
    key: jose.JWK

    def post_as_get(self, url: str) -> requests.Response:
        return self.net.post(url, None, new_nonce_url=self.client.directory["newNonce"])

    def order(self, url: str) -> tuple[messages.Order, requests.Response]:
        response = self.post_as_get(url)
        return messages.Order.from_json(response.json()), response

    def authorization(self, url: str) -> messages.AuthorizationResource:
        response = self.post_as_get(url)
        return messages.AuthorizationResource(
            body=messages.Authorization.from_json(response.json()), uri=url)



class AcmeConnector:
    """Connects to one ACME directory with one account (see the module docstring)."""

    def __init__(self, directory: str, store: AcmeStore, clock: Callable[[], datetime], *,
                 email: str | None, verify: str | bool, eab_kid: str | None,
                 eab_hmac_key: str | None, timeout: float) -> None:
        self.directory = directory
        self._store = store
        self._clock = clock
        self._email = email
        self._verify = verify
        self._eab_kid = eab_kid
        self._eab_hmac_key = eab_hmac_key
        self._timeout = timeout
        self._lock = threading.Lock()
        self._directory: messages.Directory | None = None
        self._directory_json: dict[str, Any] = {}
        self._account: tuple[jose.JWK, str] | None = None
        self._local = threading.local()

    def network(self, key: jose.JWK | None) -> AcmeNetwork:
        return AcmeNetwork(key=key, alg=jose.ES256, verify_ssl=self._verify,
                        user_agent=USER_AGENT, timeout=self._timeout)  # type: ignore[arg-type]

    def connect(self) -> AcmeSession:
        """This thread's session, its last answer forgotten (a new public call)."""
        session = getattr(self._local, "session", None)
        if session is None:
            net = self.network(None)
            directory = self.load_directory(net)
            client = acme_client.ClientV2(directory, net)
            key, url = self._account_for(client, net)
            net.key = key
            net.account = messages.RegistrationResource(body=messages.Registration(), uri=url)
            session = self._local.session = AcmeSession(client, net, key)
        session.net.last_response = None
        return session

    def forget(self) -> None:
        """Drop this thread's session (after a failure: the next call starts afresh)."""
        session = getattr(self._local, "session", None)
        self._local.session = None
        if session is not None:
            session.net.session.close()

    def load_directory(self, net: AcmeNetwork) -> messages.Directory:
        with self._lock:
            if self._directory is not None:
                return self._directory
        with self._edge(net, "directory", directory=redact_url(self.directory)):
            raw = net.get(self.directory).json()
        missing = [k for k in ("newNonce", "newAccount", "newOrder")
                   if not isinstance(raw, dict) or not isinstance(raw.get(k), str)]
        if missing:
            raise PermanentError(f"{redact_url(self.directory)} is not an ACME directory (no "
                                 f"{', '.join(missing)})", directory=redact_url(self.directory))
        with self._lock:
            self._directory_json = raw
            self._directory = messages.Directory.from_json(raw)
            return self._directory

    def _account_for(self, client: acme_client.ClientV2, net: AcmeNetwork
                     ) -> tuple[jose.JWK, str]:
        with self._lock:
            if self._account is not None:
                return self._account
            with self._store.account_lock():
                # checked under the lock: another process may have registered meanwhile
                key_pem = self._store.load_account_key()
                if key_pem is None:
                    private = ec.generate_private_key(ec.SECP256R1())
                    key_pem = private.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())
                    self._store.save_account_key(key_pem)
                key = jose.JWKEC.load(key_pem)
                url = self._store.load_account_url(self.directory)
                if url is None:
                    url = self._register(client, net, key)
                    self._store.save_account_url(self.directory, url)
            self._account = (key, url)
            return self._account

    def _register(self, client: acme_client.ClientV2, net: AcmeNetwork, key: jose.JWK) -> str:
        net.key = key
        net.account = None
        binding = None
        if self._eab_kid is not None:
            binding = messages.ExternalAccountBinding.from_data(
                account_public_key=key.public_key(), kid=self._eab_kid,
                hmac_key=self._eab_hmac_key, directory=client.directory)
        elif self._directory_json.get("meta", {}).get("externalAccountRequired"):
            raise PermanentError(
                f"ACME CA {redact_url(self.directory)} requires external account binding: "
                "set eab_kid and eab_hmac_key in [ca]", field="eab_kid",
                directory=redact_url(self.directory))
        registration = messages.NewRegistration.from_data(
            email=self._email, terms_of_service_agreed=True,
            external_account_binding=binding)
        with self._edge(net, "new-account", directory=redact_url(self.directory)):
            try:
                return client.new_account(registration).uri
            except acme_errors.ConflictError as exc:
                return exc.location  # this key already has an account: reuse it

    @contextlib.contextmanager
    def _edge(self, net: AcmeNetwork, action: str, **values: Any) -> Iterator[None]:
        with acme_edge(net, action, self._clock, self._eab_kid, **values):
            yield
