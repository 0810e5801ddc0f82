"""Issue 19: the operator's commands through the CLI, with their exit codes."""
import json
import sqlite3

from cryptography import x509

from support import mailfolder
from support.helpers import cli_json, place_args, run_cli


def ok(workspace, *args):
    return run_cli(workspace, *args, check=True).stdout


def installed(workspace, **overrides):
    o = cli_json(workspace, "order", "place", *place_args(**overrides))
    ok(workspace, "order", "pay", o["id"])
    ok(workspace, "daemon", "--once")
    shown = cli_json(workspace, "order", "show", o["id"])
    assert shown["state"] == "installed", shown["reason"]
    return shown


def awaiting_mail(workspace):
    o = cli_json(workspace, "order", "place", *place_args(validation="email"))
    ok(workspace, "order", "pay", o["id"])
    ok(workspace, "daemon", "--once")
    return cli_json(workspace, "order", "show", o["id"])


def db(workspace):
    return sqlite3.connect(workspace.parent / "var/data/certflow.db", isolation_level=None)


def test_order_list_filters_page_and_streams_json(workspace):
    a = cli_json(workspace, "order", "place", *place_args(common_name="www.例え.jp"))
    b = cli_json(workspace, "order", "place", *place_args(common_name="shop.example.jp",
                                                          email="b@example.jp"))
    c = cli_json(workspace, "order", "place", *place_args(contract="C-9001"))
    ids = sorted(o["id"] for o in (a, b, c))
    rows = cli_json(workspace, "order", "list")
    assert [r["id"] for r in rows] == ids and all("csr" not in r for r in rows)
    assert [r["id"] for r in cli_json(workspace, "order", "list", "--cn", "例え")] == [a["id"]]
    assert [r["id"] for r in cli_json(workspace, "order", "list", "--cn", "xn--r8jz45g")] == [a["id"]]
    assert [r["id"] for r in cli_json(workspace, "order", "list", "--email", "b@example.jp")] == [b["id"]]
    both = cli_json(workspace, "order", "list", "--state", "rejected", "--state", "ordered")
    assert len(both) == 3
    assert [r["id"] for r in cli_json(workspace, "order", "list", "--contract", "C-9001")] == [c["id"]]
    page = cli_json(workspace, "order", "list", "--limit", "2")
    rest = cli_json(workspace, "order", "list", "--after", page[-1]["id"])
    assert [r["id"] for r in page + rest] == ids
    table = run_cli(workspace, "order", "list", "--limit", "1", env={"COLUMNS": "200"})
    assert table.returncode == 0 and ids[0] in table.stdout and ids[1] not in table.stdout
    assert "--after " + ids[0] in table.stderr
    for header in ("id", "state", "common name", "contract", "not_after", "age"):
        assert header in table.stdout
    bad = run_cli(workspace, "order", "list", "--state", "nope")
    assert bad.returncode == 2 and "state" in bad.stderr
    assert run_cli(workspace, "order", "list", "--limit", "0").returncode == 2


def test_order_list_shows_no_negative_age(workspace):
    o = cli_json(workspace, "order", "place", *place_args())
    with db(workspace) as conn:
        conn.execute("UPDATE orders SET created_at = '2099-01-01T00:00:00Z'")
    table = run_cli(workspace, "order", "list", env={"COLUMNS": "200"}, check=True).stdout
    assert o["id"] in table and "-" not in table.split(o["id"], 1)[1].splitlines()[0].split("│")[-2]


def test_show_explains_pending_effects_and_deadline(workspace):
    o = awaiting_mail(workspace)
    shown = cli_json(workspace, "order", "show", o["id"])
    assert shown["deadline_trigger"] == "expire"
    assert {"effect", "attempts", "next_at", "last_error"} <= set(shown["pending"][0])
    assert "poll_ca" in [p["effect"] for p in shown["pending"]]
    text = ok(workspace, "order", "show", o["id"])
    assert "then expire fires" in text and "pending effects" in text


def test_retry_makes_pending_work_due_and_exits_2_when_none(workspace):
    o = cli_json(workspace, "order", "place", *place_args())
    with db(workspace) as conn:
        conn.execute("UPDATE outbox SET attempts = 3, next_at = '2099-01-01T00:00:00Z'")
    assert "1 pending effect(s) due now" in ok(workspace, "order", "retry", o["id"])
    assert cli_json(workspace, "order", "show", o["id"])["pending"][0]["attempts"] == 3
    ok(workspace, "daemon", "--once")
    proc = run_cli(workspace, "order", "retry", o["id"])
    assert proc.returncode == 2 and "nothing is pending" in proc.stderr
    assert run_cli(workspace, "order", "retry", "20261201-0000000000000000").returncode == 2


def test_resend_approval_and_set_approver(workspace):
    o = awaiting_mail(workspace)
    before = len(mailfolder.to(workspace, "admin@example.jp"))
    assert "resent to admin@example.jp" in ok(workspace, "order", "resend-approval", o["id"])
    mails = mailfolder.to(workspace, "admin@example.jp")
    assert len(mails) == before + 1 and len({mailfolder.token_in(m) for m in mails}) == 1
    old_token = mailfolder.token_in(mails[0])
    bad = run_cli(workspace, "order", "set-approver", o["id"], "info@example.jp")
    assert bad.returncode == 2 and "approver" in bad.stderr
    assert "submitted approver webmaster@example.jp" in ok(
        workspace, "order", "set-approver", o["id"], "webmaster@example.jp")
    history = cli_json(workspace, "order", "history", o["id"])
    assert history[-1]["trigger"] == "change_approver"
    ok(workspace, "daemon", "--once")
    assert run_cli(workspace, "ca", "approve", old_token).returncode == 2
    new_token = mailfolder.token_in(mailfolder.to(workspace, "webmaster@example.jp")[-1])
    ok(workspace, "ca", "approve", new_token)
    ok(workspace, "daemon", "--once")
    assert cli_json(workspace, "order", "show", o["id"])["state"] == "installed"
    refused = run_cli(workspace, "order", "resend-approval", o["id"])
    assert refused.returncode == 2 and "awaiting approval" in refused.stderr


