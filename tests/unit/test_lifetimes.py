"""Issue 16, certificate lifetimes 6-9: the dated cap is taken at issuance, asked for the
BR way (notAfter - notBefore + 1 s, backdating included), checked on every certificate
from any CA, and `order issue` refuses foreign names and damaged certificates."""
from __future__ import annotations

import base64
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.ca import local_certs
from adapters.crypto.x509check import br_validity
from states.policy import max_lifetime, requested_lifetime
from support import mailfolder
from support.ca import manual_leaf, manual_root
from support.helpers import ORDER, cli_json, configure, make_workspace, place_args, run_cli
from workflow import config as config_mod
from workflow.clock import MovableClock
from workflow.effects.daemon import Daemon
from workflow.engine import Engine

UTC = timezone.utc


def installed_leaf(ws) -> x509.Certificate:
    pem = (ws.parent / "var/servers/C-1001/www.example.jp/cert.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem)


@pytest.fixture
def engine_at(workspace):
    made = []

    def make(when: datetime, **settings) -> Engine:
        if settings:
            configure(workspace, settings)
        engine = Engine(config_mod.load(workspace), MovableClock(when))
        made.append(engine)
        return engine
    yield make
    for engine in made:
        engine.close()


def test_the_cap_is_the_one_in_force_at_issuance_not_at_submission(engine_at, workspace):
    # applied under the 200-day cap, approved and issued under the 100-day cap
    engine = engine_at(datetime(2027, 3, 10, 9, 0, tzinfo=UTC))
    order = engine.place(**{**ORDER, "validation": "email"})
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(order.id).state == "awaiting_approval"
    engine.clock.set(datetime(2027, 3, 16, 9, 0, tzinfo=UTC))
    [mail] = mailfolder.to(workspace, "admin@example.jp")
    engine.poll_now(engine.adapters.ca.approve(mailfolder.token_in(mail)))
    Daemon(engine).run_once()
    assert engine.get(order.id).state == "installed"
    assert br_validity(installed_leaf(workspace)) == timedelta(days=99)


def test_local_ca_asks_one_day_under_the_cap_counted_the_br_way():
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    issuer_key = local_certs.new_ca_key()
    root = local_certs.make_root(issuer_key, now)
    leaf = local_certs.issue_leaf(ec.generate_private_key(ec.SECP256R1()).public_key(),
                                  ("www.example.jp",), root, issuer_key, now,
                                  now + requested_lifetime(now))
    assert leaf.not_valid_before_utc == now - local_certs.LEAF_BACKDATE  # still backdated
    # 199 days counting both ends; was 199 d + 61 s (200 days the BR way)
    assert br_validity(leaf) == timedelta(days=199) < max_lifetime(now)


class LongLivedCA:
    """The local CA behind a fake that asks it for five years (as Pebble's default)."""

    def __init__(self, ca) -> None:
        self.ca = ca
        self.validation_methods = ca.validation_methods
        self.names_from_application = ca.names_from_application

    def submit(self, application):
        return self.ca.submit(application)

    def poll(self, application_id, application):
        return self.ca.poll(application_id, replace(application,
                                                   not_after=self.ca.clock() + timedelta(days=1825)))

    def cancel(self, application_id):
        return self.ca.cancel(application_id)


@pytest.mark.parametrize("publicly_trusted", [True, False])
def test_a_certificate_over_the_cap_is_held_not_installed(engine_at, workspace, publicly_trusted):
    engine = engine_at(datetime.now(UTC), **{"policy.publicly_trusted": publicly_trusted})
    engine.adapters.ca = LongLivedCA(engine.adapters.ca)
    order = engine.place(**ORDER)
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    done = engine.get(order.id)
    target = workspace.parent / "var/servers/C-1001/www.example.jp/cert.pem"
    if publicly_trusted:
        assert done.state == "on_hold" and done.held_from == "awaiting_approval"
        assert "over the 200-day cap" in done.reason
        assert not target.exists()
    else:
        assert done.state == "installed" and target.exists()


# --- 9. what `order issue` (manual CA) refuses ---------------------------------------------


@pytest.fixture
def manual(tmp_path):
    ws = make_workspace(tmp_path / "ws")
    ca_key, ca_cert = manual_root(tmp_path)
    configure(ws, {"ca.kind": "manual", "ca.trust_roots": [str(tmp_path / "root.pem")]})
    o = cli_json(ws, "order", "place", *place_args())
    run_cli(ws, "order", "pay", o["id"], check=True)
    run_cli(ws, "daemon", "--once", check=True)
    o = cli_json(ws, "order", "show", o["id"])
    key = x509.load_pem_x509_csr(o["csr"].encode()).public_key()
    return ws, o["id"], lambda names, **kw: manual_leaf(ca_key, ca_cert, key, names, **kw)


def _issue(ws, order_id, tmp_path, pem: bytes):
    path = tmp_path / "cert.pem"
    path.write_bytes(pem)
    return run_cli(ws, "order", "issue", order_id, str(path))


def test_order_issue_refuses_a_name_not_in_the_order(manual, tmp_path):
    ws, order_id, leaf = manual
    proc = _issue(ws, order_id, tmp_path, leaf(("www.example.jp", "example.jp", "evil.example.com")))
    assert proc.returncode == 2 and "evil.example.com" in proc.stderr
    assert cli_json(ws, "order", "show", order_id)["state"] == "awaiting_approval"


def test_order_issue_refuses_a_certificate_over_the_cap(manual, tmp_path):
    ws, order_id, leaf = manual
    proc = _issue(ws, order_id, tmp_path, leaf(("www.example.jp", "example.jp"), days=397))
    assert proc.returncode == 2 and "cap" in proc.stderr
    assert cli_json(ws, "order", "show", order_id)["state"] == "awaiting_approval"
    ok = _issue(ws, order_id, tmp_path, leaf(("www.example.jp", "example.jp"), days=90))
    assert ok.returncode == 0, ok.stderr


def _edited(pem: bytes, edit) -> bytes:
    """The certificate with ``edit(der: bytearray)`` applied (its signature left as it was)."""
    der = bytearray(base64.b64decode(b"".join(pem.split(b"\n")[1:-2])))
    edit(der)
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(bytes(der)) + \
        b"-----END CERTIFICATE-----\n"


def _damaged_extension(der: bytearray) -> None:
    at = der.find(bytes.fromhex("0603551d11"))  # OID 2.5.29.17, subjectAltName
    value = der.index(0x04, at + 5)               # the OCTET STRING holding the SAN
    der[value + 2] = 0x05                        # its SEQUENCE tag becomes NULL


def _unsupported_key(der: bytearray) -> None:
    at = der.find(bytes.fromhex("06092a864886f70d010101"))  # rsaEncryption (the order's key)
    der[at + 10] = 0x7F                                     # now 1.2.840.113549.1.1.127


@pytest.mark.parametrize("damage, why", [(_damaged_extension, "damaged"),
                                         (_unsupported_key, "unsupported public key")])
def test_order_issue_refuses_damaged_certificates_with_exit_2(manual, tmp_path, damage, why):
    ws, order_id, leaf = manual
    proc = _issue(ws, order_id, tmp_path, _edited(leaf(("www.example.jp", "example.jp")), damage))
    assert proc.returncode == 2, proc.stderr
    assert why in proc.stderr and "unexpected" not in proc.stderr
