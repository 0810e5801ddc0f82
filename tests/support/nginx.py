"""A real nginx on loopback serving TLS from an installer's directory, and test PKI.

``nginx_factory(server_dir, bundle)`` writes ``bundle`` into
``<server_dir>/<cn>/{cert,chain,fullchain,privkey}.pem``, starts nginx (foreground
master, its own process group, everything under a fresh prefix in tmp_path) serving
``fullchain.pem``/``privkey.pem`` for ``server_name <cn>``, and stops it at teardown.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from adapters.base import Bundle, TransientError
from adapters.install.tls_probe import served_fingerprint
from support.helpers import free_port

NGINX = "/usr/sbin/nginx"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

_CONF = """\
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {cn};
        ssl_certificate {server_dir}/{cn}/fullchain.pem;
        ssl_certificate_key {server_dir}/{cn}/privkey.pem;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


# --- test PKI -------------------------------------------------------------------------


@dataclass
class PKI:
    """A root and an intermediate; leaves are issued by the intermediate."""

    root: trustme.CA
    intermediate: trustme.CA

    def bundle(self, common_name: str) -> Bundle:
        leaf = self.intermediate.issue_cert(common_name)
        certificate, *chain = [blob.bytes().decode("ascii") for blob in leaf.cert_chain_pems]
        return Bundle(
            common_name=common_name,
            certificate_pem=certificate,
            chain_pem="".join(chain),
            private_key_pem=leaf.private_key_pem.bytes(),
        )


@pytest.fixture
def pki() -> PKI:
    root = trustme.CA()
    return PKI(root, root.create_child_ca())


def write_bundle(server_dir: Path, bundle: Bundle) -> None:
    """Put a bundle in place the plain way (what an earlier install left)."""
    directory = server_dir / bundle.common_name
    directory.mkdir(parents=True, exist_ok=True)
    for name, content, mode in (
        ("cert.pem", bundle.certificate_pem.encode(), 0o644),
        ("chain.pem", bundle.chain_pem.encode(), 0o644),
        ("fullchain.pem", bundle.fullchain_pem.encode(), 0o644),
        ("privkey.pem", bundle.private_key_pem, 0o600),
    ):
        (directory / name).write_bytes(content)
        (directory / name).chmod(mode)


def wait_for_fingerprint(host_port: str, server_name: str, expected: str, timeout: float = 20.0) -> str:
    """The served fingerprint once it equals ``expected`` (reloads are asynchronous),
    else the last one seen when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    served = ""
    while True:
        try:
            served = served_fingerprint(host_port, server_name, timeout=5.0)
        except TransientError as exc:
            served = f"no handshake: {exc.message}"
        if served == expected or time.monotonic() > deadline:
            return served
        time.sleep(0.2)


# --- nginx ----------------------------------------------------------------------------


@dataclass
class Nginx:
    prefix: Path
    conf: Path
    port: int
    process: subprocess.Popen

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def reload_command(self) -> str:
        return f"{NGINX} -p {self.prefix} -c {self.conf} -e {self.prefix}/error.log -s reload"

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Fast shutdown; kill the whole process group if it does not go."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        try:  # workers outlive a killed master; they share its process group
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(STOP_TIMEOUT)


def _start(prefix: Path, server_dir: Path, common_name: str) -> Nginx:
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(_CONF.format(
        user="user root;\n" if os.geteuid() == 0 else "",
        prefix=prefix, port=port, cn=common_name, server_dir=server_dir,
    ))
    output = open(prefix / "output.log", "wb")
    process = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
         "-g", "daemon off;"],
        stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output.close()
    nginx = Nginx(prefix, conf, port, process)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return nginx  # the caller reads the log and decides
        if (prefix / "nginx.pid").exists():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return nginx
            except OSError:
                pass
        time.sleep(0.1)
    nginx.stop()
    raise RuntimeError(f"nginx did not start within {START_TIMEOUT}s:\n{nginx.error_log()}")


@pytest.fixture
def nginx_factory(tmp_path):
    """Start nginx serving ``bundle`` from ``server_dir``; every one stops at teardown."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip(f"{NGINX} not installed (apt-get install nginx-light)")
    started: list[Nginx] = []

    def start(server_dir: Path, bundle: Bundle) -> Nginx:
        write_bundle(server_dir, bundle)
        for attempt in range(3):  # the free port may be taken before nginx binds it
            prefix = tmp_path / f"nginx-{len(started)}-{attempt}"
            prefix.mkdir()
            nginx = _start(prefix, server_dir, bundle.common_name)
            if nginx.process.poll() is None:
                started.append(nginx)
                return nginx
            nginx.stop()
            if "Address already in use" not in nginx.error_log() + (prefix / "output.log").read_text():
                break
        raise RuntimeError(f"nginx did not start:\n{nginx.error_log()}")

    yield start
    for nginx in started:
        nginx.stop()