def test_renew_and_revoke_with_the_local_ca(workspace):
    o = installed(workspace)
    out = ok(workspace, "order", "renew", o["id"])
    new_id = out.split()[0]
    assert cli_json(workspace, "order", "show", new_id)["renewal_of"] == o["id"]
    assert run_cli(workspace, "order", "renew", o["id"]).returncode == 2  # one renewal only
    bad = run_cli(workspace, "order", "revoke", o["id"], "--reason", "whim")
    assert bad.returncode == 2 and "reason" in bad.stderr
    assert "revoked (superseded)" in ok(workspace, "order", "revoke", o["id"],
                                        "--reason", "superseded")
    assert cli_json(workspace, "order", "show", o["id"])["state"] == "revoked"
    assert run_cli(workspace, "order", "revoke", o["id"], "--reason", "superseded").returncode == 2
    crl = x509.load_pem_x509_crl(ok(workspace, "ca", "crl").encode())
    root_dir = workspace.parent / "var/data/ca"
    issuer = x509.load_pem_x509_certificate((root_dir / "intermediate.pem").read_bytes())
    assert crl.issuer == issuer.subject and crl.is_signature_valid(issuer.public_key())
    assert crl.get_revoked_certificate_by_serial_number(int(o["certificate"]["serial"], 16))
    ok(workspace, "daemon", "--once")
    assert any("失効" in m["Subject"] for m in mailfolder.to(workspace, "owner@example.jp"))


def test_notify_failed_retry_ack(workspace):
    o = cli_json(workspace, "order", "place", *place_args())
    with db(workspace) as conn:
        conn.execute("UPDATE outbox SET status = 'failed', attempts = 5, last_error = 'down'")
    failed = cli_json(workspace, "notify", "failed")
    assert [(f["order_id"], f["template"]) for f in failed] == [(o["id"], "order_received")]
    assert cli_json(workspace, "status")["failed_notifications"] == 1
    assert run_cli(workspace, "notify", "retry").returncode == 2           # ids or --all
    assert run_cli(workspace, "notify", "retry", "9999").returncode == 2   # unknown id
    assert "1 notification(s) queued again" in ok(workspace, "notify", "retry", str(failed[0]["id"]))
    ok(workspace, "daemon", "--once")
    assert cli_json(workspace, "notify", "failed") == []
    with db(workspace) as conn:
        conn.execute("UPDATE outbox SET status = 'failed'")
    assert "1 notification(s) acknowledged" in ok(workspace, "notify", "ack", "--all")
    status = cli_json(workspace, "status")
    assert status["failed_notifications"] == 0 and status["failed_effects"] == []


def test_status_is_bounded(workspace):
    with db(workspace) as conn:
        for n in range(25):
            conn.execute(
                "INSERT INTO orders (id, state, version, entered_seq, common_name, sans, plan, "
                "contract, validation, email, language, organization, locality, prefecture, "
                "country, deadline_at, deadline_trigger, data, created_at, updated_at) VALUES "
                "(?, 'awaiting_approval', 1, 1, 'www.example.jp', '[]', 'basic', 'C-1001', "
                "'email', 'o@example.jp', 'ja', 'X', 'Shinjuku-ku', 'Tokyo', 'JP', ?, 'expire', "
                "'{}', '2026-11-01T00:00:00Z', '2026-11-01T00:00:00Z')",
                (f"20261101-{n:016x}", f"2026-11-{n % 28 + 1:02d}T00:00:00Z"))
    s = cli_json(workspace, "status")
    assert s["deadlines_48h_count"] == 25 and len(s["deadlines_48h"]) == 20
    assert s["deadlines_48h"][0]["deadline_at"] == "2026-11-01T00:00:00Z"
    assert s["states"]["awaiting_approval"] == 25 and s["on_hold_count"] == 0
    text = ok(workspace, "status")
    assert "deadlines in the next 48 h: 25 (20 of 25 shown)" in text.replace("\n", " ") or \
        "20 of 25 shown" in text
    assert json.dumps(s)  # the same shape as the table


def test_revoke_with_the_manual_ca_is_recorded_by_the_operator(workspace, tmp_path):
    from support.ca import manual_leaf, manual_root
    ca_key, ca_cert = manual_root(tmp_path)
    from support.helpers import configure
    configure(workspace, {"ca.kind": "manual", "ca.trust_roots": [str(tmp_path / "root.pem")]})
    o = cli_json(workspace, "order", "place", *place_args())
    ok(workspace, "order", "pay", o["id"])
    ok(workspace, "daemon", "--once")
    csr = x509.load_pem_x509_csr(cli_json(workspace, "order", "show", o["id"])["csr"].encode())
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(manual_leaf(ca_key, ca_cert, csr.public_key(), ("www.example.jp", "example.jp")))
    ok(workspace, "order", "issue", o["id"], str(leaf))
    ok(workspace, "daemon", "--once")
    out = ok(workspace, "order", "revoke", o["id"], "--reason", "cessationOfOperation")
    assert "revoked" in out and "by hand" in out
    assert cli_json(workspace, "order", "show", o["id"])["reason"] == "cessationOfOperation"
    assert run_cli(workspace, "ca", "crl").returncode == 2  # no CRL of another company's CA
