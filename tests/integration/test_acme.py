"""The ACME CA adapter against a real ACME server (Pebble), EAB required, nonces rejected ~5%,
and against scripted loopback ACME servers."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from adapters.ca.acme import AcmeCA
from adapters.base import (
    Application,
    CertificateAuthority,
    Issued,
    Pending,
    PermanentError,
    Refused,
    TransientError,
)
from support.acme_parts import Vault, application, clock, make_csr
from support.pebble import PebbleServer
from support.webserver import LoopbackHTTP, json_answer


POLL_DEADLINE = 90.0


# --- helpers ------------------------------------------------------------------------


def make_ca(pebble: PebbleServer, state_dir: Path, vault: Vault, **overrides) -> AcmeCA:
    args = dict(directory=pebble.directory, state_dir=str(state_dir), seal=vault.seal,
                unseal=vault.unseal, clock=clock, email="ops@example.com",
                ca_bundle=pebble.ca_bundle, eab_kid=pebble.eab_kid,
                eab_hmac_key=pebble.eab_hmac_key)
    args.update(overrides)
    return AcmeCA(**args)


def publish(pebble: PebbleServer, challenges) -> None:
    """What the engine's validator does: http files under the webroot, dns TXT records."""
    for challenge in challenges:
        if challenge.kind == "http":
            path = pebble.webroot / challenge.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(challenge.content)
        else:
            pebble.set_txt(challenge.name, challenge.content)


def unpublish(pebble: PebbleServer, challenges) -> None:
    for challenge in challenges:
        if challenge.kind == "http":
            (pebble.webroot / challenge.name).unlink(missing_ok=True)
        else:
            pebble.clear_txt(challenge.name)


def poll_until_done(ca: AcmeCA, application_id: str, app: Application) -> Issued:
    deadline = time.monotonic() + POLL_DEADLINE
    while True:
        outcome = ca.poll(application_id, app)
        if isinstance(outcome, Issued):
            return outcome
        assert isinstance(outcome, Pending)
        assert time.monotonic() < deadline, f"still pending: {outcome.detail}"
        time.sleep(min(outcome.retry_after, 0.5))


@contextlib.contextmanager
def published(pebble: PebbleServer, challenges):
    """The challenges stay published for the block, and are removed after it."""
    publish(pebble, challenges)
    try:
        yield
    finally:
        unpublish(pebble, challenges)


def issue(pebble: PebbleServer, ca: AcmeCA, app: Application) -> Issued:
    submission = ca.submit(app)
    with published(pebble, submission.challenges):
        return poll_until_done(ca, submission.application_id, app)


def assert_issued_for(issued: Issued, names: tuple[str, ...], key, root_pem: str) -> None:
    """The leaf names exactly ``names``, carries our key and chains to Pebble's root."""
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    chain = x509.load_pem_x509_certificates(issued.chain_pem.encode())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == set(names)
    assert leaf.public_key().public_numbers() == key.public_key().public_numbers()
    root = x509.load_pem_x509_certificate(root_pem.encode())
    verifier = (PolicyBuilder().store(Store([root])).time(clock())
                .build_server_verifier(x509.DNSName(names[0])))
    path = verifier.verify(leaf, chain)
    assert path[-1] == root


# --- issuance -------------------------------------------------------------------------


def test_four_http01_orders_are_issued_and_chain_to_pebbles_root(pebble, tmp_path):
    ca = make_ca(pebble, tmp_path / "acme", Vault())
    assert isinstance(ca, CertificateAuthority)
    orders = [("www.shop1.example.com", "shop1.example.com"), ("shop2.example.com",),
              ("www.shop3.example.org",), ("shop4.example.net", "mail.shop4.example.net")]
    root = pebble.root_pem()
    for number, names in enumerate(orders):
        key, csr = make_csr(names)
        issued = issue(pebble, ca, application(names, csr, f"four-{number}"))
        assert_issued_for(issued, names, key, root)
    assert pebble.challenge_files() == []


