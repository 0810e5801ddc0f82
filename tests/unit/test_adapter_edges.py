"""Every vendor exception an adapter can meet is mapped at its edge (issue 15 item 5).

Like httpx's test of ``map_httpcore_exceptions``: each adapter's one edge context manager
is fed every exception class of the libraries it uses, and must turn each into one of
certflow's errors (``adapters.base``, rooted at ``states.errors.CertflowError``) that
chains the original. A new exception class in a vendor release fails here, not in
production."""
from __future__ import annotations

import ast
import inspect
import smtplib
import socket
import sqlite3
import ssl
from pathlib import Path

import httpx
import josepy
import pytest
import requests
import urllib3
from acme import errors as acme_errors
from acme import messages as acme_messages

import adapters.base as base
from adapters.base import AdapterError, BadInput
from states.errors import CertflowError

ROOT = Path(__file__).resolve().parents[2]


#: raised only by ``Cookies.get``, which certflow never calls
NEVER_RAISED = (httpx.CookieConflict,)


def exception_classes(*modules) -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Exception) and \
                    not issubclass(value, (Warning, *NEVER_RAISED)) and \
                    value.__module__.split(".")[0] == module.__name__.split(".")[0]:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


def os_errors() -> list[type[BaseException]]:
    seen, todo = {}, [OSError]
    while todo:
        cls = todo.pop()
        seen[cls.__qualname__] = cls
        todo.extend(cls.__subclasses__())
    # what sockets, files and TLS raise (other libraries' OSError subclasses are theirs)
    return [seen[k] for k in sorted(seen) if seen[k].__module__ in ("builtins", "socket", "ssl")]


#: constructors that accept a message but mean something else
KNOWN_ARGS = {smtplib.SMTPRecipientsRefused: ({"a@example.jp": (550, b"no such user")},)}


def instance(cls: type[BaseException]) -> BaseException:
    if cls in KNOWN_ARGS:
        return cls(*KNOWN_ARGS[cls])
    for args in ((), ("boom",), (451, b"busy"), ({},), (451, b"busy", "a@example.jp"),
                 ("boom", "doc", 0)):
        try:
            return cls(*args)
        except Exception:  # noqa: BLE001 - trying constructor shapes
            continue
    return cls.__new__(cls)


def mapped(edge, exc: BaseException) -> BaseException:
    with pytest.raises(CertflowError) as caught:
        with edge():
            raise exc
    assert isinstance(caught.value, (AdapterError, BadInput))
    assert caught.value.__cause__ is exc
    return caught.value


def smtp_edge():
    from adapters.notify.messages import MessageBuilder
    from adapters.notify.smtp import SmtpNotifier
    return SmtpNotifier("127.0.0.1", 25, MessageBuilder("certflow@hosting.example")).edge()


def webhook_edge():
    from adapters.notify.messages import MessageBuilder
    from adapters.notify.webhook import WebhookNotifier
    return WebhookNotifier("http://127.0.0.1:9/hook", "s", MessageBuilder("certflow@hosting.example")).edge()


def rdap_edge():
    from adapters.contacts.rdap import RdapFinder
    return RdapFinder("http://127.0.0.1:9/rdap").edge("example.jp")


def whois_edge():
    from adapters.contacts.whois import WhoisFinder
    return WhoisFinder.edge("127.0.0.1:43", "example.jp")


def sqlite_edge():
    from adapters.common.sqlite_tx import sqlite_edge as edge
    return edge("ca.db")


def acme_edge(tmp_path_factory=None):
    import tempfile
    from adapters.ca.acme import AcmeCA
    ca = AcmeCA("http://127.0.0.1:9/dir", tempfile.mkdtemp(), lambda b: b, lambda b: b,
                lambda: __import__("datetime").datetime.now())
    return ca._edge(ca._network(None), "test")


CASES = [
    *[("smtp", smtp_edge, cls) for cls in exception_classes(smtplib, ssl) + os_errors()
      if issubclass(cls, (smtplib.SMTPException, OSError))],
    *[("webhook", webhook_edge, cls) for cls in exception_classes(httpx) + os_errors()],
    *[("rdap", rdap_edge, cls) for cls in exception_classes(httpx) + os_errors()],
    *[("whois", whois_edge, cls) for cls in os_errors() + [socket.timeout, socket.gaierror]],
    *[("sqlite", sqlite_edge, cls) for cls in exception_classes(sqlite3)
      if issubclass(cls, sqlite3.Error)],
    *[("acme", acme_edge, cls) for cls in exception_classes(acme_errors, requests.exceptions,
                                                            josepy.errors)
      + exception_classes(urllib3.exceptions) + [acme_messages.Error]],
]


@pytest.mark.parametrize("edge, cls", [(e, c) for _, e, c in CASES],
                         ids=[f"{name}-{cls.__module__}.{cls.__qualname__}" for name, _, cls in CASES])
