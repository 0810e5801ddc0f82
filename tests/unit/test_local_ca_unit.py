"""The embedded CA without a web server: its files, applications, approval tokens, file
validation read from the webroot, issuance, and two processes sharing one CA directory."""
from __future__ import annotations

import multiprocessing
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from adapters.base import (BadInput, CertificateAuthority, Issued, Pending, PermanentError,
                           Refused, TransientError)
from adapters.crypto.keys import KeyVault, generate_key, make_csr
from adapters.ca.local import LocalCA
from adapters.crypto.x509check import cert_info
from support.ca import (DN, NAMES, CollectingNotifier, application, assert_verifies, place,
                        submit_from_another_process, token_from)


# the local CA's certificates are checked by openssl against the system clock
pytestmark = pytest.mark.wall_clock


@pytest.fixture
def notifier() -> CollectingNotifier:
    return CollectingNotifier()


@pytest.fixture
def ca(tmp_path, clock, notifier) -> LocalCA:
    ca = LocalCA(str(tmp_path / "ca"), KeyVault(KeyVault.new_master_key()), clock.now,
                 notifier=notifier)
    ca.ensure()
    return ca


# --- the CA's own files -------------------------------------------------------------


def test_ensure_makes_root_and_intermediate_once_with_keys_encrypted_0600(ca, tmp_path):
    directory = tmp_path / "ca"
    before = {p.name: p.read_bytes() for p in directory.iterdir() if p.suffix != ".db"}
    ca.ensure()
    assert {p.name: p.read_bytes() for p in directory.iterdir() if p.suffix != ".db"} == before
    for key_file in ("root.key.enc", "intermediate.key.enc"):
        assert stat.S_IMODE((directory / key_file).stat().st_mode) == 0o600
        assert b"PRIVATE KEY" not in (directory / key_file).read_bytes()
    root = x509.load_pem_x509_certificate(ca.root_pem().encode())
    intermediate = x509.load_pem_x509_certificate(ca.chain_pem().encode())
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert intermediate.issuer == root.subject
    assert isinstance(ca, CertificateAuthority)


def test_a_ca_directory_opened_with_another_master_key_is_refused_before_anything(
        ca, tmp_path, clock, rsa_csr):
    stranger = LocalCA(str(tmp_path / "ca"), KeyVault(KeyVault.new_master_key()), clock.now)
    app = application(rsa_csr, webroot=str(tmp_path / "www"))
    with pytest.raises(BadInput) as caught:
        stranger.submit(app)
    assert caught.value.field == "master_key" and "master key" in caught.value.message
    assert ca.applications() == []  # nothing was recorded


# --- mail validation ----------------------------------------------------------------


def test_approval_mail_carries_a_single_use_token_that_leads_to_issuance(ca, notifier, clock,
                                                                         rsa_csr):
    app = application(rsa_csr, validation="email", language="en")
    submission = ca.submit(app)
    assert submission.approver == "admin@example.jp" and submission.challenges == ()

    [notice] = notifier.sent
    assert (notice.template, notice.to, notice.language) == ("approval_request",
                                                            "admin@example.jp", "en")
    assert notice.idempotency_key == "order-1:3:submit:approval"
    assert notice.context["common_name"] == "www.example.jp"
    assert notice.context["names"] == list(NAMES)
    assert notice.context["deadline_at"] == app.deadline_at
    assert notice.context["order_id"] == "order-1"
    assert notice.context["url"].startswith("https://certflow.localhost/approve?token=")
    token = token_from(notice)
    assert len(token) >= 22  # >= 128 bits in url-safe base64

    assert ca.poll(submission.application_id, app) == Pending(
        retry_after=60, detail="waiting for admin@example.jp to approve")
    assert ca.approve(token) == submission.application_id
    with pytest.raises(BadInput) as again:
        ca.approve(token)
    assert (again.value.field, again.value.message) == ("token",
                                                        "unknown or already used approval token")

    issued = ca.poll(submission.application_id, app)
    assert assert_verifies(ca, issued, rsa_csr, clock).names == NAMES
    assert ca.poll(submission.application_id, app) == issued
    [row] = ca.applications()
    assert row["status"] == "issued"
    assert row["serial"] == cert_info(issued.certificate_pem).serial


def test_resubmitting_sends_no_second_mail(ca, notifier, rsa_csr):
    app = application(rsa_csr, validation="email-whois")
    first, second = ca.submit(app), ca.submit(app)
    assert first == second
    assert len(notifier.sent) == 1 and len(ca.applications()) == 1


def test_unknown_token_is_refused_without_echoing_it(ca):
    with pytest.raises(BadInput) as caught:
        ca.approve("made-up-token-1234567890")
    assert caught.value.message == "unknown or already used approval token"
    assert "made-up" not in str(caught.value)


def test_token_is_not_stored_in_the_database(ca, notifier, rsa_csr, tmp_path):
    ca.submit(application(rsa_csr, validation="email"))
    token = token_from(notifier.sent[0]).encode()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "ca").glob("ca.db*"))
    assert stored and token not in stored
    assert all(token.decode() not in str(v) for row in ca.applications() for v in row.values())


def test_token_expires_with_the_deadline(ca, notifier, clock, rsa_csr):
    app = application(rsa_csr, validation="email", deadline_at=clock.now() + timedelta(days=10))
    ca.submit(app)
    clock.advance(timedelta(days=10, seconds=1))
    with pytest.raises(BadInput) as caught:
        ca.approve(token_from(notifier.sent[0]))
    assert caught.value.field == "token" and "expired" in caught.value.message