def test_dns01_order_is_issued_through_txt_records(pebble, tmp_path):
    ca = make_ca(pebble, tmp_path / "acme", Vault())
    names = ("www.dns-shop.example.com", "dns-shop.example.com")
    key, csr = make_csr(names)
    app = application(names, csr, "dns-1", validation="dns-01")
    submission = ca.submit(app)
    assert {(c.kind, c.name) for c in submission.challenges} <= {
        ("dns", "_acme-challenge.www.dns-shop.example.com"),
        ("dns", "_acme-challenge.dns-shop.example.com")}
    assert submission.challenges, "fresh names need a challenge"
    with published(pebble, submission.challenges):
        issued = poll_until_done(ca, submission.application_id, app)
    assert_issued_for(issued, names, key, pebble.root_pem())


# --- resumption ---------------------------------------------------------------------


def test_a_lost_new_order_reply_finds_the_order_the_ca_made(pebble, tmp_path):
    """A crash after the CA made the order but before its URL was saved: the retry finds
    that order in the account's orders list instead of making a second one."""
    import sqlite3
    vault, state_dir = Vault(), tmp_path / "acme"
    names = ("www.lost-reply.example.com", "lost-reply.example.com")
    key, csr = make_csr(names)
    app = application(names, csr, "lost-1")
    orders_before = set(pebble.orders_created())
    first = make_ca(pebble, state_dir, vault).submit(app)
    db = sqlite3.connect(state_dir / "acme.db")
    with db:
        db.execute("DELETE FROM orders WHERE idempotency_key = ?", (app.idempotency_key,))
    db.close()
    again = make_ca(pebble, state_dir, vault).submit(app)
    assert again.application_id == first.application_id
    assert set(pebble.orders_created()) - orders_before == {first.application_id.rsplit("/", 1)[-1]}


def test_a_repeated_submit_and_a_restarted_adapter_find_the_same_order(pebble, tmp_path):
    vault, state_dir = Vault(), tmp_path / "acme"
    names = ("www.resume.example.com", "resume.example.com")
    key, csr = make_csr(names)
    app = application(names, csr, "resume-1")
    orders_before = set(pebble.orders_created())

    first = make_ca(pebble, state_dir, vault)
    submission = first.submit(app)
    assert first.submit(app) == submission
    account = first.account_url()

    # a new process would build a new adapter over the same state_dir
    second = make_ca(pebble, state_dir, vault)
    assert second.account_url() == account
    again = second.submit(app)
    assert again.application_id == submission.application_id
    assert set(again.challenges) == set(submission.challenges)

    with published(pebble, again.challenges):
        issued = poll_until_done(second, again.application_id, app)
    assert_issued_for(issued, names, key, pebble.root_pem())
    # polling again after issuance downloads the same certificate; no new order
    assert first.poll(submission.application_id, app) == issued
    new_orders = set(pebble.orders_created()) - orders_before
    assert new_orders == {submission.application_id.rsplit("/", 1)[-1]}


