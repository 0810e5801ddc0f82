"""Issue 16, business rules 1-5: plan against contract, customer CSRs made the provider's
way, validation methods the CA can do, files the application-only customer publishes,
names no public CA issues for. Through the CLI on the default config, openssl for real."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from adapters.base import BadInput
from adapters.crypto.keys import check_customer_csr, csr_command
from support import mailfolder
from support.ca import openssl_csr, run
from support.helpers import cli_json, configure, place_args, run_cli
from support.webserver import LoopbackHTTP
from workflow.errors import ValidationError
from workflow.intake import normalize_host

APP_ONLY = dict(contract="C-3001", plan="ex-cloud")


def orders(ws) -> list[dict]:
    return cli_json(ws, "order", "list")


def provider_way_csr(directory: Path, cn: str) -> Path:
    """The provider's procedure (genrsa -des3, then req -new -sha256): a DN with only the CN.
    The prompts are answered with -subj; the passphrase with -passout/-passin."""
    run("openssl", "genrsa", "-des3", "-passout", "pass:secret", "-out", "new2.pem", "2048",
        cwd=directory)
    run("openssl", "req", "-new", "-sha256", "-key", "new2.pem", "-passin", "pass:secret",
        "-out", "new2.csr", "-subj", f"/CN={cn}", cwd=directory)
    return directory / "new2.csr"


def delivered_certificate(ws, email: str) -> x509.Certificate:
    for msg in mailfolder.to(ws, email):
        for part in msg.iter_attachments():
            if part.get_filename() == "www.example.jp.crt":
                content = part.get_content()
                return x509.load_pem_x509_certificate(
                    content.encode() if isinstance(content, str) else content)
    raise AssertionError("no delivered certificate")


# --- 1. the order's plan is the contract's --------------------------------------------


@pytest.mark.parametrize("contract", ["C-2001", "C-3001"])
def test_a_plan_other_than_the_contracts_is_refused_at_place(workspace, contract):
    # C-2001 is FLEX without a fixed IP, C-3001 EX-CLOUD without Plesk (application-only):
    # ordered as "basic" they were installed with the provider's key
    proc = run_cli(workspace, "order", "place", *place_args(plan="basic", contract=contract))
    assert proc.returncode == 2
    assert "plan" in proc.stderr and contract in proc.stderr
    assert orders(workspace) == []


def test_without_plan_the_contracts_plan_is_taken(workspace):
    o = cli_json(workspace, "order", "place", *place_args(plan=None, contract="C-3001"))
    assert (o["plan"], o["state"]) == ("ex-cloud", "ordered")
    flex = cli_json(workspace, "order", "place", *place_args(plan=None, contract="C-2001"))
    assert flex["plan"] == "flex" and flex["state"] == "rejected" and "fixed IP" in flex["reason"]


# --- 2. customer CSRs -------------------------------------------------------------------


def test_provider_way_csr_is_accepted_and_the_ca_issues_for_the_orders_names(workspace, tmp_path):
    o = cli_json(workspace, "order", "place", *place_args(validation="email", **APP_ONLY))
    run_cli(workspace, "order", "pay", o["id"], check=True)
    run_cli(workspace, "daemon", "--once", check=True)
    assert cli_json(workspace, "order", "show", o["id"])["state"] == "awaiting_csr"
    csr = provider_way_csr(tmp_path, "WWW.Example.JP")  # the CN compares case-insensitively
    text = run("openssl", "req", "-in", str(csr), "-noout", "-text").stdout.decode()
    assert "Subject: CN = WWW.Example.JP" in text and "Alternative Name" not in text
    run_cli(workspace, "order", "csr", o["id"], str(csr), check=True)
    run_cli(workspace, "daemon", "--once", check=True)
    [approval] = mailfolder.to(workspace, "admin@example.jp")
    run_cli(workspace, "ca", "approve", mailfolder.token_in(approval), check=True)
    run_cli(workspace, "daemon", "--once", check=True)
    assert cli_json(workspace, "order", "show", o["id"])["state"] == "delivered"
    cert = delivered_certificate(workspace, "owner@example.jp")
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["www.example.jp", "example.jp"]


def _mailed_csr_command(ws, email: str) -> str:
    [msg] = [m for m in mailfolder.to(ws, email) if "CSR" in str(m["Subject"])]
    body = mailfolder.body(msg)
    assert "openssl genrsa -des3 -out new2.pem 2048" in body
    [line] = [ln.strip() for ln in body.splitlines() if ln.strip().startswith("openssl req")]
    return line


def _run_mailed(command: str, directory: Path) -> bytes:
    run("openssl", "genrsa", "-out", "new2.pem", "2048", cwd=directory)
    subprocess.run(shlex.split(command), cwd=directory, check=True, capture_output=True, timeout=60)
    return (directory / "new2.csr").read_bytes()


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_csr_request_mail_carries_a_command_the_local_ca_accepts(workspace, tmp_path, language):
    o = cli_json(workspace, "order", "place", *place_args(language=language, **APP_ONLY))
    run_cli(workspace, "order", "pay", o["id"], check=True)
    run_cli(workspace, "daemon", "--once", check=True)
    command = _mailed_csr_command(workspace, "owner@example.jp")
    assert "/CN=www.example.jp" in command and "O=Example Corp." in command
    path = tmp_path / "new2.csr"
    path.write_bytes(_run_mailed(command, tmp_path))
    run_cli(workspace, "order", "csr", o["id"], str(path), check=True)
    assert cli_json(workspace, "order", "show", o["id"])["state"] == "submitted"


@pytest.mark.parametrize("language", ["ja", "en"])
def test_with_acme_the_mail_and_the_refusal_give_a_command_naming_every_name(engine, tmp_path,
                                                                              language):
    from adapters.ca.acme import AcmeCA
    from workflow.effects.daemon import Daemon
    from support.helpers import ORDER
    engine.adapters.ca = AcmeCA("https://127.0.0.1:1/dir", str(tmp_path / "acme"),
                                seal=lambda b: b, unseal=lambda b: b, clock=engine.now)
    order = engine.place(**{**ORDER, "contract": "C-3001", "plan": "ex-cloud", "language": language})
    engine.fire(order.id, "pay")
    Daemon(engine).run_once()
    command = _mailed_csr_command(engine.config.path, ORDER["email"])
    assert "subjectAltName=DNS:www.example.jp,DNS:example.jp" in command
    names = engine.get(order.id).names
    acme = dict(names_from_application=engine.adapters.ca.names_from_application)
    assert check_customer_csr(_run_mailed(command, tmp_path), names, **acme).startswith("-----BEGIN")
    # a CN-only CSR: ACME's finalize would refuse it, so it is refused now, with the command
    with pytest.raises(BadInput) as caught:
        check_customer_csr(provider_way_csr(tmp_path, "www.example.jp").read_bytes(), names, **acme)
    assert csr_command(names) in caught.value.message and caught.value.missing == ("example.jp",)
    again = tmp_path / "again"
    again.mkdir()
    assert check_customer_csr(_run_mailed(csr_command(names), again), names, **acme)


@pytest.mark.parametrize("sans, why", [
    (("www.example.jp", "IP:192.0.2.1"), "IP address"),
    (("www.example.jp", "email:owner@example.jp"), "e-mail address"),
    (("www.example.jp", "shop.example.jp"), "not in the order: shop.example.jp"),
    (("example.jp",), "common name www.example.jp"),
])
def test_csrs_with_ip_or_mail_sans_or_foreign_names_are_refused(tmp_path, sans, why):
    out = tmp_path / "x.csr"
    cn = sans[0]
    alt = ",".join(s if ":" in s else f"DNS:{s}" for s in sans)
    run("openssl", "req", "-new", "-nodes", "-newkey", "rsa:2048", "-keyout", str(tmp_path / "x.key"),
        "-subj", f"/CN={cn}", "-addext", f"subjectAltName={alt}", "-out", str(out))
    with pytest.raises(BadInput) as caught:
        check_customer_csr(out.read_bytes(), ("www.example.jp", "example.jp"),
                           names_from_application=True)
    assert caught.value.field == "csr" and why in caught.value.message


def test_the_local_ca_takes_names_from_the_application_acme_does_not(tmp_path):
    from adapters.ca.acme import AcmeCA
    from adapters.ca.local import LocalCA
    from adapters.ca.manual import ManualCA
    assert LocalCA.names_from_application and ManualCA.names_from_application
    assert not AcmeCA.names_from_application
    pem = openssl_csr(tmp_path, "cn-only", sans=())
    assert check_customer_csr(pem, ("www.example.jp", "example.jp"), names_from_application=True)


# --- 3. validation methods the CA can carry out -------------------------------------------


@pytest.mark.parametrize("method", ["http-01", "dns-01"])
def test_validation_the_local_ca_cannot_do_is_refused_at_place(workspace, method):
    proc = run_cli(workspace, "order", "place", *place_args(validation=method))
    assert proc.returncode == 2 and "validation" in proc.stderr and method in proc.stderr
    assert orders(workspace) == []


# --- 4. application-only file validation: the customer publishes the file ---------------


def test_application_only_file_validation_tells_the_customer_what_to_publish(workspace, tmp_path):
    site = tmp_path / "customer-site"  # the customer's own web server, not ours
    site.mkdir()
    with LoopbackHTTP(docroot=site) as server:
        configure(workspace, {"ca.connect_to": server.address})
        o = cli_json(workspace, "order", "place", *place_args(**APP_ONLY))
        run_cli(workspace, "order", "pay", o["id"], check=True)
        run_cli(workspace, "daemon", "--once", check=True)
        csr = tmp_path / "c.csr"
        csr.write_bytes(openssl_csr(tmp_path, "c"))
        run_cli(workspace, "order", "csr", o["id"], str(csr), check=True)
        run_cli(workspace, "daemon", "--once", check=True)
        assert cli_json(workspace, "order", "show", o["id"])["state"] == "awaiting_approval"
        webroot = workspace.parent / "var/webroot"
        assert not list(webroot.rglob("*.txt")), "wrote into the provider's webroot"

        [msg] = [m for m in mailfolder.to(workspace, "owner@example.jp")
                 if "ドメイン認証" in str(m["Subject"])]
        body = mailfolder.body(msg)
        assert "不要" not in body and "当社にて" not in body
        url = re.search(r"URL\s+: (http://www\.example\.jp/(\S+))", body)
        content = re.search(r"ファイルの内容 : (\S+)", body)
        assert url and content, body
        target = site / url.group(2)
        target.parent.mkdir(parents=True)
        target.write_text(content.group(1) + "\n")

        later = ["faketime", "-f", "+10m"]  # the next poll is due a minute later
        run_cli(workspace, "daemon", "--once", check=True, prefix=later)
        assert cli_json(workspace, "order", "show", o["id"], prefix=later)["state"] == "delivered"
        assert "www.example.jp" in {request.host for request in server.requests}


def test_work_started_mail_does_not_promise_no_customer_step_for_application_only(workspace):
    o = cli_json(workspace, "order", "place", *place_args(**APP_ONLY))
    run_cli(workspace, "order", "pay", o["id"], check=True)
    run_cli(workspace, "daemon", "--once", check=True)
    [started] = [m for m in mailfolder.to(workspace, "owner@example.jp") if "開始" in str(m["Subject"])]
    assert "不要" not in mailfolder.body(started) and "設置" in mailfolder.body(started)


# --- 5. names no public CA can issue for ---------------------------------------------------


@pytest.mark.parametrize("name", [
    "printer.local", "www.example.test", "a.invalid",
    "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion",
    "app.localhost", "www.example", "intranet", "www.example.zzzz", "nas.home.arpa", "corp.internal",
])
def test_names_no_public_ca_issues_for_are_refused(name):
    with pytest.raises(ValidationError) as caught:
        normalize_host(name)
    assert caught.value.field == "common_name"


@pytest.mark.parametrize("name", ["www.example.jp", "example.jp", "www.example.co.jp",
                                  "shop.example.com"])
def test_names_under_icann_tlds_stay_accepted(name):
    assert normalize_host(name) == name


def test_special_use_name_exits_2_at_place(workspace):
    proc = run_cli(workspace, "order", "place", *place_args(common_name="www.example.test"))
    assert proc.returncode == 2 and "common_name" in proc.stderr and ".test" in proc.stderr
    assert orders(workspace) == []