def test_every_vendor_exception_is_mapped_at_the_edge(edge, cls):
    mapped(edge, instance(cls))


def test_transient_and_permanent_where_it_matters():
    assert isinstance(mapped(sqlite_edge, sqlite3.OperationalError("database is locked")),
                      base.TransientError)
    assert isinstance(mapped(sqlite_edge, sqlite3.DatabaseError("file is not a database")),
                      base.PermanentError)
    assert isinstance(mapped(webhook_edge, httpx.ConnectTimeout("slow")), base.TransientError)
    assert isinstance(mapped(smtp_edge, smtplib.SMTPResponseException(550, b"no")),
                      base.PermanentError)


# --- one error root with declared fields -----------------------------------------------


def test_adapter_errors_derive_from_the_one_root_and_bad_input_is_no_value_error():
    for cls in (base.AdapterError, base.TransientError, base.PermanentError, base.Refused,
                base.BadInput):
        assert issubclass(cls, CertflowError)
    assert not issubclass(base.BadInput, ValueError)
    error = base.TransientError("busy", retry_after=3.0)
    assert error.retry_after == 3.0 and error.domain is None  # declared: always an attribute
    with pytest.raises(TypeError):
        base.PermanentError("x", undeclared_value=1)


def _calls(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            yield node, func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None


def test_every_raise_passes_only_declared_fields_and_nothing_reads_fields_by_getattr():
    classes = {name: getattr(base, name) for name in
               ("AdapterError", "TransientError", "PermanentError", "Refused", "BadInput")}
    wrong, probing = [], []
    for path in [*ROOT.joinpath("adapters").rglob("*.py"), *ROOT.joinpath("workflow").rglob("*.py")]:
        for node, name in _calls(path):
            if name in classes:
                declared = set(classes[name].declared_fields()) | set(
                    inspect.signature(classes[name].__init__).parameters)
                wrong += [f"{path.relative_to(ROOT)}:{node.lineno} {name}({k.arg}=)"
                          for k in node.keywords if k.arg and k.arg not in declared]
            if name in ("getattr", "setattr") and node.args and \
                    isinstance(node.args[0], ast.Name) and node.args[0].id in ("exc", "error", "self"):
                probing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert wrong == []
    assert probing == []


# --- the ACME adapter (issue 15 item 10) -------------------------------------------------


def test_a_compound_problem_is_refused_naming_each_subproblem():
    problem = acme_messages.Error.from_json({
        "type": "urn:ietf:params:acme:error:compound", "detail": "Cannot issue for 2 names",
        "subproblems": [
            {"type": "urn:ietf:params:acme:error:caa", "detail": "CAA record forbids issuance",
             "identifier": {"type": "dns", "value": "a.example.jp"}},
            {"type": "urn:ietf:params:acme:error:rejectedIdentifier",
             "detail": "name is blocked", "identifier": {"type": "dns", "value": "b.example.jp"}},
        ]})
    from adapters.ca.acme import AcmeCA
    import tempfile
    ca = AcmeCA("http://127.0.0.1:9/dir", tempfile.mkdtemp(), bytes, bytes, lambda: None)
    with pytest.raises(base.Refused) as refused:
        with ca._edge(ca._network(None), "new-order"):
            raise problem
    assert "a.example.jp: CAA record forbids issuance" in refused.value.message
    assert "b.example.jp: name is blocked" in refused.value.message


def test_the_acme_adapter_uses_no_private_name_of_the_acme_package():
    from acme import client as acme_client
    private = {name for cls in (acme_client.ClientNetwork, acme_client.ClientV2)
               for name in vars(cls) if name.startswith("_") and not name.startswith("__")}
    used = set()
    for path in ROOT.joinpath("adapters/ca").glob("acme*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in private:
                used.add(f"{path.name}:{node.lineno} .{node.attr}")
            if isinstance(node, ast.FunctionDef) and node.name in private:
                used.add(f"{path.name}:{node.lineno} def {node.name}")
    assert used == set()


def test_a_damaged_local_ca_key_is_a_permanent_error_not_a_cryptography_exception(tmp_path):
    from datetime import datetime, timezone
    from adapters.ca.local import LocalCA
    from adapters.crypto.keys import KeyVault
    vault = KeyVault(KeyVault.new_master_key())
    ca = LocalCA(str(tmp_path / "ca"), vault, lambda: datetime.now(timezone.utc))
    ca.ensure()
    (tmp_path / "ca" / "intermediate.key.enc").write_bytes(vault.encrypt(b"not a PEM key"))
    with pytest.raises(base.PermanentError) as caught:
        ca.check()
    assert "intermediate key is damaged" in caught.value.message
    assert isinstance(caught.value.__cause__, ValueError)
