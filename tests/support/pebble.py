"""Pebble (ACME test CA) and pebble-challtestsrv (its DNS) on loopback, for integration tests.

Use the session fixture ``pebble``::

    def test_x(pebble, tmp_path):
        ca = AcmeCA(pebble.directory, str(tmp_path / "acme"), seal, unseal, clock,
                    ca_bundle=pebble.ca_bundle, eab_kid=pebble.eab_kid,
                    eab_hmac_key=pebble.eab_hmac_key)

What runs:
- pebble with external account binding required, 90-day certificates (under the
  dated cap), Pebble's default ~5% nonce rejection
  and 50% valid-authorization reuse left on, no validation sleeps (PEBBLE_VA_NOSLEEP=1);
  its HTTPS uses a trustme certificate for 127.0.0.1/localhost (``ca_bundle``).
- pebble-challtestsrv as Pebble's only DNS server: every name resolves to 127.0.0.1
  unless ``add_a`` says otherwise; ``set_txt`` publishes dns-01 records.
- an HTTP server on 127.0.0.1:``http_port`` (Pebble's httpPort) serving ``webroot``
  for every host name: http-01 challenge files go to
  ``webroot/.well-known/acme-challenge/<token>``.

Outside pytest, ``start_pebble(directory)`` is a context manager yielding the same object.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import trustme

from support.helpers import free_port
from support.webserver import LoopbackHTTP

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
#: what Pebble issues for: 90 days, under every cap before 2029-03-15 (47 days after)
CERTIFICATE_VALIDITY_SECONDS = 90 * 86400
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"
START_TIMEOUT = 30.0
EAB_KID = "kid-1"


@dataclass
class PebbleServer:
    """A running Pebble + challtestsrv + webroot server; see the module docstring."""

    directory: str          # ACME directory URL, https://127.0.0.1:<port>/dir
    ca_bundle: str          # PEM file that trusts Pebble's HTTPS (not the issued certs)
    management: str         # Pebble's management base URL, https://127.0.0.1:<port>
    challtestsrv: str       # challtestsrv management base URL, http://127.0.0.1:<port>
    webroot: Path           # served on 127.0.0.1:<http_port> for every host name
    http_port: int
    dns_port: int
    eab_kid: str
    eab_hmac_key: str       # base64url, as a commercial CA hands it out
    log_path: Path          # Pebble's stdout+stderr
    _ssl: ssl.SSLContext = field(repr=False, default=None)  # type: ignore[assignment]

    # --- Pebble's issuing hierarchy (regenerated at each start) -------------------

    def root_pem(self) -> str:
        """Pebble's root certificate: what issued chains must lead to."""
        return self._management_get("/roots/0")

    def write_root(self, path: str | os.PathLike) -> str:
        """Write the root to ``path`` (e.g. for ``[ca] trust_roots``); returns the path."""
        Path(path).write_text(self.root_pem())
        return str(path)

    def _management_get(self, path: str) -> str:
        response = httpx.get(self.management + path, verify=self._ssl, timeout=10)
        response.raise_for_status()
        return response.text

    # --- what Pebble did ------------------------------------------------------------

    def orders_created(self) -> list[str]:
        """IDs of every ACME order Pebble created since it started (the order URL's last
        path segment), oldest first, read from Pebble's log."""
        return re.findall(r'Added order "([^"]+)" to the db', self.log_path.read_text())

    def accounts_created(self) -> int:
        """How many accounts Pebble holds (from its log), 0 before the first."""
        counts = re.findall(r"There are now (\d+) accounts in memory", self.log_path.read_text())
        return int(counts[-1]) if counts else 0

    # --- DNS, through challtestsrv ----------------------------------------------------

    def set_txt(self, host: str, value: str) -> None:
        """Publish a TXT record, e.g. ``set_txt("_acme-challenge.example.com", v)``."""
        self._challtestsrv_post("/set-txt", {"host": _fqdn(host), "value": value})

    def clear_txt(self, host: str) -> None:
        self._challtestsrv_post("/clear-txt", {"host": _fqdn(host)})

    def add_a(self, host: str, addresses: list[str]) -> None:
        """Make ``host`` resolve to ``addresses`` (e.g. ["127.0.0.2"], where nothing listens)."""
        self._challtestsrv_post("/add-a", {"host": _fqdn(host), "addresses": addresses})

    def clear_a(self, host: str) -> None:
        self._challtestsrv_post("/clear-a", {"host": _fqdn(host)})

    def _challtestsrv_post(self, path: str, body: dict) -> None:
        response = httpx.post(self.challtestsrv + path, content=json.dumps(body), timeout=10)
        response.raise_for_status()

    # --- webroot --------------------------------------------------------------------

    def challenge_files(self) -> list[Path]:
        """Files left under webroot/.well-known/acme-challenge/."""
        folder = self.webroot / ".well-known" / "acme-challenge"
        return sorted(p for p in folder.glob("*") if p.is_file()) if folder.exists() else []