def test_the_account_is_made_once_sealed_and_shared_by_racing_adapters(pebble, tmp_path):
    vault, state_dir = Vault(), tmp_path / "acme"
    accounts_before = pebble.accounts_created()
    adapters = [make_ca(pebble, state_dir, vault) for _ in range(4)]
    urls: list[str] = []
    threads = [threading.Thread(target=lambda a=a: urls.append(a.account_url()))
               for a in adapters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(urls) == 4 and len(set(urls)) == 1
    assert pebble.accounts_created() == accounts_before + 1

    sealed = state_dir / "account.key.sealed"
    assert b"PRIVATE KEY" not in sealed.read_bytes()
    assert b"PRIVATE KEY" in vault.unseal(sealed.read_bytes())
    for name in ("account.key.sealed", "account.json", "acme.db"):
        assert stat.S_IMODE((state_dir / name).stat().st_mode) == 0o600
    assert json.loads((state_dir / "account.json").read_text())["url"] == urls[0]


# --- failures -------------------------------------------------------------------------


def test_a_name_where_nothing_listens_is_refused_with_the_acme_detail(pebble, tmp_path):
    ca = make_ca(pebble, tmp_path / "acme", Vault())
    names = ("nothing-listens.example.com",)
    pebble.add_a(names[0], ["127.0.0.2"])
    try:
        _, csr = make_csr(names)
        app = application(names, csr, "refused-1")
        submission = ca.submit(app)
        with published(pebble, submission.challenges), pytest.raises(Refused) as refused:
            poll_until_done(ca, submission.application_id, app)
    finally:
        pebble.clear_a(names[0])
    error = refused.value
    assert error.trigger == "reject"
    assert error.domain == "nothing-listens.example.com"
    assert "127.0.0.2" in error.detail
    assert error.detail in str(error)
    assert "\n" not in str(error)
    # the refusal is stable: asking again says the same
    with pytest.raises(Refused) as again:
        ca.poll(submission.application_id, app)
    assert again.value.detail == error.detail


def test_a_cancelled_order_stays_cancelled(pebble, tmp_path):
    ca = make_ca(pebble, tmp_path / "acme", Vault())
    names = ("cancel-me.example.com",)
    _, csr = make_csr(names)
    app = application(names, csr, "cancel-1")
    submission = ca.submit(app)
    ca.cancel(submission.application_id)
    ca.cancel(submission.application_id)  # idempotent
    ca.cancel("https://127.0.0.1:1/unknown-order")  # not ours: nothing to do
    with pytest.raises(Refused) as cancelled:
        ca.poll(submission.application_id, app)
    assert cancelled.value.trigger == "cancel"


def test_missing_external_account_binding_is_a_clear_permanent_error(pebble, tmp_path):
    ca = make_ca(pebble, tmp_path / "acme", Vault(), eab_kid=None, eab_hmac_key=None)
    names = ("no-eab.example.com",)
    _, csr = make_csr(names)
    with pytest.raises(PermanentError) as failure:
        ca.submit(application(names, csr, "no-eab-1"))
    assert not isinstance(failure.value, Refused)  # the order is fine; the config is not
    assert failure.value.field == "eab_kid"
    assert "eab_kid" in str(failure.value) and "eab_hmac_key" in str(failure.value)
    assert not (tmp_path / "acme" / "account.json").exists()


def test_a_wrong_eab_key_is_a_permanent_error_that_does_not_show_the_key(pebble, tmp_path):
    wrong = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    ca = make_ca(pebble, tmp_path / "acme", Vault(), eab_hmac_key=wrong)
    with pytest.raises(PermanentError) as failure:
        ca.account_url()
    assert failure.value.field == "eab_kid"
    assert "eab" in str(failure.value)
    assert wrong not in str(failure.value) and wrong not in repr(failure.value.details())
    assert wrong not in repr(ca)


class ScriptedAcme(LoopbackHTTP):
    """A loopback ACME directory whose new-account answers are scripted, to see how the
    adapter takes answers Pebble never gives (rate limits, proxy errors, nonce storms)."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        super().__init__()
        self.answers = answers
        self.routes.update({
            "/dir": lambda request: with_nonce(json_answer({
                "newNonce": self.base_url + "/nonce", "newAccount": self.base_url + "/account",
                "newOrder": self.base_url + "/order"})),
            "/nonce": lambda request: with_nonce((200, {}, b"")),
            "/account": lambda request: with_nonce(self.answers.pop(0)),
        })

    @property
    def directory(self) -> str:
        return self.base_url + "/dir"

    @property
    def posts(self) -> int:
        return sum(request.method == "POST" for request in self.requests)


def with_nonce(answer):
    status, headers, body = answer
    nonce = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    headers = {"Content-Type": headers} if isinstance(headers, str) else headers
    return status, {**headers, "Replay-Nonce": nonce}, body


def problem(status: int, code: str, headers: dict[str, str] | None = None):
    body = json.dumps({"type": f"urn:ietf:params:acme:error:{code}", "detail": f"{code} here"})
    return status, {"Content-Type": "application/problem+json", **(headers or {})}, body.encode()


ACCOUNT_CREATED = (201, {"Content-Type": "application/json",
                         "Location": "http://127.0.0.1/account/1"}, b'{"status": "valid"}')


def test_bad_nonces_are_retried_without_surfacing(tmp_path):
    with ScriptedAcme([problem(400, "badNonce")] * 4 + [ACCOUNT_CREATED]) as server:
        vault = Vault()
        ca = AcmeCA(server.directory, str(tmp_path / "acme"), vault.seal, vault.unseal, clock)
        assert ca.account_url() == "http://127.0.0.1/account/1"
        assert server.posts == 5


def test_a_rate_limit_is_transient_with_the_cas_retry_after(tmp_path):
    with ScriptedAcme([problem(429, "rateLimited", {"Retry-After": "120"})]) as server:
        vault = Vault()
        ca = AcmeCA(server.directory, str(tmp_path / "acme"), vault.seal, vault.unseal, clock)
        with pytest.raises(TransientError) as limited:
            ca.account_url()
    assert limited.value.retry_after == 120
    assert limited.value.problem == "urn:ietf:params:acme:error:rateLimited"


def test_a_proxy_error_page_is_transient(tmp_path):
    page = (502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")
    with ScriptedAcme([page]) as server:
        vault = Vault()
        ca = AcmeCA(server.directory, str(tmp_path / "acme"), vault.seal, vault.unseal, clock)
        with pytest.raises(TransientError) as failure:
            ca.account_url()
    assert failure.value.http_status == 502


# --- renewal information (RFC 9773) ---------------------------------------------------


def test_renewal_advice_is_none_when_the_ca_offers_none(pebble, tmp_path):
    ca = make_ca(pebble, tmp_path / "acme", Vault())
    names = ("ari-none.example.com",)
    key, csr = make_csr(names)
    issued = issue(pebble, ca, application(names, csr, "ari-1"))
    advice = ca.renewal_time(issued.certificate_pem)  # Pebble 2.4 has no renewalInfo
    assert advice.renew_at is None and advice.ask_again_at > datetime.now(timezone.utc)


def rfc9773_example_certificate() -> str:
    """A certificate with the AKI and serial of RFC 9773's CertID example."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari.example.com")])
    aki = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
    now = clock()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(0x87654321)
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=90))
            .add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_renewal_advice_is_a_moment_in_the_window_and_is_not_asked_again_before_its_time(
        tmp_path, http_server):
    window = {"start": "2027-01-03T00:00:00Z", "end": "2027-01-04T00:00:00Z"}
    server = http_server()
    base = server.base_url
    info_path = "/renewal-info/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    server.routes.update({
        "/dir": json_answer({"newNonce": base + "/nonce", "newAccount": base + "/acct",
                             "newOrder": base + "/order", "renewalInfo": base + "/renewal-info"}),
        info_path: json_answer({"suggestedWindow": window}),
    })
    vault = Vault()
    ca = AcmeCA(base + "/dir", str(tmp_path / "acme"), vault.seal, vault.unseal, clock)
    cert = rfc9773_example_certificate()
    advice = ca.renewal_time(cert)
    asked = [request.path for request in server.requests].count(info_path)
    again = ca.renewal_time(cert)  # before ask_again_at: the stored advice
    assert asked == 1
    assert datetime(2027, 1, 3, tzinfo=timezone.utc) <= advice.renew_at \
        <= datetime(2027, 1, 4, tzinfo=timezone.utc)
    assert advice.ask_again_at > datetime.now(timezone.utc)  # no Retry-After: acme's 6 h
    assert again == advice
    assert [request.path for request in server.requests].count(info_path) == 1
