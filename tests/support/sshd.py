"""Real OpenSSH servers on loopback for the SSH installer's tests.

``sshd_factory(name, authorized_key)`` starts ``/usr/sbin/sshd -D -e -f CONFIG`` with its
own host key, sshd_config, authorized_keys and DIR under tmp_path, on a free loopback
port, logging in the user running the tests (root in CI: sshd then needs its privilege
separation directory /run/sshd). SFTP runs with umask 0000, so a file's mode is exactly
what its open request asked for. Every server stops at teardown.
"""
from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from support.helpers import free_port

SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 30.0

_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
UseDNS no
PermitUserEnvironment no
AllowTcpForwarding no
X11Forwarding no
LogLevel VERBOSE
Subsystem sftp internal-sftp -u 0000
"""


def host_key_file(path: Path) -> str:
    """Write a fresh Ed25519 host key; its public line."""
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


@dataclass
class SshServer:
    name: str
    root: Path
    directory: Path
    port: int
    user: str
    process: subprocess.Popen | None = None
    host_public: str = ""
    log: list[Path] = field(default_factory=list)

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self.directory}"

    @property
    def host_key(self) -> Path:
        return self.root / "host_ed25519"

    def start(self) -> None:
        config = self.root / "sshd_config"
        config.write_text(_CONFIG.format(port=self.port, host_key=self.host_key, root=self.root))
        out = self.root / f"sshd-{len(self.log)}.log"
        self.log.append(out)
        with open(out, "wb") as sink:
            self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)],
                                            stdin=subprocess.DEVNULL, stdout=sink,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd {self.name} exited:\n{out.read_text(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(64).startswith(b"SSH-2.0"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd {self.name} did not answer within {START_TIMEOUT}s")

    def stop(self) -> None:
        if self.process is None:
            return
        try:  # the listener and every session it forked share its process group
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def rekey(self) -> None:
        """A new host key (what a reinstalled or impersonated server presents)."""
        self.stop()
        self.host_public = host_key_file(self.host_key)
        self.start()

    def sshd_log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log)


def ssh_identity(config: Path) -> str:
    """Make the workspace's [install.ssh] identity (what `certflow init --ssh-key` does);
    its public line, for authorized_keys."""
    from workflow import config as config_mod
    from workflow.wiring import create_ssh_identity
    cfg = config_mod.load(config)
    create_ssh_identity(cfg)
    return Path(cfg["install.ssh"]["identity"] + ".pub").read_text()


def make_unwritable(directory: Path) -> None:
    """Nobody may create files in ``directory`` (root included: the immutable flag)."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return
    done = subprocess.run(["chattr", "+i", str(directory)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a directory unwritable for root here: {done.stderr!r}")


def make_writable(directory: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(directory)], check=True)
    directory.chmod(0o755)


@pytest.fixture
def sshd_factory(tmp_path):
    """``start(name, authorized_key)``: a running SshServer whose DIR is ``<root>/dir``."""
    if not os.access(SSHD, os.X_OK):
        pytest.skip(f"{SSHD} not installed (apt-get install openssh-server)")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation
    started: list[SshServer] = []

    def start(name: str, authorized_key: str) -> SshServer:
        root = tmp_path / f"sshd-{name}"
        (root / "dir").mkdir(parents=True)
        (root / "authorized_keys").write_text(authorized_key.strip() + "\n")
        for _ in range(3):  # the free port may be taken before sshd binds it
            server = SshServer(name, root, root / "dir", free_port(), getpass.getuser())
            server.host_public = host_key_file(server.host_key)
            try:
                server.start()
            except RuntimeError as exc:
                if "Address already in use" in str(exc):
                    continue
                raise
            started.append(server)
            return server
        raise RuntimeError(f"sshd {name}: no free port")

    yield start
    for server in started:
        server.stop()
        for path in (server.directory, *server.directory.glob("*")):
            if path.is_dir() and os.geteuid() == 0:
                subprocess.run(["chattr", "-i", str(path)], capture_output=True)
