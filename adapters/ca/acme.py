"""A CA that speaks ACME (RFC 8555), as resumable steps the engine's outbox can repeat.

    submit(app)  new order for app.names, recorded under app.idempotency_key before it
                 returns (a repeat finds the same order; a retry after a lost new-order
                 reply finds the order in the account's orders list); returns the
                 challenges to publish
    poll(id)     answers each pending challenge once, finalizes with the CSR when the order
                 is ready, downloads the chain when it is valid; otherwise ``Pending`` with
                 the CA's Retry-After. A failed authorization or order raises ``Refused``
                 carrying the ACME problem's detail.
    cancel(id)   deactivates pending authorizations (best effort, idempotent)

The account key is made once, sealed by the engine's vault and reused by every process
(see adapters.ca.acme_store). Vendor exceptions (acme, josepy, requests) are mapped to
adapters.base errors in ``_edge``; nothing vendor-specific escapes.
"""
from __future__ import annotations

import contextlib
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import josepy as jose
import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.ca.acme_edge import (AcmeNetwork, acme_edge, parse_retry_after,
                                   problem_refusal)
from adapters.ca.acme_account import AcmeConnector, AcmeSession
from adapters.ca.acme_store import AcmeStore, OrderRecord
from adapters.ca.acme_values import (CHALLENGE_TYPES, acme_challenge_type,
                                     authorization_failure, check_csr, check_hmac_key,
                                     identifiers, pick, renewal_cert_id, status_name)
from adapters.abilities import REVOCATION_REASONS, Health, RenewalAdvice
from adapters.common.redact import redact_url
from adapters.common.utc import as_utc
from adapters.settings import AdapterKind, Setting
from adapters.common.names import is_email
from adapters.base import (
    Application,
    BadInput,
    Challenge,
    Issued,
    Pending,
    PermanentError,
    Refused,
    Submission,
    TransientError,
)

#: when the CA gives no Retry-After
DEFAULT_RETRY_SECONDS = 3.0
#: poll() waits this long inside the call for a validation or issuance that is under way
IN_CALL_WAIT_SECONDS = 2.5
IN_CALL_STEP_SECONDS = 0.5


