"""Approver contacts over real loopback WHOIS (RFC 3912) and RDAP (RFC 9083) servers,
serving recorded answers (tests/data/contacts)."""
from __future__ import annotations

import socket
import ssl

import pytest
import trustme

from adapters.base import Contact, PermanentError, Refused, TransientError
from adapters.contacts.finder import ChainFinder, RdapFinder, WhoisFinder
from support.webserver import json_answer
from support.whois import contact_finder, recorded


REGISTRAR_HOST = "whois.registrar.test"


@pytest.fixture
def silent_port():
    """A loopback port that accepts connections (kernel backlog) but never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


# --- an RDAP server --------------------------------------------------------------------


def rdap_routes() -> dict:
    """An RDAP server at the root of a LoopbackHTTP: ``/domain/<name>``; 404 otherwise."""
    def load(name: str):
        return 200, "application/rdap+json", recorded(name).encode()

    answers = {
        "example-shop.com": load("rdap_example_shop_com.json"),
        "hidden-shop.com": load("rdap_hidden_shop_com.json"),
        "quiet-example.jp": load("rdap_redacted_only_jp.json"),
        "busy-example.jp": (503, {"Retry-After": "120"}, b"busy"),
        "html-example.jp": (200, "text/html", b"<html>oops</html>"),
        "weird-example.jp": json_answer({"objectClassName": "domain", "entities": "not a list"},
                                        content_type="application/rdap+json"),
        "forbidden-example.jp": (403, {}, b""),
    }
    return {f"/domain/{name}": answer for name, answer in answers.items()}


@pytest.fixture
def rdap_server(http_server):
    return http_server(rdap_routes())


# --- WHOIS: JPRS ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["iso2022_jp", "utf-8", "euc_jp", "shift_jis"])
def test_jprs_answer_gives_the_public_contact_address(whois_servers, encoding):
    jprs = whois_servers({"example.jp": recorded("jprs_example_jp.txt")}, encoding=encoding)

    contact = WhoisFinder(jprs.address, timeout=10).lookup("www.example.jp")

    assert contact.email == "hostmaster@example.jp"
    assert contact.privacy is None
    assert contact.organization == "株式会社エグザンプル"
    assert contact.source == f"whois {jprs.address}"
    assert jprs.queries == ["example.jp"]  # the registrable domain, not the host name


def test_jprs_organisation_domain_follows_the_admin_handle(whois_servers):
    jprs = whois_servers({"example.co.jp": recorded("jprs_example_co_jp.txt"),
                          "CONTACT EX123JP": recorded("jprs_contact_ex123jp.txt")},
                         encoding="iso2022_jp")

    contact = WhoisFinder(jprs.address).lookup("www.example.co.jp")

    assert contact.email == "postmaster@example.co.jp"
    assert contact.privacy is None
    assert jprs.queries == ["example.co.jp", "CONTACT EX123JP"]


def test_jprs_proxy_publication_is_a_privacy_contact(whois_servers):
    jprs = whois_servers({"hidden-example.jp": recorded("jprs_proxy_jp.txt")},
                         encoding="iso2022_jp")

    contact = WhoisFinder(jprs.address).lookup("hidden-example.jp")

    assert contact.privacy is not None
    assert "代行" in contact.privacy or "Privacy Protection" in contact.privacy


def test_unregistered_domain_is_refused(whois_servers):
    jprs = whois_servers({"nothing-here.jp": recorded("jprs_no_match.txt")})

    with pytest.raises(Refused) as caught:
        WhoisFinder(jprs.address).lookup("nothing-here.jp")

    assert "not registered" in caught.value.message
    assert caught.value.trigger == "reject"


def test_answer_without_an_address_is_refused_with_the_domain_named(whois_servers):
    jprs = whois_servers({"example.jp": "Domain Information:\n[Domain Name]  EXAMPLE.JP\n"})

    with pytest.raises(Refused) as caught:
        WhoisFinder(jprs.address).lookup("example.jp")

    assert caught.value.message == "no administrator email in WHOIS answer for example.jp"


def test_garbage_answer_is_refused_not_a_crash(whois_servers):
    garbage = bytes(range(256)) * 8 + b"\x1b$B\xff\xfe[Email]\x00\r\n: : [[]]\n"
    jprs = whois_servers({"example.jp": garbage})

    with pytest.raises(Refused):
        WhoisFinder(jprs.address).lookup("example.jp")


# --- WHOIS: gTLD registry -> registrar referral ---------------------------------------


def test_registry_referral_is_followed_to_the_registrar(whois_servers):
    registrar = whois_servers({"example-shop.com": recorded("registrar_example_com.txt")})
    registry = whois_servers({"example-shop.com":
                              recorded("registry_example_com.txt", registrar=REGISTRAR_HOST)})
    finder = WhoisFinder(registry.address, referrals={REGISTRAR_HOST: registrar.address})

    contact = finder.lookup("www.example-shop.com")

    assert contact.email == "webmaster@example-shop.com"   # Admin Email before Registrant Email
    assert contact.name == "Kenji Ito"
    assert contact.privacy is None
    assert contact.source == f"whois {registrar.address}"
    assert registry.queries == ["example-shop.com"] and registrar.queries == ["example-shop.com"]


def test_referral_may_name_host_and_port(whois_servers):
    registrar = whois_servers({"example-shop.com": recorded("registrar_example_com.txt")})
    registry = whois_servers({"example-shop.com":
                              recorded("registry_example_com.txt", registrar=registrar.address)})

    contact = WhoisFinder(registry.address).lookup("example-shop.com")

    assert contact.email == "webmaster@example-shop.com"


def test_thin_answer_without_following_referrals_has_no_address(whois_servers):
    registry = whois_servers({"example-shop.com":
                              recorded("registry_example_com.txt", registrar=REGISTRAR_HOST)})

    with pytest.raises(Refused) as caught:
        WhoisFinder(registry.address, follow_referrals=False).lookup("example-shop.com")

    assert caught.value.message == "no administrator email in WHOIS answer for example-shop.com"


def test_unreachable_registrar_is_transient_and_named(whois_servers, closed_port):
    registry = whois_servers({"example-shop.com":
                              recorded("registry_example_com.txt", registrar=REGISTRAR_HOST)})
    finder = WhoisFinder(registry.address, timeout=5,
                         referrals={REGISTRAR_HOST: f"127.0.0.1:{closed_port}"})

    with pytest.raises(TransientError) as caught:
        finder.lookup("example-shop.com")

    assert f"127.0.0.1:{closed_port}" in caught.value.message


@pytest.mark.parametrize("answer, marker", [
    ("registrar_proxy_com.txt", "Domains By Proxy"),
    ("registrar_forwarding_com.txt", "PrivacyProtect"),
])
def test_proxy_registrant_is_a_privacy_contact(whois_servers, answer, marker):
    registrar = whois_servers({"hidden-shop.com": recorded(answer)})
    registry = whois_servers({"hidden-shop.com":
                              recorded("registry_proxy_com.txt", registrar=REGISTRAR_HOST)})
    finder = WhoisFinder(registry.address, referrals={REGISTRAR_HOST: registrar.address})

    contact = finder.lookup("hidden-shop.com")

    assert contact.privacy is not None and marker.lower() in contact.privacy.lower()


def test_silent_server_times_out_as_transient(silent_port):
    with pytest.raises(TransientError) as caught:
        WhoisFinder(f"127.0.0.1:{silent_port}", timeout=0.5).lookup("example.jp")

    assert "timed out" in caught.value.message


# --- RDAP ------------------------------------------------------------------------------


def test_rdap_administrative_entity_address(rdap_server):
    contact = RdapFinder(rdap_server.base_url).lookup("shop.example-shop.com")

    assert contact == Contact(email="webmaster@example-shop.com", name="Kenji Ito",
                              organization="Example Shop K.K.",
                              source=f"rdap {rdap_server.base_url}/domain/example-shop.com")
    assert "application/rdap+json" in rdap_server.requests[0].headers["Accept"]


@pytest.mark.parametrize("domain, marker", [
    ("hidden-shop.com", "REDACTED FOR PRIVACY"),
    ("quiet-example.jp", "Registrant Email"),
])
def test_rdap_redacted_contact_is_a_privacy_contact(rdap_server, domain, marker):
    contact = RdapFinder(rdap_server.base_url).lookup(domain)

    assert contact.email is None
    assert contact.privacy is not None and marker in contact.privacy


def test_rdap_unknown_domain_is_refused(rdap_server):
    with pytest.raises(Refused) as caught:
        RdapFinder(rdap_server.base_url).lookup("example.jp")

    assert "example.jp" in caught.value.message


def test_rdap_busy_server_is_transient_with_its_retry_after(rdap_server):
    with pytest.raises(TransientError) as caught:
        RdapFinder(rdap_server.base_url).lookup("busy-example.jp")

    assert caught.value.retry_after == 120
    assert rdap_server.base_url in caught.value.message


@pytest.mark.parametrize("domain, error", [
    ("html-example.jp", TransientError),
    ("weird-example.jp", Refused),
    ("forbidden-example.jp", PermanentError),
])
def test_rdap_malformed_or_refused_answers_map_to_adapter_errors(rdap_server, domain, error):
    with pytest.raises(error):
        RdapFinder(rdap_server.base_url).lookup(domain)


def test_rdap_over_https_with_a_private_ca_bundle(tmp_path, http_server):
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = http_server(rdap_routes(), tls=context)
    bundle = tmp_path / "rdap-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))

    contact = RdapFinder(server.base_url, ca_bundle=str(bundle)).lookup("example-shop.com")
    assert contact.email == "webmaster@example-shop.com"

    with pytest.raises(TransientError):  # not trusted without the bundle
        RdapFinder(server.base_url, timeout=5).lookup("example-shop.com")


# --- RDAP, then WHOIS ------------------------------------------------------------------


def test_chain_falls_back_to_whois_when_rdap_has_no_record(rdap_server, whois_servers):
    jprs = whois_servers({"example.jp": recorded("jprs_example_jp.txt")})
    finder = contact_finder(whois=jprs.address, rdap=rdap_server.base_url)

    contact = finder.lookup("www.example.jp")

    assert isinstance(finder, ChainFinder)
    assert contact.email == "hostmaster@example.jp" and contact.source.startswith("whois")


def test_chain_uses_rdap_first(rdap_server, whois_servers):
    registry = whois_servers({})
    contact = contact_finder(whois=registry.address, rdap=rdap_server.base_url) \
        .lookup("example-shop.com")

    assert contact.email == "webmaster@example-shop.com" and contact.source.startswith("rdap")
    assert registry.queries == []


def test_chain_returns_the_privacy_contact_when_nobody_has_a_real_one(rdap_server, whois_servers):
    registrar = whois_servers({"hidden-shop.com": recorded("registrar_proxy_com.txt")})
    registry = whois_servers({"hidden-shop.com":
                              recorded("registry_proxy_com.txt", registrar=REGISTRAR_HOST)})
    finder = ChainFinder([RdapFinder(rdap_server.base_url),
                          WhoisFinder(registry.address,
                                      referrals={REGISTRAR_HOST: registrar.address})])

    contact = finder.lookup("hidden-shop.com")

    assert contact.privacy and "REDACTED FOR PRIVACY" in contact.privacy
