"""Publishing validation challenges without a server: webroot files (paths, symlinks, the
default webroot), DNS hook commands, dispatch by kind, fetching from a closed port."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from adapters.base import BadInput, Challenge, PermanentError, TransientError
from adapters.validation.composite import CompositeValidator
from adapters.validation.dns_hook import DnsHookValidator
from adapters.validation.webroot import WebrootValidator
from support.validation import fetch_challenge, http_challenge, tree


# --- webroot files ---------------------------------------------------------------------


def test_fetch_from_nowhere_is_none(closed_port):
    name = http_challenge().name
    assert fetch_challenge("www.example.jp", name, f"127.0.0.1:{closed_port}", 5) is None


def test_fetch_refuses_paths_outside_the_challenge_directories():
    with pytest.raises(BadInput):
        fetch_challenge("www.example.jp", "../etc/passwd", "127.0.0.1:1", 5)


def test_acme_tokens_and_the_default_webroot(tmp_path):
    default = tmp_path / "default-webroot"
    challenge = http_challenge(directory="acme-challenge",
                               name="LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0")
    validator = WebrootValidator(str(default))

    validator.place(challenge, None)   # the order has no webroot of its own

    assert (default / challenge.name).read_text() == challenge.content


def test_place_again_replaces_and_remove_twice_is_fine(tmp_path):
    challenge = http_challenge()
    validator = WebrootValidator(str(tmp_path))
    validator.place(challenge, None)
    validator.place(Challenge("http", challenge.domain, challenge.name, "second"), None)
    assert (tmp_path / challenge.name).read_text() == "second"

    validator.remove(challenge, None)
    validator.remove(challenge, None)
    assert not (tmp_path / challenge.name).exists()


def test_remove_from_a_webroot_that_never_existed_is_fine(tmp_path):
    WebrootValidator(None).remove(http_challenge(), str(tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def test_no_webroot_at_all_is_permanent():
    with pytest.raises(PermanentError) as caught:
        WebrootValidator(default_webroot=None).place(http_challenge(), None)
    assert "webroot" in caught.value.message


@pytest.mark.parametrize("name", [
    "../x",
    "/etc/passwd",
    ".well-known/pki-validation/../../x",
    ".well-known/pki-validation/../../../etc/passwd",
    ".well-known/pki-validation/.htaccess",
    ".well-known/pki-validation/a..txt",
    ".well-known/pki-validation/sub/x.txt",
    ".well-known/pki-validation/",
    ".well-known/other/x.txt",
    "pki-validation/x.txt",
    ".well-known/pki-validation/x\\..\\..\\y",
    ".well-known/pki-validation/x y.txt",
    "",
])
def test_paths_that_could_escape_are_refused_and_nothing_is_written(tmp_path, name):
    webroot = tmp_path / "webroot"
    webroot.mkdir()
    challenge = Challenge(kind="http", domain="www.example.jp", name=name, content="x")

    with pytest.raises(BadInput) as caught:
        WebrootValidator(str(webroot)).place(challenge, None)
    assert caught.value.field == "validation.path"
    with pytest.raises(BadInput):
        WebrootValidator(str(webroot)).remove(challenge, None)

    assert tree(tmp_path) == ["webroot"]


@pytest.mark.parametrize("link", [".well-known", ".well-known/pki-validation"])
def test_symlinks_leading_out_of_the_webroot_are_refused(tmp_path, link):
    webroot, outside = tmp_path / "webroot", tmp_path / "outside"
    webroot.mkdir()
    outside.mkdir()
    (webroot / link).parent.mkdir(parents=True, exist_ok=True)
    (webroot / link).symlink_to(outside, target_is_directory=True)
    victim_dir = outside / "pki-validation" if link == ".well-known" else outside
    victim_dir.mkdir(exist_ok=True)
    victim = victim_dir / "precious.txt"
    victim.write_text("keep me")
    before = tree(outside)
    validator = WebrootValidator(str(webroot))

    with pytest.raises(BadInput) as caught:
        validator.place(http_challenge(), None)
    assert "leaves the webroot" in caught.value.message
    with pytest.raises(BadInput):
        validator.remove(http_challenge(name="precious.txt"), None)

    assert tree(outside) == before and victim.read_text() == "keep me"


def test_symlinks_that_stay_inside_the_webroot_are_followed(tmp_path):
    webroot = tmp_path / "webroot"
    (webroot / "shared" / "pki-validation").mkdir(parents=True)
    (webroot / ".well-known").symlink_to(webroot / "shared", target_is_directory=True)
    challenge = http_challenge()

    WebrootValidator(str(webroot)).place(challenge, None)

    assert (webroot / "shared" / "pki-validation" / challenge.name.rsplit("/", 1)[1]) \
        .read_text() == challenge.content


def test_a_planted_file_symlink_is_replaced_not_written_through(tmp_path):
    webroot, outside = tmp_path / "webroot", tmp_path / "outside.txt"
    outside.write_text("keep me")
    challenge = http_challenge()
    (webroot / challenge.name).parent.mkdir(parents=True)
    (webroot / challenge.name).symlink_to(outside)

    WebrootValidator(str(webroot)).place(challenge, None)

    assert outside.read_text() == "keep me"
    assert not (webroot / challenge.name).is_symlink()
    assert (webroot / challenge.name).read_text() == challenge.content


# --- DNS hook ----------------------------------------------------------------------------


def write_hook(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\nimport json, os, sys\n{body}\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def recording_hook(tmp_path):
    log = tmp_path / "dns.log"
    hook = write_hook(tmp_path / "dns-hook", (
        "env = {k: v for k, v in os.environ.items() if k.startswith('CERTFLOW_DNS_')}\n"
        f"with open({str(log)!r}, 'a') as out:\n"
        "    out.write(json.dumps({'argv': sys.argv[1:], 'env': env}) + '\\n')\n"))
    return hook, log


def dns_challenge() -> Challenge:
    return Challenge(kind="dns", domain="www.example.jp", name="_acme-challenge.www.example.jp",
                     content="-Xw8VjsQhVcbPx0Zp3kqHqgXcNSyGcDHXEmKcB1D3a4")


def test_dns_hook_adds_and_removes_the_record(recording_hook):
    hook, log = recording_hook
    validator = DnsHookValidator(f"{hook} --zone example.jp", timeout=30)
    challenge = dns_challenge()

    validator.place(challenge, None)
    validator.remove(challenge, None)

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["argv"] for c in calls] == [
        ["--zone", "example.jp", "add", challenge.name, challenge.content],
        ["--zone", "example.jp", "remove", challenge.name, challenge.content],
    ]
    assert calls[0]["env"] == {"CERTFLOW_DNS_ACTION": "add", "CERTFLOW_DNS_NAME": challenge.name,
                               "CERTFLOW_DNS_VALUE": challenge.content}


def test_failing_dns_hook_is_transient_with_exit_code_and_last_stderr_line(tmp_path):
    hook = write_hook(tmp_path / "failing-hook", (
        "print('connecting to the DNS API', file=sys.stderr)\n"
        "print('zone example.jp not found', file=sys.stderr)\n"
        "sys.exit(3)"))

    with pytest.raises(TransientError) as caught:
        DnsHookValidator(str(hook)).place(dns_challenge(), None)

    assert caught.value.exit_code == 3
    assert caught.value.detail == "zone example.jp not found"
    assert caught.value.message.endswith("exited 3: zone example.jp not found")


def test_missing_dns_hook_is_permanent(tmp_path):
    with pytest.raises(PermanentError):
        DnsHookValidator(str(tmp_path / "no-such-hook")).place(dns_challenge(), None)


@pytest.mark.parametrize("command", ["", "   ", "'unbalanced"])
def test_unusable_dns_hook_setting_is_refused(command):
    with pytest.raises(BadInput) as caught:
        DnsHookValidator(command)
    assert caught.value.field == "validation.dns_hook"


def test_dns_record_names_are_checked_before_running_anything(recording_hook):
    hook, log = recording_hook
    bad = Challenge(kind="dns", domain="example.jp", name="-rf example.jp", content="v")

    with pytest.raises(BadInput):
        DnsHookValidator(str(hook)).place(bad, None)
    assert not log.exists()


# --- dispatch by kind ------------------------------------------------------------------


def test_composite_sends_each_kind_to_its_validator(tmp_path, recording_hook):
    hook, log = recording_hook
    webroot = tmp_path / "webroot"
    validator = CompositeValidator(http=WebrootValidator(str(webroot)),
                                   dns=DnsHookValidator(str(hook)))
    file_challenge, txt_challenge = http_challenge(), dns_challenge()

    validator.place(file_challenge, None)
    validator.place(txt_challenge, None)

    assert (webroot / file_challenge.name).read_text() == file_challenge.content
    assert json.loads(log.read_text())["argv"][0] == "add"
    validator.remove(file_challenge, None)
    assert not (webroot / file_challenge.name).exists()


def test_composite_without_dns_hook_refuses_dns_challenges(tmp_path):
    validator = CompositeValidator(http=WebrootValidator(str(tmp_path)))
    with pytest.raises(PermanentError) as caught:
        validator.place(dns_challenge(), None)
    assert "dns_hook" in caught.value.message
    with pytest.raises(PermanentError):
        validator.place(Challenge("tls-alpn", "example.jp", "x", "y"), None)
