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

import base64
import contextlib
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import josepy as jose
import requests
from acme import challenges as acme_challenges
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.ca.acme_store import AcmeStore, OrderRecord
from adapters.common.retry_after import retry_after_seconds
from adapters.base import (
    AdapterError,
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

USER_AGENT = "certflow-acme"
#: when the CA gives no Retry-After
DEFAULT_RETRY_SECONDS = 3.0
#: poll() waits this long inside the call for a validation or issuance that is under way
IN_CALL_WAIT_SECONDS = 2.5
IN_CALL_STEP_SECONDS = 0.5
#: Pebble rejects ~5% of good nonces; six attempts make a surfaced badNonce ~1e-8
NONCE_ATTEMPTS = 6

#: application.validation -> ACME challenge type ("file" is our name for http-01 files)
CHALLENGE_TYPES = {"http-01": "http-01", "file": "http-01", "dns-01": "dns-01"}
#: problems that mean "the CA will not issue this": the order is rejected
REFUSAL_CODES = frozenset({
    "unauthorized", "rejectedIdentifier", "unsupportedIdentifier", "malformed", "caa",
    "badCSR", "dns", "connection", "incorrectResponse", "tls", "badRevocationReason",
})
#: problems worth trying again later, whatever the request was
TRANSIENT_CODES = frozenset({"badNonce", "rateLimited", "serverInternal"})
#: problems about the account's external binding: the operator must fix [ca] eab_*
EAB_CODES = frozenset({"externalAccountRequired", "unauthorized", "malformed"})


class _Network(acme_client.ClientNetwork):
    """ClientNetwork that rides out bad nonces and remembers the last HTTP answer.

    One instance serves one public call, so ``last_response`` is never shared by threads.
    """

    last_response: requests.Response | None = None

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any
                      ) -> requests.Response:
        response = super()._send_request(method, url, *args, **kwargs)
        self.last_response = response
        return response

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        # a badNonce means the server did nothing with the request: repeating it is safe
        for attempt in range(1, NONCE_ATTEMPTS + 1):
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt == NONCE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")


@dataclass
class _Session:
    """A connected client for one public call."""

    client: acme_client.ClientV2
    net: _Network
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


