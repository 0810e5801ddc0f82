"""Issue 21 end to end: a contract of three real OpenSSH servers (nginx fronting web1),
installed all-or-nothing over SSH/SFTP through the CLI and the daemon."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapters.base import Bundle
from adapters.install.tls_probe import served_fingerprint
from support.daemon import wait_for
from support.helpers import ROOT, cli_json, configure, doctor, last_line, place_args, run_cli
from support.install import CN, FILES, daemon_until as install_daemon_until
from support.nginx import Nginx, wait_for_fingerprint, write_bundle
from support.sshd import SshServer, make_unwritable, make_writable, ssh_identity

CONTRACT = "C-7001"
SERVERS = ("web1", "web2", "web3")
MAX_DAEMON_PASSES = 4


@dataclass
class SshSite:
    config: Path
    servers: dict[str, SshServer]
    nginx: Nginx
    old: Bundle

    def files(self) -> dict[str, dict[str, tuple[bytes, int]]]:
        """Every server's ``DIR/<cn>/`` (our dot files included): name → (bytes, mode)."""
        out = {}
        for name, server in self.servers.items():
            directory = server.directory / CN
            out[name] = {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
                         for p in sorted(directory.iterdir())} if directory.is_dir() else {}
        return out


def fingerprint_of(pem: str | bytes) -> str:
    import hashlib
    data = pem.encode() if isinstance(pem, str) else pem
    der = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def host_fingerprint(public_line: str) -> str:
    return asyncssh.import_public_key(public_line).get_fingerprint("sha256")


def write_contract(config: Path, site_servers: dict[str, SshServer], nginx: Nginx,
                   reloads: dict[str, str] | None = None, subdirs: dict[str, str] | None = None) -> None:
    reloads = {"web1": nginx.reload_command, **(reloads or {})}
    entries = []
    for name, server in site_servers.items():
        below = (subdirs or {}).get(name)
        entry = {"path": server.url + (f"/{below}" if below else ""), "name": name}
        if reloads.get(name):
            entry["reload"] = reloads[name]
        if name == "web1":
            entry["verify"] = nginx.host_port
        entries.append("{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in entry.items()) + "}")
    with open(config, "a") as fh:
        fh.write(f'\n[contracts."{CONTRACT}"]\nplan = "basic"\nstatus = "active"\n'
                 f"servers = [{', '.join(entries)}]\n")


def build_site(workspace: Path, pki, nginx_factory, sshd_factory, *, parallel: int = 3,
               before_contract=None, **contract) -> SshSite:
    """Three sshd (the workspace's key authorized, host keys pinned with `ssh trust`),
    each with the old bundle, nginx serving web1's; then the contract."""
    public = ssh_identity(workspace)
    servers = {name: sshd_factory(name, public) for name in SERVERS}
    old = pki.bundle(CN)
    nginx = nginx_factory(servers["web1"].directory, old)
    for name in SERVERS[1:]:
        write_bundle(servers[name].directory, old)
    for server in servers.values():
        trusted = run_cli(workspace, "ssh", "trust", server.host_port, check=True)
        assert host_fingerprint(server.host_public) in trusted.stdout
    configure(workspace, {"effects.max_attempts": 1, "effects.backoff_seconds": 0,
                          "install.ssh.parallel": parallel})
    site = SshSite(workspace, servers, nginx, old)
    if before_contract:
        before_contract(site)
    write_contract(workspace, servers, nginx, **contract)
    return site


@pytest.fixture
def ssh_site(workspace, pki, nginx_factory, sshd_factory) -> SshSite:
    return build_site(workspace, pki, nginx_factory, sshd_factory)


def daemon_until(config: Path, order_id: str, states: set[str]) -> dict:
    return install_daemon_until(config, order_id, states, MAX_DAEMON_PASSES)


def paid_order(config: Path) -> str:
    order = cli_json(config, "order", "place", *place_args(contract=CONTRACT))
    run_cli(config, "order", "pay", order["id"], check=True)
    return order["id"]


def assert_installed_everywhere(site: SshSite, order: dict) -> None:
    assert order["state"] == "installed", order
    files = site.files()
    assert sorted(files["web1"]) == sorted(FILES), files["web1"].keys()  # no dot files left
    assert files["web2"] == files["web1"] and files["web3"] == files["web1"]
    issued = order["certificate"]["sha256"]
    content = {name: data for name, (data, _) in files["web1"].items()}
    assert fingerprint_of(content["cert.pem"]) == issued != fingerprint_of(site.old.certificate_pem)
    key = serialization.load_pem_private_key(content["privkey.pem"], None)
    assert key.public_key() == x509.load_pem_x509_certificate(content["cert.pem"]).public_key()
    # SFTP runs with umask 0000: the 0600 comes from the open request itself
    assert {name: mode for name, (_, mode) in files["web1"].items()} == {
        "cert.pem": 0o644, "chain.pem": 0o644, "fullchain.pem": 0o644, "privkey.pem": 0o600}
    assert wait_for_fingerprint(site.nginx.host_port, CN, issued) == issued


