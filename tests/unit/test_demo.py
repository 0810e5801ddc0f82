"""`certflow demo`: the story runs end to end in a workspace of its own."""
from __future__ import annotations

from collections import Counter

from support.helpers import cli_json, run_cli


def test_demo_tells_the_whole_story(tmp_path):
    demo_dir = tmp_path / "demo"
    proc = run_cli(tmp_path / "unused.toml", "demo", "--dir", str(demo_dir), timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Traceback" not in out + proc.stderr
    for state in ("installed", "cancelled", "delivered", "rejected"):
        assert state in out
    assert "awaiting_approval → cancelled" in out and "expire by deadline" in out
    assert "hosting contract C-9001 is not active" in out

    # the workspace it leaves behind is a real one: the CLI reads the same orders
    config = demo_dir / "config.toml"
    orders = cli_json(config, "order", "list")
    assert Counter(o["state"] for o in orders) == {
        "installed": 4, "cancelled": 1, "delivered": 1, "rejected": 1}
    by_cn = {o["common_name"]: o for o in orders}
    assert by_cn["www.example-shop.jp"]["reason"]  # the 10-day cancellation says why

    # HA contract: the same certificate and key on each of the three servers
    servers = demo_dir / "var" / "servers"
    certs = {(servers / s / "www.example-ha.jp" / "cert.pem").read_text() for s in ("web1", "web2", "web3")}
    keys = {(servers / s / "www.example-ha.jp" / "privkey.pem").read_bytes() for s in ("web1", "web2", "web3")}
    assert len(certs) == 1 and len(keys) == 1
    assert (servers / "web1" / "www.example-ha.jp" / "privkey.pem").stat().st_mode & 0o777 == 0o600
    assert list((demo_dir / "var" / "mail").glob("*.eml"))

    # running it again empties its own workspace first
    again = run_cli(tmp_path / "unused.toml", "demo", "--dir", str(demo_dir), timeout=180)
    assert again.returncode == 0, again.stderr
    assert len(cli_json(config, "order", "list")) == 7


def test_demo_refuses_a_directory_that_is_not_its_own(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    proc = run_cli(tmp_path / "unused.toml", "demo", "--dir", str(precious))
    assert proc.returncode == 2
    assert "not a certflow demo workspace" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in precious.iterdir()) == ["notes.txt"]
    assert (precious / "notes.txt").read_text() == "keep me"