class AcmeCA:
    """CertificateAuthority over ACME; see the module docstring for the steps.

    ``directory``: the ACME directory URL. ``state_dir``: where the account and the
    order records live (one per directory). ``seal``/``unseal``: encrypt/decrypt the
    account key at rest. ``clock``: the engine's now(). ``ca_bundle``: PEM file trusted
    for the CA's HTTPS (None: the system store). ``eab_kid``/``eab_hmac_key``: external
    account binding (the key base64url, as CAs hand it out). No network I/O happens
    until the first call.
    """

    def __init__(self, directory: str, state_dir: str, seal: Callable[[bytes], bytes],
                 unseal: Callable[[bytes], bytes], clock: Callable[[], datetime],
                 email: str | None = None, ca_bundle: str | None = None,
                 eab_kid: str | None = None, eab_hmac_key: str | None = None,
                 timeout: float = 30.0) -> None:
        if not isinstance(directory, str) or not re.match(r"^https?://[^/\s]+", directory):
            raise BadInput("directory", f"ACME directory must be an http(s) URL: {directory!r}")
        if (eab_kid is None) != (eab_hmac_key is None):
            raise BadInput("eab_kid", "external account binding needs both eab_kid and "
                                      "eab_hmac_key")
        if eab_hmac_key is not None:
            _check_hmac_key(eab_hmac_key)
        if email is not None and (not isinstance(email, str) or "@" not in email
                                  or re.search(r"[\s,]", email)):
            raise BadInput("email", f"ACME account email is not one address: {email!r}")
        if timeout <= 0:
            raise BadInput("timeout", f"timeout must be positive: {timeout!r}")
        self.directory = directory
        self._store = AcmeStore(state_dir, seal, unseal, clock)
        self._clock = clock
        self._email = email
        self._verify: str | bool = ca_bundle if ca_bundle else True
        self._eab_kid = eab_kid
        self._eab_hmac_key = eab_hmac_key
        self._timeout = timeout
        self._lock = threading.Lock()
        self._directory: messages.Directory | None = None
        self._directory_json: dict[str, Any] = {}
        self._account: tuple[jose.JWK, str] | None = None

    def __repr__(self) -> str:
        return f"AcmeCA({self.directory!r}, state_dir={self._store.state_dir!r})"

    # --- CertificateAuthority -----------------------------------------------------

    def submit(self, application: Application) -> Submission:
        """Make (or find again) the ACME order for the application's idempotency key."""
        challenge_type = _challenge_type(application.validation)
        names = _identifiers(application.names)
        _check_csr(application.csr_pem)
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
        challenge_type = _challenge_type(application.validation)
        session = self._connect()
        waited_until = time.monotonic() + IN_CALL_WAIT_SECONDS
        while True:
            with self._edge(session.net, "order", order_url=record.order_url):
                order, response = session.order(record.order_url)
            status = _status(order.status)
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
                if _status(authz.body.status) != "pending":
                    continue
                # best effort: the CA may have moved the authorization on meanwhile
                with contextlib.suppress(messages.Error):
                    session.client.deactivate_authorization(authz)

    # --- optional abilities -------------------------------------------------------

    def account_url(self) -> str:
        """The ACME account URL (registering the account first if needed)."""
        return self._connect().net.account.uri

    def renewal_info(self, cert_pem: str) -> tuple[datetime, datetime] | None:
        """The CA's suggested renewal window (RFC 9773 ARI), or None if it offers none."""
        cert_id = renewal_cert_id(cert_pem)
        net = self._network(None)
        self._load_directory(net)
        base = self._directory_json.get("renewalInfo")
        if not base:
            return None
        url = base.rstrip("/") + "/" + cert_id
        with self._edge(net, "renewal-info", url=url):
            response = net.get(url, content_type="application/json")
            window = messages.RenewalInfo.from_json(response.json()).suggested_window
        start, end = window.start, window.end
        if start is None or end is None or end < start:
            raise PermanentError(f"ACME renewal info has no usable window: {url}", url=url)
        return _aware(start), _aware(end)

    # --- steps --------------------------------------------------------------------

    def _new_order(self, session: _Session, application: Application,
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

    def _find_lost_order(self, session: _Session, names: tuple[str, ...]) -> str | None:
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
                    if _status(order.status) in ("pending", "ready", "processing", "valid") and \
                            {i.value for i in order.identifiers} == wanted:
                        return url
                page, pages = response.links.get("next", {}).get("url"), pages + 1
        return None

    def _challenge(self, session: _Session, authz_url: str, challenge_type: str
                   ) -> Challenge | None:
        authz = session.authorization(authz_url)
        if _status(authz.body.status) != "pending":
            return None  # already valid (reused), or poll() reports the failure
        challb = _pick(authz, challenge_type)
        domain = authz.body.identifier.value
        if challenge_type == "http-01":
            return Challenge("http", domain, name=challb.chall.path.lstrip("/"),
                             content=challb.chall.key_authorization(session.key))
        return Challenge("dns", domain, name=challb.chall.validation_domain_name(domain),
                         content=challb.chall.validation(session.key))

    def _answer_pending(self, session: _Session, record: OrderRecord, order: messages.Order,
                        challenge_type: str) -> None:
        for url in order.authorizations:
            with self._edge(session.net, "authorization", order_url=record.order_url):
                authz = session.authorization(url)
            failure = _authorization_failure(authz, record)
            if failure is not None:
                raise failure
            if _status(authz.body.status) != "pending":
                continue
            domain = authz.body.identifier.value
            challb = _pick(authz, challenge_type)
            if _status(challb.status) != "pending" or self._store.was_answered(challb.uri):
                continue
            with self._edge(session.net, "answer-challenge", domain=domain,
                            order_url=record.order_url):
                session.client.answer_challenge(challb, challb.chall.response(session.key))
            self._store.record_answer(challb.uri, record.order_url)

    def _finalize(self, session: _Session, record: OrderRecord, order: messages.Order) -> None:
        _check_csr(record.csr_pem)
        order_resource = messages.OrderResource(body=order, uri=record.order_url,
                                                csr_pem=record.csr_pem.encode())
        with self._edge(session.net, "finalize", order_url=record.order_url, names=record.names):
            try:
                session.client.begin_finalization(order_resource)
            except messages.Error as exc:
                if exc.code != "orderNotReady":  # finalized by an earlier, interrupted call
                    raise

    def _download(self, session: _Session, record: OrderRecord, order: messages.Order
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

    def _order_failure(self, session: _Session, record: OrderRecord,
                       order: messages.Order, status: str) -> Refused:
        # the failed authorization names the domain; the order's problem may not
        with self._edge(session.net, "authorization", order_url=record.order_url):
            for url in order.authorizations:
                failure = _authorization_failure(session.authorization(url), record)
                if failure is not None:
                    return failure
        if order.error is not None:
            return _problem_refusal("ACME order failed", order.error, record.order_url)
        return Refused(f"ACME order is {status} (the CA gave no reason)",
                       order_url=record.order_url, status=status)

    def _record(self, application_id: str) -> OrderRecord:
        record = self._store.order_at(application_id)
        if record is None:
            raise PermanentError(f"no ACME order {application_id!r} in "
                                 f"{self._store.state_dir}", application_id=application_id)
        return record

    def _retry_after(self, response: requests.Response | None) -> float:
        return _parse_retry_after(response, self._clock) or DEFAULT_RETRY_SECONDS

    # --- connection, account ------------------------------------------------------

    def _network(self, key: jose.JWK | None) -> _Network:
        return _Network(key=key, alg=jose.ES256, verify_ssl=self._verify,
                        user_agent=USER_AGENT, timeout=self._timeout)  # type: ignore[arg-type]

    def _connect(self) -> _Session:
        net = self._network(None)
        directory = self._load_directory(net)
        client = acme_client.ClientV2(directory, net)
        key, url = self._account_for(client, net)
        net.key = key
        net.account = messages.RegistrationResource(body=messages.Registration(), uri=url)
        return _Session(client, net, key)

    def _load_directory(self, net: _Network) -> messages.Directory:
        with self._lock:
            if self._directory is not None:
                return self._directory
        with self._edge(net, "directory", directory=self.directory):
            raw = net.get(self.directory).json()
        missing = [k for k in ("newNonce", "newAccount", "newOrder")
                   if not isinstance(raw, dict) or not isinstance(raw.get(k), str)]
        if missing:
            raise PermanentError(f"{self.directory} is not an ACME directory (no "
                                 f"{', '.join(missing)})", directory=self.directory)
        with self._lock:
            self._directory_json = raw
            self._directory = messages.Directory.from_json(raw)
            return self._directory

    def _account_for(self, client: acme_client.ClientV2, net: _Network
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

    def _register(self, client: acme_client.ClientV2, net: _Network, key: jose.JWK) -> str:
        net.key = key
        net.account = None
        binding = None
        if self._eab_kid is not None:
            binding = messages.ExternalAccountBinding.from_data(
                account_public_key=key.public_key(), kid=self._eab_kid,
                hmac_key=self._eab_hmac_key, directory=client.directory)
        elif self._directory_json.get("meta", {}).get("externalAccountRequired"):
            raise PermanentError(
                f"ACME CA {self.directory} requires external account binding: "
                "set eab_kid and eab_hmac_key in [ca]", field="eab_kid",
                directory=self.directory)
        registration = messages.NewRegistration.from_data(
            email=self._email, terms_of_service_agreed=True,
            external_account_binding=binding)
        with self._edge(net, "new-account", directory=self.directory):
            try:
                return client.new_account(registration).uri
            except acme_errors.ConflictError as exc:
                return exc.location  # this key already has an account: reuse it

    # --- the edge -----------------------------------------------------------------

    @contextlib.contextmanager
    def _edge(self, net: _Network, action: str, **values: Any) -> Iterator[None]:
        """Map vendor exceptions raised during ``action`` to adapters.base errors."""
        response = lambda: net.last_response  # noqa: E731 - read when it fails
        try:
            yield
        except (AdapterError, BadInput):
            raise
        except messages.Error as exc:
            raise self._problem_error(exc, action, response(), values) from exc
        except requests.exceptions.JSONDecodeError as exc:
            raise PermanentError(f"ACME CA sent an unreadable answer during {action}",
                                 action=action, **values) from exc
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"ACME CA unreachable during {action}: "
                                 f"{type(exc).__name__}", action=action, **values) from exc
        except acme_errors.NonceError as exc:
            raise TransientError(f"ACME CA sent no usable nonce during {action}",
                                 action=action, **values) from exc
        except acme_errors.ClientError as exc:
            raise _http_error(exc, action, response(), self._clock, values) from exc
        except (acme_errors.Error, jose.errors.Error, KeyError) as exc:
            raise PermanentError(f"ACME CA sent an unexpected answer during {action}: "
                                 f"{type(exc).__name__}", action=action, **values) from exc

    def _problem_error(self, problem: messages.Error, action: str,
                       response: requests.Response | None, values: dict) -> AdapterError:
        code = problem.code or str(problem.typ)
        detail = _one_line(problem.detail or problem.title or problem.description or code)
        status = response.status_code if response is not None else None
        values = dict(values, action=action, problem=str(problem.typ), detail=detail,
                      http_status=status)
        if code in TRANSIENT_CODES or (status is not None and status >= 500):
            return TransientError(f"ACME CA busy during {action} ({code}): {detail}",
                                  retry_after=_parse_retry_after(response, self._clock),
                                  **values)
        if action == "new-account":
            if self._eab_kid is None and code == "externalAccountRequired":
                return PermanentError(f"ACME CA requires external account binding: set eab_kid "
                                      f"and eab_hmac_key in [ca] ({detail})", field="eab_kid",
                                      **values)
            if self._eab_kid is not None and code in EAB_CODES:
                return PermanentError(f"ACME CA refused the account's external binding "
                                      f"(check eab_kid and eab_hmac_key): {detail}",
                                      field="eab_kid", **values)
            return PermanentError(f"ACME CA refused the account: {detail}", **values)
        if action in ("new-order", "finalize") and code in REFUSAL_CODES:
            return Refused(f"ACME CA refused the order ({code}): {detail}", **values)
        return PermanentError(f"ACME CA error during {action} ({code}): {detail}", **values)


# --- pure helpers -----------------------------------------------------------------------


def renewal_cert_id(cert_pem: str) -> str:
    """RFC 9773 CertID: base64url(AKI keyIdentifier) "." base64url(serial DER content)."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode()
                                              if isinstance(cert_pem, str) else cert_pem)
    except ValueError as exc:
        raise BadInput("certificate", "not a readable PEM certificate") from exc
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound as exc:
        raise BadInput("certificate", "certificate has no authority key identifier") from exc
    if aki.key_identifier is None:
        raise BadInput("certificate", "certificate's authority key identifier has no keyid")
    serial = cert.serial_number
    # DER INTEGER content: big-endian two's complement, with room for the sign bit
    serial_bytes = serial.to_bytes((serial.bit_length() + 8) // 8, "big", signed=True)
    return f"{_b64url(aki.key_identifier)}.{_b64url(serial_bytes)}"


def _status(status: messages.Status | None) -> str:
    return status.name if status is not None else ""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _check_hmac_key(value: str) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+=*", value.strip()):
        raise BadInput("eab_hmac_key", "eab_hmac_key must be base64url text")
    if not jose.b64.b64decode(value.strip()):
        raise BadInput("eab_hmac_key", "eab_hmac_key is empty")


def _check_csr(csr_pem: str) -> None:
    try:
        x509.load_pem_x509_csr(csr_pem.encode())
    except (ValueError, AttributeError) as exc:
        raise BadInput("csr", "the order's CSR is not a readable PEM CSR") from exc


def _challenge_type(validation: str) -> str:
    try:
        return CHALLENGE_TYPES[validation]
    except KeyError:
        raise BadInput("validation", f"ACME cannot validate by {validation!r}; use "
                                     "http-01, file or dns-01") from None


def _identifiers(names: tuple[str, ...]) -> tuple[str, ...]:
    cleaned: list[str] = []
    for name in names:
        if not isinstance(name, str) or not re.fullmatch(r"(\*\.)?[a-z0-9.\-]+",
                                                         name.strip().lower().rstrip(".")):
            raise BadInput("names", f"not an ASCII DNS name for ACME: {name!r}")
        name = name.strip().lower().rstrip(".")
        if name not in cleaned:
            cleaned.append(name)
    if not cleaned:
        raise BadInput("names", "an ACME order needs at least one name")
    return tuple(cleaned)


def _pick(authz: messages.AuthorizationResource, challenge_type: str
          ) -> messages.ChallengeBody:
    for challb in authz.body.challenges:
        if challb.chall.typ == challenge_type and isinstance(
                challb.chall, (acme_challenges.HTTP01, acme_challenges.DNS01)):
            return challb
    domain = authz.body.identifier.value
    offered = ", ".join(c.chall.typ for c in authz.body.challenges) or "none"
    raise Refused(f"ACME CA offers no {challenge_type} challenge for {domain} "
                  f"(offers {offered})", domain=domain, offered=offered)


def _authorization_failure(authz: messages.AuthorizationResource,
                           record: OrderRecord) -> Refused | None:
    """Why this authorization ended the order, or None while it still may succeed."""
    status = _status(authz.body.status)
    domain = authz.body.identifier.value
    if status in ("deactivated", "expired", "revoked"):
        # withdrawn (cancel()) or left unanswered too long: the application is cancelled
        return Refused(f"ACME authorization for {domain} is {status}", trigger="cancel",
                       domain=domain, order_url=record.order_url, status=status)
    if status != "invalid":
        return None
    for challb in authz.body.challenges:
        if challb.error is not None:
            # the detail quotes the challenge URL; its token stays out of the reason (which
            # goes to events, exports and the customer's mail), as it does for challenge names
            token = challb.chall.encode("token") if hasattr(challb.chall, "token") else None
            return _problem_refusal(f"ACME validation of {domain} failed", challb.error,
                                    record.order_url, redact=token, domain=domain)
    return Refused(f"ACME authorization for {domain} is invalid (the CA gave no reason)",
                   domain=domain, order_url=record.order_url)


def _problem_refusal(what: str, problem: messages.Error, order_url: str,
                     redact: str | None = None, **values: Any) -> Refused:
    detail = _one_line(problem.detail or problem.title or str(problem.typ))
    if redact:
        detail = detail.replace(redact, "<token>")
    if problem.identifier is not None:
        values.setdefault("domain", problem.identifier.value)
    return Refused(f"{what}: {detail}", detail=detail, problem=str(problem.typ),
                   order_url=order_url, **values)


def _http_error(exc: acme_errors.ClientError, action: str,
                response: requests.Response | None, clock: Callable[[], datetime],
                values: dict) -> AdapterError:
    """A non-problem error answer (e.g. a proxy's HTML 502)."""
    status = response.status_code if response is not None else None
    if status is None or status >= 500 or status == 429:
        return TransientError(f"ACME CA answered HTTP {status} during {action}",
                              retry_after=_parse_retry_after(response, clock), action=action,
                              http_status=status, **values)
    return PermanentError(f"ACME CA answered HTTP {status} during {action}",
                          action=action, http_status=status, **values)


def _parse_retry_after(response: requests.Response | None,
                       clock: Callable[[], datetime]) -> float | None:
    """Retry-After in seconds, None when absent or bad."""
    if response is None:
        return None
    return retry_after_seconds(response.headers.get("Retry-After"), _aware(clock()))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