class AcmeCA:
    """CertificateAuthority over ACME; see the module docstring for the steps.

    Finalize needs the CSR's names to equal the order's (RFC 8555 7.4), so a customer
    CSR must carry every name (``names_from_application`` is False).

    ``directory``: the ACME directory URL. ``state_dir``: where the account and the
    order records live (one per directory). ``seal``/``unseal``: encrypt/decrypt the
    account key at rest. ``clock``: the engine's now(). ``ca_bundle``: PEM file trusted
    for the CA's HTTPS (None: the system store). ``eab_kid``/``eab_hmac_key``: external
    account binding (the key base64url, as CAs hand it out). No network I/O happens
    until the first call.
    """

    validation_methods = frozenset(CHALLENGE_TYPES)
    names_from_application = False

    def __init__(self, directory: str, state_dir: str, seal: Callable[[bytes], bytes],
                 unseal: Callable[[bytes], bytes], clock: Callable[[], datetime],
                 email: str | None = None, ca_bundle: str | None = None,
                 eab_kid: str | None = None, eab_hmac_key: str | None = None,
                 timeout: float = 30.0) -> None:
        if not isinstance(directory, str) or not re.match(r"^https?://[^/\s]+", directory):
            raise BadInput("directory", f"ACME directory must be an http(s) URL: {redact_url(directory)!r}")
        if (eab_kid is None) != (eab_hmac_key is None):
            raise BadInput("eab_kid", "external account binding needs both eab_kid and "
                                      "eab_hmac_key")
        if eab_hmac_key is not None:
            check_hmac_key(eab_hmac_key)
        if email is not None and not is_email(email):
            raise BadInput("email", f"ACME account email is not one address: {email!r}")
        if timeout <= 0:
            raise BadInput("timeout", f"timeout must be positive: {timeout!r}")
        self.directory = directory
        self._store = AcmeStore(state_dir, seal, unseal, clock)
        self._clock = clock
        self._eab_kid = eab_kid
        self._connector = AcmeConnector(directory, self._store, clock, email=email,
                                        verify=ca_bundle if ca_bundle else True,
                                        eab_kid=eab_kid, eab_hmac_key=eab_hmac_key,
                                        timeout=timeout)

    def __repr__(self) -> str:
        return f"AcmeCA({redact_url(self.directory)!r}, state_dir={self._store.state_dir!r})"

    # --- CertificateAuthority -----------------------------------------------------

    def submit(self, application: Application) -> Submission:
        """Make (or find again) the ACME order for the application's idempotency key."""
        challenge_type = acme_challenge_type(application.validation)
        names = identifiers(application.names)
        check_csr(application.csr_pem)
        session = self._connect()
        with self._store.order_lock():
            # checked again under the lock: another process may have made it meanwhile
            record = self._store.order_for(application.idempotency_key)
            if record is None:
                record = self._new_order(session, application, names)
        with self._edge(session.net, "order", order_url=record.order_url):
            order, _ = session.order(record.order_url)
            found = tuple(self._challenge(session, url, challenge_type)
                          for url in order.authorizations)
        # sorted: the CA may list authorizations in any order, a repeat must look the same
        return Submission(application_id=record.order_url, challenges=tuple(
            sorted((c for c in found if c is not None), key=lambda c: (c.domain, c.name))))

    def poll(self, application_id: str, application: Application) -> Issued | Pending:
        """Move the order on as far as it goes now; ``Pending`` when the CA needs time."""
        record = self._record(application_id)
        challenge_type = acme_challenge_type(application.validation)
        session = self._connect()
        waited_until = time.monotonic() + IN_CALL_WAIT_SECONDS
        while True:
            with self._edge(session.net, "order", order_url=record.order_url):
                order, response = session.order(record.order_url)
            status = status_name(order.status)
            if status not in ("pending", "ready", "processing", "valid"):
                # "invalid" per RFC 8555; Pebble also says "deactivated" after cancel()
                raise self._order_failure(session, record, order, status)
            if status == "valid":
                return self._download(session, record, order)
            if status == "pending":
                self._answer_pending(session, record, order, challenge_type)
            elif status == "ready":
                self._finalize(session, record, order)
            if time.monotonic() >= waited_until:
                return Pending(retry_after=self._retry_after(response),
                               detail=f"ACME order {status}")
            time.sleep(IN_CALL_STEP_SECONDS)

    def cancel(self, application_id: str, order_id: str | None = None) -> None:
        """Deactivate the order's pending authorizations; unknown, finished, or made for
        another order than ``order_id`` (keys start with the order id): nothing to do."""
        record = self._store.order_at(application_id)
        if record is None or (order_id is not None
                              and not record.idempotency_key.startswith(f"{order_id}:")):
            return
        session = self._connect()
        with self._edge(session.net, "cancel", order_url=record.order_url):
            order, _ = session.order(record.order_url)
            for url in order.authorizations:
                authz = session.authorization(url)
                if status_name(authz.body.status) != "pending":
                    continue
                # best effort: the CA may have moved the authorization on meanwhile
                with contextlib.suppress(messages.Error):
                    session.client.deactivate_authorization(authz)

    # --- optional abilities -------------------------------------------------------

    def revoke(self, cert_pem: str, reason: str) -> None:
        """Revokes: RFC 8555 §7.6 revokeCert, signed by the account that ordered it; a
        certificate the CA already revoked is no error (a repeat after a crash)."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        except ValueError as exc:
            raise BadInput("certificate", f"not a PEM certificate: {exc}") from exc
        session = self._connect()
        try:
            with self._edge(session.net, "revoke"):
                session.client.revoke(cert, REVOCATION_REASONS[reason])
        except PermanentError as exc:
            if not str(exc.problem or "").endswith(":alreadyRevoked"):
                raise

    def check(self) -> Health:
        """Checkable (doctor): the directory answers and is an ACME directory."""
        where = f"ACME directory {redact_url(self.directory)}"
        try:
            self._connector.load_directory(self._network(None))
        except TransientError as exc:
            raise TransientError(f"{where} unreachable: {exc.message}") from exc
        binding = " (external account binding configured)" if self._eab_kid else ""
        return Health(f"ACME directory {redact_url(self.directory)} answers{binding}")

    def account_url(self) -> str:
        """The ACME account URL (registering the account first if needed)."""
        return self._connect().net.account.uri

    def renewal_time(self, cert_pem: str) -> RenewalAdvice:
        """RenewalAdvisor (RFC 9773 ARI through ``ClientV2.renewal_time``): a random moment
        inside the CA's suggested window (None when the CA offers no renewal info), and
        when to ask again. The advice is stored per certificate and returned unasked until
        then, so a sweep does not ask the CA about every certificate every time."""
        cert_id = renewal_cert_id(cert_pem)
        now = as_utc(self._clock())
        stored = self._store.renewal_advice(cert_id)
        if stored is not None and stored[1] > now:
            return RenewalAdvice(*stored)
        net = self._network(None)
        client = acme_client.ClientV2(self._connector.load_directory(net), net)
        with self._edge(net, "renewal-info", directory=redact_url(self.directory)):
            try:
                renew_at, ask_again_at = client.renewal_time(cert_pem.encode("ascii"))
            except acme_errors.ARIError as exc:
                retry = _local_aware(exc.retry_after)
                raise TransientError(f"ACME renewal info unavailable: {exc.args[0]}",
                                     retry_after=max(0.0, (retry - now).total_seconds()),
                                     directory=redact_url(self.directory)) from exc
        advice = RenewalAdvice(_local_aware(renew_at) if renew_at else None,
                               _local_aware(ask_again_at))
        self._store.record_renewal_advice(cert_id, advice.renew_at, advice.ask_again_at)
        return advice

    # --- steps --------------------------------------------------------------------

    def _new_order(self, session: AcmeSession, application: Application,
                   names: tuple[str, ...]) -> OrderRecord:
        identifiers = [messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name)
                       for name in names]
        if not self._store.record_intent(application.idempotency_key, names):
            # an earlier attempt sent new-order and died before saving the answer
            lost = self._find_lost_order(session, names)
            if lost is not None:
                self._store.record_order(application.idempotency_key, lost, names,
                                         application.csr_pem)
                return OrderRecord(application.idempotency_key, lost, names, application.csr_pem)
        with self._edge(session.net, "new-order", names=names):
            response = session.net.post(session.client.directory["newOrder"],
                                        messages.NewOrder(identifiers=identifiers),
                                        new_nonce_url=session.client.directory["newNonce"])
        url = response.headers.get("Location")
        if not url:
            raise PermanentError("ACME CA answered new-order without an order URL", names=names)
        # recorded before anything else can fail: a retry finds this order, not a new one
        self._store.record_order(application.idempotency_key, url, names, application.csr_pem)
        return OrderRecord(application.idempotency_key, url, names, application.csr_pem)

    def _find_lost_order(self, session: AcmeSession, names: tuple[str, ...]) -> str | None:
        """An order of this account for exactly ``names``, still usable and not recorded
        for another key: the one whose new-order reply was lost (RFC 8555 §7.1.2.1)."""
        wanted = set(names)
        with self._edge(session.net, "orders-list", names=names):
            account = session.post_as_get(session.net.account.uri).json()
            page, pages = account.get("orders"), 0
            while page and pages < 20:
                response = session.post_as_get(page)
                for url in response.json().get("orders", []):
                    if self._store.order_at(url) is not None:
                        continue
                    order, _ = session.order(url)
                    if status_name(order.status) in ("pending", "ready", "processing", "valid") and \
                            {i.value for i in order.identifiers} == wanted:
                        return url
                page, pages = response.links.get("next", {}).get("url"), pages + 1
        return None

    def _challenge(self, session: AcmeSession, authz_url: str, challenge_type: str
                   ) -> Challenge | None:
        authz = session.authorization(authz_url)
        if status_name(authz.body.status) != "pending":
            return None  # already valid (reused), or poll() reports the failure
        challb = pick(authz, challenge_type)
        domain = authz.body.identifier.value
        if challenge_type == "http-01":
            return Challenge("http", domain, name=challb.chall.path.lstrip("/"),
                             content=challb.chall.key_authorization(session.key))
        return Challenge("dns", domain, name=challb.chall.validation_domain_name(domain),
                         content=challb.chall.validation(session.key))

    def _answer_pending(self, session: AcmeSession, record: OrderRecord, order: messages.Order,
                        challenge_type: str) -> None:
        for url in order.authorizations:
            with self._edge(session.net, "authorization", order_url=record.order_url):
                authz = session.authorization(url)
            failure = authorization_failure(authz, record)
            if failure is not None:
                raise failure
            if status_name(authz.body.status) != "pending":
                continue
            domain = authz.body.identifier.value
            challb = pick(authz, challenge_type)
            if status_name(challb.status) != "pending" or self._store.was_answered(challb.uri):
                continue
            with self._edge(session.net, "answer-challenge", domain=domain,
                            order_url=record.order_url):
                session.client.answer_challenge(challb, challb.chall.response(session.key))
            self._store.record_answer(challb.uri, record.order_url)

    def _finalize(self, session: AcmeSession, record: OrderRecord, order: messages.Order) -> None:
        check_csr(record.csr_pem)
        order_resource = messages.OrderResource(body=order, uri=record.order_url,
                                                csr_pem=record.csr_pem.encode())
        with self._edge(session.net, "finalize", order_url=record.order_url, names=record.names):
            try:
                session.client.begin_finalization(order_resource)
            except messages.Error as exc:
                if exc.code != "orderNotReady":  # finalized by an earlier, interrupted call
                    raise

    def _download(self, session: AcmeSession, record: OrderRecord, order: messages.Order
                  ) -> Issued:
        if not order.certificate:
            raise PermanentError("ACME order is valid but names no certificate URL",
                                 order_url=record.order_url)
        with self._edge(session.net, "download", order_url=record.order_url):
            text = session.post_as_get(order.certificate).text
        try:
            certificates = x509.load_pem_x509_certificates(text.encode())
        except ValueError as exc:
            raise PermanentError("ACME CA sent an unreadable certificate chain",
                                 order_url=record.order_url, url=order.certificate) from exc
        pems = [c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates]
        return Issued(certificate_pem=pems[0], chain_pem="".join(pems[1:]))

    def _order_failure(self, session: AcmeSession, record: OrderRecord,
                       order: messages.Order, status: str) -> Refused:
        # the failed authorization names the domain; the order's problem may not
        with self._edge(session.net, "authorization", order_url=record.order_url):
            for url in order.authorizations:
                failure = authorization_failure(session.authorization(url), record)
                if failure is not None:
                    return failure
        if order.error is not None:
            return problem_refusal("ACME order failed", order.error, record.order_url)
        return Refused(f"ACME order is {status} (the CA gave no reason)",
                       order_url=record.order_url, status=status)

    def _record(self, application_id: str) -> OrderRecord:
        record = self._store.order_at(application_id)
        if record is None:
            raise PermanentError(f"no ACME order {application_id!r} in "
                                 f"{self._store.state_dir}", application_id=application_id)
        return record

    def _retry_after(self, response: requests.Response | None) -> float:
        return parse_retry_after(response, self._clock) or DEFAULT_RETRY_SECONDS

    # --- connection, account (adapters.ca.acme_account) --------------------------

    def _network(self, key: jose.JWK | None) -> AcmeNetwork:
        return self._connector.network(key)

    def _connect(self) -> AcmeSession:
        return self._connector.connect()

    @contextlib.contextmanager
    def _edge(self, net: AcmeNetwork, action: str, **values: Any) -> Iterator[None]:
        with acme_edge(net, action, self._clock, self._eab_kid, **values):
            yield


def _local_aware(moment: datetime) -> datetime:
    """``acme`` computes its renewal times from the naive local ``datetime.now()``."""
    return moment.astimezone(timezone.utc)


def _build(s: dict, wiring) -> AcmeCA:
    return AcmeCA(s["directory"], s["state_dir"], seal=wiring.vault.encrypt,
                  unseal=wiring.vault.decrypt, clock=wiring.now, email=s["email"],
                  ca_bundle=s["ca_bundle"], eab_kid=s["eab_kid"], eab_hmac_key=s["eab_hmac_key"],
                  timeout=s["timeout"])


KIND = AdapterKind("ca", "acme", "an RFC 8555 CA", (
    Setting("directory", "string", None, "The ACME directory URL.", syntax="url", required=True),
    Setting("ca_bundle", "path", None, "PEM file of CAs to trust for the ACME server's TLS "
            "instead of the system store."),
    Setting("email", "string", None, "Account contact address.", syntax="email"),
    Setting("eab_kid", "string", None, "External account binding key id, when the CA requires one."),
    Setting("eab_hmac_key", "string", None, "External account binding HMAC key (secret; never "
            "logged).", secret=True),
    Setting("timeout", "number", 30.0, "Seconds before a request to the CA gives up (retried "
            "later).", minimum=0, above_minimum=True),
    Setting("state_dir", "path", "var/data/acme", "Account key (sealed) and order records."),
), _build)