def test_three_servers_get_identical_files_and_nginx_serves_the_new_certificate(ssh_site):
    order_id = paid_order(ssh_site.config)
    logs = ""
    for _ in range(MAX_DAEMON_PASSES):  # -v: everything certflow logs, INFO and up
        proc = run_cli(ssh_site.config, "-v", "daemon", "--once", check=True)
        logs += proc.stdout + proc.stderr
        done = cli_json(ssh_site.config, "order", "show", order_id)
        if done["state"] in ("installed", "on_hold"):
            break
    assert_installed_everywhere(ssh_site, done)
    history = cli_json(ssh_site.config, "order", "history", order_id)
    assert history[-1]["trigger"] == "install"
    assert "installed certificate" in logs
    identity = (ssh_site.config.parent / "var/data/ssh/id_ed25519").read_text().splitlines()
    installed = (ssh_site.servers["web1"].directory / CN / "privkey.pem").read_text().splitlines()
    for secret in ("PRIVATE KEY", identity[1], installed[1]):
        assert secret not in logs
    # one login per server for the whole install (stage, swap, reload reuse it)
    for server in ssh_site.servers.values():
        assert server.sshd_log().count("Accepted publickey") == 1, server.sshd_log()


def held_then_resumed(site: SshSite, server: str, step: str, repair) -> None:
    """With one server broken: the order holds naming it and the step, no server changed,
    nginx still serves the old certificate; after ``repair()``, resume installs everywhere."""
    before = site.files()
    order_id = paid_order(site.config)
    held = daemon_until(site.config, order_id, {"on_hold", "installed"})

    assert held["state"] == "on_hold", held
    assert server in held["reason"] and f"at {step}" in held["reason"], held["reason"]
    assert site.files() == before
    assert served_fingerprint(site.nginx.host_port, CN) == fingerprint_of(site.old.certificate_pem)

    repair()
    run_cli(site.config, "order", "resume", order_id, check=True)
    assert_installed_everywhere(site, daemon_until(site.config, order_id, {"installed", "on_hold"}))


def test_unwritable_dir_on_web3_changes_nothing_anywhere_and_resume_after_repair_completes(ssh_site):
    site_dir = ssh_site.servers["web3"].directory / CN
    make_unwritable(site_dir)
    held_then_resumed(ssh_site, "web3", "stage", lambda: make_writable(site_dir))


def test_sshd_down_on_web2_changes_nothing_and_resume_after_restart_completes(ssh_site):
    ssh_site.servers["web2"].stop()
    held_then_resumed(ssh_site, "web2", "connect", ssh_site.servers["web2"].start)


def test_failing_reload_on_web3_rolls_back_all_three_and_nginx_still_serves_the_old_certificate(
        workspace, pki, nginx_factory, sshd_factory):
    site = build_site(workspace, pki, nginx_factory, sshd_factory,
                      reloads={"web3": "sh -c 'echo reload broke >&2; exit 3'"})
    nginx, old = site.nginx, site.old
    before = site.files()

    order_id = paid_order(workspace)
    held = daemon_until(workspace, order_id, {"on_hold", "installed"})

    assert held["state"] == "on_hold", held
    assert "web3" in held["reason"] and "reload" in held["reason"] and "exited 3" in held["reason"]
    assert site.files() == before
    old_fp = fingerprint_of(old.certificate_pem)
    assert wait_for_fingerprint(nginx.host_port, CN, old_fp) == old_fp


def test_changed_host_key_is_refused_naming_both_fingerprints_and_nothing_is_written(ssh_site):
    web2 = ssh_site.servers["web2"]
    pinned = host_fingerprint(web2.host_public)
    web2.rekey()
    presented = host_fingerprint(web2.host_public)
    before = ssh_site.files()
    order_id = paid_order(ssh_site.config)
    held = daemon_until(ssh_site.config, order_id, {"on_hold", "installed"})

    assert held["state"] == "on_hold", held
    assert "web2" in held["reason"] and pinned in held["reason"] and presented in held["reason"]
    assert ssh_site.files() == before
    # re-trusting without --replace is refused too, naming both
    refused = run_cli(ssh_site.config, "ssh", "trust", web2.host_port)
    assert refused.returncode == 2 and pinned in refused.stderr and presented in refused.stderr


