"""Issue 7 end to end through the CLI: the approval mail goes to the chosen constructed
address; before SC-080 (under faketime) to the WHOIS/RDAP contact, and privacy/proxy
contacts are rejected; file validation checked over HTTP through ``[ca] connect_to``."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from support import mailfolder
from support.whois import rdap_route, recorded
from support.helpers import cli_json, configure, place_args, run_cli

CUSTOMER = "owner@example.jp"
APPROVAL_SUBJECT = "サーバー証明書発行手続きのご案内"
#: 2025-07-01 is before SC-080 (2025-07-15): WHOIS-based approval mail is still allowed
BEFORE_SC080 = datetime(2025, 7, 1, 12, 0, 0)


class FakeTime:
    """``faketime`` prefixes for successive CLI calls, a minute apart from ``start``.

    faketime starts every process at the given moment, so one fixed moment for all calls
    would send each process back to where the previous one started: work queued by a
    slow process would look not yet due to the next one."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> list[str]:
        prefix = ["faketime", self.at.strftime("%Y-%m-%d %H:%M:%S")]
        self.at += timedelta(minutes=1)
        return prefix


def template(msg) -> str:
    return str(msg["X-Certflow-Template"])


def test_constructed_webmaster_address_gets_the_approval_mail(workspace):
    placed = cli_json(workspace, "order", "place",
                      *place_args(validation="email", approver="webmaster@example.jp"))
    run_cli(workspace, "order", "pay", placed["id"], check=True)
    run_cli(workspace, "daemon", "--once", check=True)

    order = cli_json(workspace, "order", "show", placed["id"])
    assert order["state"] == "awaiting_approval" and order["approver"] == "webmaster@example.jp"
    [mail] = mailfolder.to(workspace, "webmaster@example.jp")
    assert template(mail) == "approval_request"
    assert APPROVAL_SUBJECT in str(mail["Subject"]) and "www.example.jp" in str(mail["Subject"])
    token = mailfolder.token_in(mail)
    assert mailfolder.to(workspace, "admin@example.jp") == []
    customer_mail = mailfolder.to(workspace, CUSTOMER)
    assert customer_mail and all(token not in mailfolder.body(m) for m in customer_mail)

    run_cli(workspace, "ca", "approve", token, check=True)
    run_cli(workspace, "daemon", "--once", check=True)
    assert cli_json(workspace, "order", "show", placed["id"])["state"] == "installed"


# --- WHOIS / RDAP contacts, before SC-080 ------------------------------------------------

CONTACT_CASES = {
    # source: (real domain, its contact address, proxied domain, marker in the reason)
    "whois": ("www.example.jp", "hostmaster@example.jp", "www.hidden-example.jp",
              ("Privacy Protection", "代行")),
    "rdap": ("www.example-shop.com", "webmaster@example-shop.com", "www.hidden-shop.com",
             ("REDACTED FOR PRIVACY",)),
}


@pytest.fixture
def contacts_config(request, workspace, whois_servers, web_server):
    """``[contacts]`` pointing at a loopback WHOIS or RDAP server with recorded answers."""
    if request.param == "whois":
        jprs = whois_servers({"example.jp": recorded("jprs_example_jp.txt"),
                              "hidden-example.jp": recorded("jprs_proxy_jp.txt")},
                             encoding="iso2022_jp")
        configure(workspace, {"contacts.whois": jprs.address})
    else:
        web_server.routes.update([rdap_route("example-shop.com", "rdap_example_shop_com.json"),
                                  rdap_route("hidden-shop.com", "rdap_hidden_shop_com.json")])
        configure(workspace, {"contacts.rdap": web_server.base_url + "/rdap"})
    return request.param


