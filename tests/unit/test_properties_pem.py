"""Properties: any bytes given as a customer CSR (``order csr``) or as a certificate and
chain (``order issue``) exit 0, 2 or 75, never a traceback, and a refusal writes nothing."""
from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from support import properties as props  # noqa: F401  (registers the profiles)
from support.helpers import ORDER
from support.inproc import CASE, assert_contract_exit, assert_unchanged, invoke, reset_orders, snapshot
from workflow import config as config_mod
from workflow.effects.daemon import Daemon
from workflow.engine import Engine

NAMES = ("www.example.jp", "example.jp")
APPLICATION_ONLY = {**ORDER, "plan": "ex-cloud", "contract": "C-3001"}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@lru_cache(maxsize=None)
def _keys():
    return {"rsa": rsa.generate_private_key(65537, 2048), "rsa1024": rsa.generate_private_key(65537, 1024),
            "ec": ec.generate_private_key(ec.SECP256R1()), "p521": ec.generate_private_key(ec.SECP521R1())}


def _csr(key="rsa", cn="www.example.jp", sans=NAMES, extra=(), digest=hashes.SHA256()) -> bytes:
    general = [x509.DNSName(n) for n in sans] + list(extra)
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(cn))
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return builder.sign(_keys()[key], digest).public_bytes(serialization.Encoding.PEM)


@lru_cache(maxsize=None)
def csr_seeds() -> tuple[bytes, ...]:
    pems = [_csr(), _csr(key="ec"), _csr(key="rsa1024"), _csr(key="p521"), _csr(sans=()),
            _csr(cn="WWW.EXAMPLE.JP"), _csr(sans=NAMES + ("evil.example.com",)),
            _csr(extra=(x509.IPAddress(ipaddress.ip_address("127.0.0.1")),)),
            _csr(extra=(x509.RFC822Name("a@example.jp"),)), _csr(cn="other.example.jp"),
            _csr(digest=hashes.SHA384())]
    ders = [x509.load_pem_x509_csr(p).public_bytes(serialization.Encoding.DER) for p in pems[:3]]
    return tuple(pems + ders)


def _self_signed(names=NAMES, days=90) -> bytes:
    key = _keys()["ec"]
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(_name(names[0]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@st.composite
def mutated(draw, seeds: tuple[bytes, ...]) -> bytes:
    """A seed, damaged the ways files get damaged (or arbitrary bytes)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=3000))
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(0, 4))):
        how = draw(st.sampled_from(("flip", "cut", "insert", "dup", "strip")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if how == "flip" and data:
            data = data[:at] + bytes([data[at] ^ 1 << draw(st.integers(0, 7))]) + data[at + 1:]
        elif how == "cut":
            data = data[:at]
        elif how == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=40)) + data[at:]
        elif how == "dup":
            data += data
        elif how == "strip":
            data = data.replace(b"-----", b"", 1)
    return bytes(data)


def _order_in(engine, fields: dict, state: str) -> str:
    for old in engine.list():  # one order in flight per site: the last example's goes
        if old.common_name == fields["common_name"] and \
                old.state not in engine.lifecycle.final_states:
            engine.fire(old.id, "cancel")
    order = engine.place(**fields)
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    assert engine.get(order.id).state == state
    return order.id


def _keep_small(workspace: Path, engine) -> None:
    if len(engine.list()) > 30:
        reset_orders(workspace)


@pytest.fixture
def ws_engine(workspace, clock):
    engine = Engine(config_mod.load(workspace), clock)
    yield workspace, engine
    engine.close()


@given(data=st.data())
def test_order_csr_with_any_bytes_exits_0_2_or_75(ws_engine, tmp_path, data):
    CASE.clear()
    workspace, engine = ws_engine
    _keep_small(workspace, engine)
    waiting = [o.id for o in engine.list("awaiting_csr")]
    order_id = waiting[0] if waiting else _order_in(engine, APPLICATION_ONLY, "awaiting_csr")
    path = tmp_path / "customer.csr"
    path.write_bytes(data.draw(mutated(csr_seeds()), label="csr"))
    before = snapshot(workspace)
    CASE["csr"] = path.read_bytes()[:300].hex()
    res = invoke(workspace, "order", "csr", order_id, str(path))
    assert_contract_exit(res)
    if res.exit_code != 0:
        assert_unchanged(before, snapshot(workspace), res)
    else:
        assert engine.get(order_id).state == "submitted"


@pytest.fixture
def cert_seeds(ws_engine) -> tuple[bytes, ...]:
    """A real leaf and chain of this workspace's CA (for another order), self-signed
    certificates for the order's names, for others, for too long; PEM and DER."""
    workspace, engine = ws_engine
    _order_in(engine, {**ORDER, "common_name": "www.shop.example.jp"}, "installed")
    leaf = next((workspace.parent / "var" / "servers").rglob("cert.pem")).read_bytes()
    chain = next((workspace.parent / "var" / "servers").rglob("chain.pem")).read_bytes()
    der = x509.load_pem_x509_certificate(leaf).public_bytes(serialization.Encoding.DER)
    return (leaf, chain, leaf + chain, _self_signed(), _self_signed(("other.example.com",)),
            _self_signed(days=4000), der)


@given(data=st.data())
def test_order_issue_with_any_certificate_bytes_exits_0_2_or_75(ws_engine, cert_seeds, tmp_path,
                                                                 data):
    CASE.clear()
    workspace, engine = ws_engine
    seeds = cert_seeds
    _keep_small(workspace, engine)
    waiting = [o.id for o in engine.list("awaiting_approval")]
    order_id = waiting[0] if waiting else _order_in(engine, {**ORDER, "validation": "email"},
                                                    "awaiting_approval")
    cert = tmp_path / "server.crt"
    cert.write_bytes(data.draw(mutated(seeds), label="certificate"))
    args = ["order", "issue", order_id, str(cert)]
    if data.draw(st.booleans(), label="with chain"):
        chain_file = tmp_path / "chain.crt"
        chain_file.write_bytes(data.draw(mutated(seeds), label="chain"))
        args += ["--chain", str(chain_file)]
    before = snapshot(workspace)
    CASE["certificate"] = cert.read_bytes()[:300].hex()
    res = invoke(workspace, *args)
    assert_contract_exit(res)
    if res.exit_code != 0:
        assert_unchanged(before, snapshot(workspace), res)
