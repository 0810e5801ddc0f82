"""Issue 21 in small: ssh:// server entries, verify per server, pinned host keys, the
per-server lock across processes, the SSH identity, and parallel all-or-nothing steps."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading

import asyncssh
import pytest

from adapters.base import BadInput, Bundle, Target, TransientError
from adapters.common.servers import install_targets, parse_ssh_url, verify_entries
from adapters.install import ssh_trust
from adapters.install.server_lock import lock_path, server_locks
from adapters.install.ssh_keys import create_identity, load_identity, public_key_line
from adapters.install.targets import AllOrNothingInstaller, StepFailed
from support.helpers import ROOT, configure, run_cli
from workflow import config as config_mod
from workflow.errors import ConfigError


# --- server entries ---------------------------------------------------------------------


def test_an_ssh_url_names_user_host_port_and_directory():
    a = parse_ssh_url("ssh://deploy@web1.example.jp/etc/nginx/ssl/")
    assert (a.user, a.host, a.port, a.directory, a.name) == \
        ("deploy", "web1.example.jp", 22, "/etc/nginx/ssl", "web1.example.jp")
    b = parse_ssh_url("ssh://root@[::1]:2222/srv/certs")
    assert (b.host, b.port, b.host_port, b.name) == ("::1", 2222, "[::1]:2222", "[::1]:2222")


@pytest.mark.parametrize("url", [
    "ssh://web1/etc/ssl", "ssh://deploy@web1", "ssh://deploy@web1/", "ssh://de;ploy@web1/x",
    "ssh://deploy@web1:99999/x", "ssh://deploy@web1/etc/../root", "ssh://deploy@we b1/x",
    "ssh://deploy@web1/a\nb",
])
def test_a_malformed_ssh_url_is_refused_naming_the_field(url):
    with pytest.raises(BadInput) as err:
        parse_ssh_url(url, "contracts.C.servers[0]")
    assert err.value.field == "contracts.C.servers[0]"


def test_verify_is_one_for_all_a_host_template_or_one_per_server():
    servers = ["ssh://u@web1/x", "ssh://u@10.0.0.2:2222/x"]
    assert verify_entries("lb:443", servers, "v") == ["lb:443", "lb:443"]
    assert verify_entries("{host}:443", servers, "v") == ["web1:443", "10.0.0.2:443"]
    assert verify_entries(["a:1", "b:2"], servers, "v") == ["a:1", "b:2"]
    for bad in (["a:1"], "{host}", ["a:1", "nope"]):
        with pytest.raises(BadInput):
            verify_entries(bad, servers, "v")
    with pytest.raises(BadInput, match="needs an ssh:// server"):
        verify_entries("{host}:443", ["/srv/web1"], "v")


def _contract(workspace, text: str):
    with open(workspace, "a") as fh:
        fh.write('\n[contracts."C-9"]\nplan = "basic"\n' + text + "\n")
    return config_mod.load(workspace)


def test_config_keeps_ssh_servers_as_written_next_to_resolved_local_ones(workspace):
    cfg = _contract(workspace, 'servers = ["ssh://deploy@web1:2222/etc/ssl", "local/web2"]\n'
                    'verify = ["web1:443", "127.0.0.1:8443"]\nreload = "systemctl reload nginx"')
    targets = install_targets(cfg.contracts["C-9"]["targets"])
    assert [(t.name, t.path, t.verify, t.reload) for t in targets] == [
        ("web1:2222", "ssh://deploy@web1:2222/etc/ssl", "web1:443", "systemctl reload nginx"),
        ("web2", str(workspace.parent / "local/web2"), "127.0.0.1:8443", "systemctl reload nginx")]


def test_config_expands_the_host_template_for_tables_too(workspace):
    cfg = _contract(workspace, 'servers = [{path = "ssh://u@web1/x", name = "w1", '
                    'verify = "{host}:8443"}, "ssh://u@web2/x"]\nverify = "{host}:443"')
    assert [(t.get("name"), t["verify"]) for t in cfg.contracts["C-9"]["targets"]] == \
        [("w1", "web1:8443"), (None, "web2:443")]


@pytest.mark.parametrize("text, field", [
    ('servers = ["ssh://web1/x"]', "contracts.C-9.servers[0]"),
    ('servers = ["ssh://u@web1/x", "ssh://u@web2/x"]\nverify = ["a:1"]', "contracts.C-9.verify"),
    ('servers = ["/srv/a"]\nverify = "{host}:443"', "contracts.C-9.verify"),
])
def test_a_bad_server_or_verify_entry_is_a_config_error_naming_it(workspace, text, field):
    with pytest.raises(ConfigError) as err:
        _contract(workspace, text)
    assert err.value.field == field and field in err.value.message


def test_install_ssh_is_its_own_table_and_unknown_keys_are_refused(workspace):
    configure(workspace, {"install.ssh.parallel": 3, "install.root": "var/servers"})
    assert config_mod.load(workspace)["install.ssh"]["parallel"] == 3
    configure(workspace, {"install.ssh.password": "x"})
    with pytest.raises(ConfigError, match="install.ssh.password"):
        config_mod.load(workspace)


# --- host keys --------------------------------------------------------------------------


def test_host_keys_are_pinned_per_host_and_port_and_a_changed_one_names_both(tmp_path):
    path = str(tmp_path / "known_hosts")
    first, second = (asyncssh.generate_private_key("ssh-ed25519") for _ in range(2))
    assert ssh_trust.pinned_keys(path, "127.0.0.1", 2222) == []
    assert ssh_trust.record(path, "127.0.0.1", 2222, first) is True
    assert ssh_trust.record(path, "127.0.0.1", 2222, first) is False
    assert [ssh_trust.fingerprint(k) for k in ssh_trust.pinned_keys(path, "127.0.0.1", 2222)] \
        == [ssh_trust.fingerprint(first)]
    assert ssh_trust.pinned_keys(path, "127.0.0.1", 2223) == []
    assert (tmp_path / "known_hosts").read_text().startswith("[127.0.0.1]:2222 ssh-ed25519 ")

    refused = ssh_trust.refusal("127.0.0.1", 2222, second, [first])
    assert ssh_trust.fingerprint(first) in str(refused) and ssh_trust.fingerprint(second) in str(refused)
    assert "127.0.0.1:2222" in str(refused)
    unknown = ssh_trust.refusal("web9", 22, second, [])
    assert "not pinned" in str(unknown) and "certflow ssh trust web9:22" in str(unknown)
    assert ssh_trust.forget(path, "127.0.0.1", 2222) == 1
    assert ssh_trust.pinned_keys(path, "127.0.0.1", 2222) == []


# --- per-server lock --------------------------------------------------------------------

_HOLDER = """\
import sys, time
from adapters.install.server_lock import server_locks
with server_locks(sys.argv[1], [sys.argv[2]], 5):
    print("held", flush=True)
    time.sleep(3600)