_PAUSE_MID_SWAP = """\
import sys, time, pathlib
from adapters.install.ssh_link import SshLink
from adapters.install.ssh_session import LIVE_NAMES
marker, config = pathlib.Path(sys.argv[1]), sys.argv[2]
renamed = []
real = SshLink.rename
def rename(self, source, target):
    real(self, source, target)
    if target.rsplit("/", 1)[-1] in LIVE_NAMES:
        renamed.append(target)
        if len(renamed) == 6:  # web1's four files and two of web2's are live
            marker.write_text("paused")
            time.sleep(3600)
SshLink.rename = rename
from workflow.ops.cli import main
main(["--config", config, "daemon", "--once"])
"""


def test_kill_9_during_the_swap_then_a_rerun_leaves_every_server_with_one_consistent_set(
        ssh_site, tmp_path):
    configure(ssh_site.config, {"install.ssh.parallel": 1})  # web1, then web2, then web3
    order_id = paid_order(ssh_site.config)
    script, marker = tmp_path / "pause_mid_swap.py", tmp_path / "paused"
    script.write_text(_PAUSE_MID_SWAP)
    daemon = subprocess.Popen([sys.executable, str(script), str(marker), str(ssh_site.config)],
                              cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: marker.exists() or daemon.poll() is not None, timeout=120,
                 what="the daemon to reach the middle of the swap")
        assert marker.exists(), "the daemon finished without swapping"
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    web2 = {n: d for n, (d, _) in ssh_site.files()["web2"].items()}
    assert fingerprint_of(web2["cert.pem"]) != fingerprint_of(ssh_site.old.certificate_pem)
    assert web2["privkey.pem"] == ssh_site.old.private_key_pem  # mixed: killed mid-swap

    done = daemon_until(ssh_site.config, order_id, {"installed", "on_hold"})
    assert_installed_everywhere(ssh_site, done)


def test_shell_metacharacters_in_contract_values_and_names_never_reach_a_shell(
        workspace, pki, nginx_factory, sshd_factory, tmp_path):
    pwned = tmp_path / "pwned"
    # no '/' in a directory name: a shell running it would touch files in its cwd (home)
    token = f"certflow-pwned-{os.getpid()}"
    odd_name = f"a;b $(touch {token}-dir) `touch {token}-tick` |x"

    def odd_directory(site: SshSite) -> None:
        (site.servers["web3"].directory / odd_name).mkdir()

    site = build_site(
        workspace, pki, nginx_factory, sshd_factory, before_contract=odd_directory,
        reloads={"web2": f"/bin/echo ok; touch {pwned}-semi $(touch {pwned}-sub) "
                         f"`touch {pwned}-back` | touch {pwned}-pipe"},
        subdirs={"web3": odd_name})
    odd = site.servers["web3"].directory / odd_name

    refused = run_cli(workspace, "order", "place",
                      *place_args(contract=CONTRACT, common_name=f"www.$(touch {pwned}-cn).jp"))
    assert refused.returncode == 2, refused.stderr
    order_id = paid_order(workspace)
    done = daemon_until(workspace, order_id, {"installed", "on_hold"})

    assert done["state"] == "installed", done
    assert sorted(p.name for p in (odd / CN).iterdir()) == sorted(FILES)
    assert list(tmp_path.glob("pwned*")) == []
    for where in (Path.home(), Path("/"), ROOT, odd.parent):
        assert list(where.glob(f"{token}*")) == [], where


def test_doctor_checks_each_ssh_server_and_names_the_broken_one(ssh_site):
    healthy = doctor(ssh_site.config)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "3 SSH servers" in healthy.stdout

    ssh_site.servers["web2"].stop()
    broken = doctor(ssh_site.config)
    assert broken.returncode == 1
    assert "web2" in last_line(broken) and "connect" in last_line(broken), last_line(broken)
    ssh_site.servers["web2"].start()

    make_unwritable(ssh_site.servers["web3"].directory)
    try:
        unwritable = doctor(ssh_site.config)
    finally:
        make_writable(ssh_site.servers["web3"].directory)
    assert unwritable.returncode == 1 and "web3" in last_line(unwritable), last_line(unwritable)
    assert "not writable" in last_line(unwritable)

    with open(ssh_site.config, "a") as fh:  # another contract on web3, reloading with a typo
        fh.write(f'\n[contracts."C-7002"]\nplan = "basic"\nservers = [{{path = '
                 f'{json.dumps(ssh_site.servers["web3"].url)}, name = "web3", '
                 f'reload = "systemctl-typo reload nginx"}}]\n')
    missing = doctor(ssh_site.config)
    assert missing.returncode == 1 and "web3" in last_line(missing)
    assert "systemctl-typo" in last_line(missing) and "not found" in last_line(missing)