def test_failed_mail_leaves_the_application_retryable(ca, notifier, clock, rsa_csr):
    notifier.fail_next = 1
    app = application(rsa_csr, validation="email")
    with pytest.raises(TransientError):
        ca.submit(app)
    assert notifier.sent == [] and len(ca.applications()) == 1

    submission = ca.submit(app)
    [notice] = notifier.sent
    assert ca.approve(token_from(notice)) == submission.application_id
    assert isinstance(ca.poll(submission.application_id, app), Issued)


def test_cancelled_application_cannot_be_approved_or_issued(ca, notifier, rsa_csr):
    app = application(rsa_csr, validation="email")
    submission = ca.submit(app)
    ca.cancel(submission.application_id)
    ca.cancel(submission.application_id)  # idempotent
    with pytest.raises(BadInput):
        ca.approve(token_from(notifier.sent[0]))
    with pytest.raises(Refused):
        ca.poll(submission.application_id, app)
    assert ca.applications()[0]["status"] == "cancelled"


def test_mail_validation_without_a_notifier_is_a_permanent_error(tmp_path, clock, rsa_csr):
    ca = LocalCA(str(tmp_path / "ca"), KeyVault(KeyVault.new_master_key()), clock.now)
    with pytest.raises(PermanentError):
        ca.submit(application(rsa_csr, validation="email"))


# --- file validation ----------------------------------------------------------------


def test_file_validation_reads_the_webroot_without_connect_to(ca, tmp_path, clock):
    csr = make_csr(generate_key("p256"), DN, NAMES)
    app = application(csr, webroot=str(tmp_path / "www"))
    submission = ca.submit(app)
    assert "not readable" in ca.poll(submission.application_id, app).detail
    place(tmp_path / "www", submission.challenges[0])
    issued = ca.poll(submission.application_id, app)
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment  # ECDSA key
    assert_verifies(ca, issued, csr, clock)


def test_leaf_lifetime_follows_the_application(ca, tmp_path, clock, rsa_csr):
    webroot = tmp_path / "www"
    for key, not_after in (("order-1:3:submit", clock.now() + timedelta(days=199)),
                           ("order-2:3:submit", None)):
        app = application(rsa_csr, key=key, webroot=str(webroot), not_after=not_after)
        submission = ca.submit(app)
        place(webroot, submission.challenges[0])
        info = cert_info(ca.poll(submission.application_id, app).certificate_pem)
        # asked for counting from now; the leaf is backdated, and BR 6.3.2 counts both ends
        expected = (not_after or clock.now() + timedelta(days=89)) - clock.now()
        validity = info.not_after - info.not_before + timedelta(seconds=1)
        assert abs(validity - expected) < timedelta(seconds=1)
        assert info.not_before <= clock.now()


# --- applications -------------------------------------------------------------------


def test_same_idempotency_key_is_one_application(ca, rsa_csr):
    app = application(rsa_csr)
    first = ca.submit(app)
    assert ca.submit(app) == first
    ca.submit(application(rsa_csr, key="order-2:3:submit"))
    rows = ca.applications()
    assert [r["idempotency_key"] for r in rows] == ["order-1:3:submit", "order-2:3:submit"]
    assert set(rows[0]) == {"application_id", "idempotency_key", "order_id", "common_name",
                            "names", "validation", "approver", "status", "created_at", "serial"}
    assert (rows[0]["application_id"], rows[0]["status"], rows[0]["serial"]) == (
        first.application_id, "pending", None)


def test_csr_for_other_names_is_refused_by_the_ca(ca, rsa_csr):
    with pytest.raises(Refused) as caught:
        ca.submit(application(rsa_csr, names=("shop.example.jp",)))
    assert "CSR names not in the order: example.jp, www.example.jp" in caught.value.message
    assert ca.applications() == []


def test_unsupported_validation_is_refused(ca, rsa_csr):
    with pytest.raises(Refused):
        ca.submit(application(rsa_csr, validation="dns-01"))


def test_polling_an_unknown_application_is_a_permanent_error(ca, rsa_csr):
    with pytest.raises(PermanentError):
        ca.poll("la-0000", application(rsa_csr))


def test_processes_submitting_the_same_key_at_once_make_one_application(tmp_path, rsa_csr):
    directory, mail_log = str(tmp_path / "ca"), str(tmp_path / "mail.log")
    master = KeyVault.new_master_key()
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(3), context.Queue()
    workers = [context.Process(target=submit_from_another_process,
                               args=(directory, master, rsa_csr, mail_log, barrier, results))
               for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        outcomes = [results.get(timeout=180) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():
                worker.kill()
    assert all(worker.exitcode == 0 for worker in workers)

    assert len({tuple(ids) for _, ids, _ in outcomes}) == 1  # everyone got the same two
    assert len({root for _, _, root in outcomes}) == 1       # and one root CA
    db = sqlite3.connect(f"{directory}/ca.db")
    assert db.execute("SELECT COUNT(*) FROM applications").fetchone() == (2,)
    db.close()
    mails = Path(mail_log).read_text().splitlines()
    assert len(mails) == 1 and mails[0].startswith("order-8:2:submit:approval ")