"""


def test_a_server_locked_by_another_process_waits_and_a_killed_holder_frees_it(tmp_path):
    lock_dir = str(tmp_path / "locks")
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, lock_dir, "127.0.0.1:2222"],
                              stdout=subprocess.PIPE, text=True, cwd=str(ROOT),
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(TransientError, match="127.0.0.1:2222 is busy") as err:
            with server_locks(lock_dir, ["127.0.0.1:2223", "127.0.0.1:2222"], 0.2):
                pass
        assert err.value.step == "lock"
        with server_locks(lock_dir, ["127.0.0.1:2223"], 0.2):  # other servers are free
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with server_locks(lock_dir, ["127.0.0.1:2222"], 5):  # the kernel dropped the dead lock
        pass
    assert os.path.basename(lock_path(lock_dir, "127.0.0.1:2222")).startswith("127.0.0.1_2222-")


def test_two_threads_never_hold_one_server_at_once(tmp_path):
    inside, overlaps = [], []

    def work():
        for _ in range(20):
            with server_locks(str(tmp_path), ["web1:22"], 30):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == []


# --- identity ---------------------------------------------------------------------------


def test_the_identity_is_0600_its_passphrase_comes_from_the_environment_and_errors_hide_it(
        tmp_path, monkeypatch):
    path = str(tmp_path / "ssh/id_ed25519")
    monkeypatch.setenv("TEST_SSH_PASS", "correct horse")
    assert create_identity(path, "TEST_SSH_PASS") is True
    assert create_identity(path, "TEST_SSH_PASS") is False
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    line = public_key_line(path, "TEST_SSH_PASS")
    assert line.startswith("ssh-ed25519 ") and line.split()[1] == open(path + ".pub").read().split()[1]
    monkeypatch.delenv("TEST_SSH_PASS")
    with pytest.raises(BadInput) as err:
        load_identity(path, "TEST_SSH_PASS")
    assert err.value.field == "install.ssh.identity" and "$TEST_SSH_PASS" in err.value.message
    monkeypatch.setenv("TEST_SSH_PASS", "wrong")
    with pytest.raises(BadInput, match="wrong passphrase") as err:
        load_identity(path, "TEST_SSH_PASS")
    assert "PRIVATE" not in err.value.message and "wrong\"" not in err.value.message


def test_init_with_ssh_key_makes_the_identity_and_ssh_pubkey_prints_its_public_half(tmp_path):
    config = tmp_path / "ws/config.toml"
    missing = run_cli(tmp_path / "none.toml", "init", str(tmp_path / "ws"), check=True)
    assert missing.returncode == 0
    refused = run_cli(config, "ssh", "pubkey")
    assert refused.returncode == 2 and "init --ssh-key" in refused.stderr
    run_cli(config, "init", "--force", "--ssh-key", str(tmp_path / "ws"), check=True)
    identity = tmp_path / "ws/var/data/ssh/id_ed25519"
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    shown = run_cli(config, "ssh", "pubkey", check=True)
    public = (tmp_path / "ws/var/data/ssh/id_ed25519.pub").read_text().split()
    assert shown.stdout.split()[:2] == public[:2] and "PRIVATE" not in shown.stdout


def test_ssh_trust_of_an_unreachable_host_is_refused_and_records_nothing(workspace, closed_port):
    proc = run_cli(workspace, "ssh", "trust", f"127.0.0.1:{closed_port}")
    assert proc.returncode == 2 and f"127.0.0.1:{closed_port}" in proc.stderr
    assert not (workspace.parent / "var/data/ssh/known_hosts").exists()


# --- parallel all-or-nothing ----------------------------------------------------------------


class _Session:
    def __init__(self, target, journal, fail=None):
        self.target, self.journal, self.fail = target, journal, fail

    def _do(self, step):
        self.journal.append((self.target.name, step))
        if self.fail == step:
            raise StepFailed(f"{step} broke")

    def stage(self, files):
        self._do("stage")

    def swap(self):
        self._do("swap")

    def reload(self):
        self._do("reload")

    def rollback(self):
        self._do("rollback")

    def cleanup(self):
        self._do("cleanup")


class _Installer(AllOrNothingInstaller):
    def __init__(self, fails, parallel):
        super().__init__(parallel=parallel)
        self.fails, self.journal = fails, []

    def open_session(self, target, directory):
        return _Session(target, self.journal, self.fails.get(target.name))


@pytest.mark.parametrize("parallel", [1, 3])
@pytest.mark.parametrize("step, rolled_back", [("stage", set()), ("swap", {"a", "b", "c"}),
                                                ("reload", {"a", "b", "c"})])
def test_a_failure_on_one_server_rolls_back_every_swapped_one(pki, parallel, step, rolled_back):
    bundle: Bundle = pki.bundle("www.example.jp")
    installer = _Installer({"c": step}, parallel)
    targets = [Target(n, f"/srv/{n}") for n in "abc"]
    with pytest.raises(TransientError) as err:
        installer.install(bundle, targets)
    assert err.value.target == "c" and err.value.step == step and f"at {step}" in err.value.message
    journal = installer.journal
    assert {n for n, s in journal if s == "rollback"} == rolled_back
    assert {n for n, s in journal if s == "cleanup"} == {"a", "b", "c"}
    if step == "stage":
        assert not [s for _, s in journal if s == "swap"]