def _fqdn(host: str) -> str:
    return host if host.endswith(".") else host + "."


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait_until(ready, process: subprocess.Popen, what: str, log: Path) -> bool:
    """True when ``ready()`` holds; False when the process died (e.g. a port race)."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError, httpx.HTTPError):
            if ready():
                return True
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {START_TIMEOUT}s; see {log}")


@contextlib.contextmanager
def start_pebble(base: Path) -> Iterator[PebbleServer]:
    """Start everything under ``base``; stop it all on exit."""
    base.mkdir(parents=True, exist_ok=True)
    webroot = base / "webroot"
    webroot.mkdir(exist_ok=True)
    authority = trustme.CA()
    server_cert = authority.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path, ca_path = base / "tls-cert.pem", base / "tls-key.pem", base / "tls-ca.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(cert_path))
    server_cert.private_key_pem.write_to_path(str(key_path))
    authority.cert_pem.write_to_path(str(ca_path))
    tls = ssl.create_default_context(cafile=str(ca_path))
    hmac_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")

    web = LoopbackHTTP(docroot=webroot).start()
    processes: list[subprocess.Popen] = []
    logs: list = []
    try:
        for attempt in range(3):  # a port picked free may be taken before the server binds it
            dns_port, cts_port = free_port(udp_too=True), free_port()
            acme_port, mgmt_port, tls_port = free_port(), free_port(), free_port()
            cts_log = base / f"challtestsrv-{attempt}.log"
            log_path = base / f"pebble-{attempt}.log"
            config = {"pebble": {
                "listenAddress": f"127.0.0.1:{acme_port}",
                "managementListenAddress": f"127.0.0.1:{mgmt_port}",
                "certificate": str(cert_path),
                "privateKey": str(key_path),
                "httpPort": web.port,
                "tlsPort": tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": True,
                "externalAccountMACKeys": {EAB_KID: hmac_key},
                # under the dated cap: Pebble's default (5 years) is held when publicly trusted
                "certificateValidityPeriod": CERTIFICATE_VALIDITY_SECONDS,
            }}
            config_path = base / "pebble-config.json"
            config_path.write_text(json.dumps(config, indent=2))

            cts_out = open(cts_log, "wb")
            logs.append(cts_out)
            challtestsrv = subprocess.Popen(
                [CHALLTESTSRV, "-dns01", f"127.0.0.1:{dns_port}", "-http01", "",
                 "-https01", "", "-tlsalpn01", "", "-management", f"127.0.0.1:{cts_port}",
                 "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
                stdout=cts_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            processes.append(challtestsrv)
            cts_url = f"http://127.0.0.1:{cts_port}"
            if not _wait_until(lambda: httpx.get(cts_url + "/", timeout=2) is not None,
                               challtestsrv, "pebble-challtestsrv", cts_log):
                continue

            env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
            env["PEBBLE_VA_NOSLEEP"] = "1"
            pebble_out = open(log_path, "wb")
            logs.append(pebble_out)
            pebble = subprocess.Popen(
                [PEBBLE, "-config", str(config_path), "-dnsserver", f"127.0.0.1:{dns_port}",
                 "-strict"],
                stdout=pebble_out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
            processes.append(pebble)
            directory = f"https://127.0.0.1:{acme_port}/dir"
            management = f"https://127.0.0.1:{mgmt_port}"
            ready = _wait_until(
                lambda: httpx.get(directory, verify=tls, timeout=2).status_code == 200
                and httpx.get(management + "/roots/0", verify=tls, timeout=2).status_code == 200,
                pebble, "pebble", log_path)
            if not ready:
                _stop(challtestsrv)
                continue
            yield PebbleServer(
                directory=directory, ca_bundle=str(ca_path), management=management,
                challtestsrv=cts_url, webroot=webroot, http_port=web.port,
                dns_port=dns_port, eab_kid=EAB_KID, eab_hmac_key=hmac_key,
                log_path=log_path, _ssl=tls)
            return
        raise RuntimeError(f"pebble did not start after 3 attempts; see logs in {base}")
    finally:
        for process in reversed(processes):
            _stop(process)
        for handle in logs:
            handle.close()
        web.close()


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PebbleServer]:
    """One Pebble for the test session (state is per test: use your own state_dir/names)."""
    with start_pebble(tmp_path_factory.mktemp("pebble")) as server:
        yield server