@pytest.mark.parametrize("contacts_config", list(CONTACT_CASES), indirect=True)
def test_contact_lookup_before_sc080(workspace, contacts_config):
    real_cn, contact, proxied_cn, markers = CONTACT_CASES[contacts_config]

    later = FakeTime(BEFORE_SC080)

    def cli(*args, **kw):
        return run_cli(workspace, *args, prefix=later(), **kw)

    ids = {}
    for cn in (real_cn, proxied_cn):
        placed = cli_json(workspace, "order", "place",
                          *place_args(common_name=cn, validation="email-whois"), prefix=later())
        cli("order", "pay", placed["id"], check=True)
        ids[cn] = placed["id"]
    cli("daemon", "--once", check=True)

    real = cli_json(workspace, "order", "show", ids[real_cn], prefix=later())
    assert real["state"] == "awaiting_approval" and real["approver"] == contact
    [approval] = mailfolder.to(workspace, contact)
    assert template(approval) == "approval_request"
    assert real_cn in str(approval["Subject"]) and APPROVAL_SUBJECT in str(approval["Subject"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{22,}", mailfolder.token_in(approval))

    proxied = cli_json(workspace, "order", "show", ids[proxied_cn], prefix=later())
    assert proxied["state"] == "rejected"
    reason = proxied["reason"]
    assert "privacy" in reason.lower() and proxied_cn.removeprefix("www.") in reason
    assert any(marker in reason for marker in markers), reason
    rejected = [m for m in mailfolder.to(workspace, CUSTOMER)
                if template(m) == "rejected" and str(m["X-Certflow-Order"]) == ids[proxied_cn]]
    assert rejected and proxied_cn in mailfolder.body(rejected[0])
    # nobody behind the proxy was mailed an approval link
    approvals = [str(m["Message-ID"]) for m in mailfolder.messages(workspace)
                 if template(m) == "approval_request"]
    assert approvals == [str(approval["Message-ID"])]

    # from SC-080 on, the same order is refused at intake
    refused = run_cli(workspace, "order", "place",
                      *place_args(common_name=real_cn, validation="email-whois"),
                      prefix=["faketime", "2025-07-15 12:00:00"])
    assert refused.returncode == 2 and "SC-080" in refused.stderr


# --- file validation over HTTP -----------------------------------------------------------


def test_file_validation_waits_until_the_web_server_serves_the_file(workspace, web_server):
    configure(workspace, {"ca.connect_to": web_server.address, "ca.poll_seconds": 0})
    webroot = workspace.parent / "var/webroot"
    placed = cli_json(workspace, "order", "place", *place_args())
    run_cli(workspace, "order", "pay", placed["id"], check=True)

    def state_after_a_pass() -> str:
        run_cli(workspace, "daemon", "--once", check=True)
        return cli_json(workspace, "order", "show", placed["id"])["state"]

    # the server serves nothing: the order waits with the file placed
    assert state_after_a_pass() == "awaiting_approval"
    [placed_file] = (webroot / ".well-known/pki-validation").iterdir()
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}\.txt", placed_file.name), placed_file.name
    value = placed_file.read_text().strip()
    assert len(value) >= 16
    path = "/" + placed_file.relative_to(webroot).as_posix()
    asked = [h for h in web_server.requests if h.path == path]
    assert asked and all(h.host == "www.example.jp" and h.status == 404 for h in asked)
    assert state_after_a_pass() == "awaiting_approval"
    assert len([h for h in web_server.requests if h.path == path]) > len(asked)   # the CA retries

    # a wrong value proves nothing either
    web_server.routes[path] = (200, "text/plain", b"not-the-validation-value\n")
    assert state_after_a_pass() == "awaiting_approval"

    # the customer's server now serves the webroot: issued, installed, file removed
    del web_server.routes[path]
    web_server.docroot = webroot
    for _ in range(3):
        if state_after_a_pass() == "installed":
            break
    order = cli_json(workspace, "order", "show", placed["id"])
    assert order["state"] == "installed"
    assert any(h.path == path and h.status == 200 for h in web_server.requests)
    assert not placed_file.exists()
    assert list((webroot / ".well-known/pki-validation").iterdir()) == []
    installed = workspace.parent / "var/servers/C-1001/www.example.jp/cert.pem"
    assert "BEGIN CERTIFICATE" in installed.read_text()
