"""Issue 10 end to end: `[ca] kind = "acme"` against Pebble, through the real CLI.

Orders are placed and paid with `certflow order ...`, and moved on only by
`certflow daemon --once` passes (or a long-running daemon killed with SIGKILL), as an
operator's cron would. Pebble is shared by the session, so every name here is unique to
this module (``e2e-acme-...``).
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from support.pebble import PebbleServer
from support.helpers import CERTFLOW, ROOT, cli_json, configure, place_args, run_cli

#: how long daemon --once passes may take to finish a batch of orders (seconds)
DRIVE_DEADLINE = 60.0
FINAL = ("installed", "delivered", "rejected", "cancelled", "on_hold")


# --- helpers ------------------------------------------------------------------------


def configure_acme(ws: Path, pebble: PebbleServer, **extra) -> None:
    """Point the workspace at Pebble: EAB, Pebble's HTTPS trust and its issuing root."""
    root = pebble.write_root(ws.parent / "pebble-root.pem")
    configure(ws, {
        "ca.kind": "acme", "ca.directory": pebble.directory, "ca.ca_bundle": pebble.ca_bundle,
        "ca.email": "ops@hosting.example", "ca.eab_kid": pebble.eab_kid,
        "ca.eab_hmac_key": pebble.eab_hmac_key, "ca.trust_roots": [root],
        "validation.webroot": str(pebble.webroot), **extra})


def place_paid(ws: Path, cn: str, validation: str = "http-01") -> str:
    order = cli_json(ws, "order", "place", *place_args(common_name=cn, validation=validation))
    run_cli(ws, "order", "pay", order["id"], check=True)
    return order["id"]


def drive(ws: Path, ids: list[str], deadline: float = DRIVE_DEADLINE) -> dict[str, dict]:
    """`daemon --once` passes until every order is in a final state; their `order show`s."""
    end = time.monotonic() + deadline
    while True:
        run_cli(ws, "daemon", "--once", check=True)
        shown = {i: cli_json(ws, "order", "show", i) for i in ids}
        if all(o["state"] in FINAL for o in shown.values()) or time.monotonic() > end:
            return shown
        time.sleep(1)


def assert_chains_to_pebble(ws: Path, cn: str, names: set[str], root_pem: str) -> None:
    """The installed cert.pem + chain.pem name exactly ``names`` and lead to Pebble's root."""
    folder = ws.parent / "var/servers/C-1001" / cn
    leaf = x509.load_pem_x509_certificate((folder / "cert.pem").read_bytes())
    chain = x509.load_pem_x509_certificates((folder / "chain.pem").read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == names
    root = x509.load_pem_x509_certificate(root_pem.encode())
    verifier = PolicyBuilder().store(Store([root])).build_server_verifier(x509.DNSName(cn))
    assert verifier.verify(leaf, chain)[-1] == root


def challenge_files_for(pebble: PebbleServer, ws: Path) -> list[Path]:
    """Challenge files still under the webroot that this workspace's orders published."""
    published = published_challenges(ws)
    assert published or not pebble.challenge_files(), "no published challenge recorded"
    return [p for p in pebble.challenge_files()
            if f".well-known/acme-challenge/{p.name}" in published]


def published_challenges(ws: Path) -> set[str]:
    """Names of the http challenges the workspace's orders published (from orders.data)."""
    published = set()
    with contextlib.closing(sqlite3.connect(ws.parent / "var/data/certflow.db")) as conn:
        for (data,) in conn.execute("SELECT data FROM orders"):
            published.update(c["name"] for c in json.loads(data or "{}").get("challenges") or ()
                             if c["kind"] == "http")
    return published


def peek_state(ws: Path, order_id: str) -> str | None:
    """The order's state read straight from the database (read-only): a CLI call per look
    is too slow to catch the few seconds the exchange is under way on a loaded machine."""
    uri = f"file:{ws.parent / 'var/data/certflow.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
        row = conn.execute("SELECT state FROM orders WHERE id = ?", (order_id,)).fetchone()
    return row[0] if row else None


def acme_orders_of(ws: Path) -> set[str]:
    """IDs of the ACME orders this workspace's adapter recorded (last URL segment)."""
    with contextlib.closing(sqlite3.connect(ws.parent / "var/data/acme/acme.db")) as conn:
        return {url.rsplit("/", 1)[-1] for (url,) in conn.execute("SELECT order_url FROM orders")}


# --- tests --------------------------------------------------------------------------


def test_four_http01_orders_are_installed_by_daemon_passes(workspace, pebble):
    configure_acme(workspace, pebble)
    wanted = {
        "www.e2e-acme-one.jp": {"www.e2e-acme-one.jp", "e2e-acme-one.jp"},
        "e2e-acme-two.example.com": {"e2e-acme-two.example.com"},
        "shop.e2e-acme-three.example.org": {"shop.e2e-acme-three.example.org"},
        "e2e-acme-four.example.net": {"e2e-acme-four.example.net"},
    }
    ids = {place_paid(workspace, cn): cn for cn in wanted}

    shown = drive(workspace, list(ids))

    assert {i: o["state"] for i, o in shown.items()} == {i: "installed" for i in ids}
    root = pebble.root_pem()
    for order_id, cn in ids.items():
        assert set(shown[order_id]["sans"]) | {cn} == wanted[cn]
        assert_chains_to_pebble(workspace, cn, wanted[cn], root)
    assert len(acme_orders_of(workspace)) == 4
    assert challenge_files_for(pebble, workspace) == []


def test_a_name_where_nothing_listens_ends_the_order_with_the_acme_detail(workspace, pebble):
    configure_acme(workspace, pebble)
    cn = "e2e-acme-nothing-listens.example.com"
    pebble.add_a(cn, ["127.0.0.2"])
    try:
        order_id = place_paid(workspace, cn)
        [shown] = drive(workspace, [order_id]).values()
    finally:
        pebble.clear_a(cn)
    assert shown["state"] in ("rejected", "cancelled", "on_hold"), shown
    # Pebble's problem detail names the address it could not reach, not the ACME token
    reason = shown["reason"] or ""
    assert "127.0.0.2" in reason and "connection refused" in reason.lower(), reason
    tokens = [name.rsplit("/", 1)[-1] for name in published_challenges(workspace)]
    assert tokens and not any(token in reason for token in tokens), reason
    assert not (workspace.parent / "var/servers/C-1001" / cn).exists()
    assert challenge_files_for(pebble, workspace) == []


DNS_HOOK = """\
import json, sys, urllib.request

action, name, value = sys.argv[1:4]
host = name if name.endswith(".") else name + "."
path, body = ("/set-txt", {{"host": host, "value": value}}) if action == "add" \\
    else ("/clear-txt", {{"host": host}})
request = urllib.request.Request({base!r} + path, data=json.dumps(body).encode(), method="POST")
urllib.request.urlopen(request, timeout=10).read()
with open({log!r}, "a") as log:
    log.write(f"{{action}} {{host}}\\n")
"""


def test_a_dns01_order_is_installed_through_a_hook_and_challtestsrv(workspace, pebble, tmp_path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    log = hooks / "calls.log"
    script = hooks / "challtestsrv_txt.py"
    script.write_text(DNS_HOOK.format(base=pebble.challtestsrv, log=str(log)))
    configure_acme(workspace, pebble, **{
        "validation.dns_hook": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"})
    cn = "www.e2e-acme-dns.jp"
    order_id = place_paid(workspace, cn, validation="dns-01")

    [shown] = drive(workspace, [order_id]).values()

    assert shown["state"] == "installed", shown
    names = {cn, "e2e-acme-dns.jp"}
    assert_chains_to_pebble(workspace, cn, names, pebble.root_pem())
    calls = log.read_text().splitlines()
    added = {line.split()[1] for line in calls if line.startswith("add ")}
    removed = {line.split()[1] for line in calls if line.startswith("remove ")}
    assert added, "the hook published no TXT record"
    assert added <= {f"_acme-challenge.{n}." for n in names}
    assert removed == added  # every record published was taken down again


def test_a_daemon_killed_mid_exchange_resumes_with_one_acme_order(workspace, pebble, tmp_path):
    configure_acme(workspace, pebble, **{"daemon.dispatch_seconds": 0.2})
    cn = "www.e2e-acme-killed.jp"
    order_id = place_paid(workspace, cn)
    orders_before = set(pebble.orders_created())

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CERTFLOW_DEBUG", None)
    with open(tmp_path / "daemon.log", "wb") as out:
        daemon = subprocess.Popen([*CERTFLOW, "--config", str(workspace), "daemon"], cwd=str(ROOT),
                                  env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and daemon.poll() is None:
            if peek_state(workspace, order_id) in ("submitted", "awaiting_approval", *FINAL):
                break
            time.sleep(0.02)
        assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)  # reaped: its pid is gone, so its leases are orphans
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)
    at_kill = cli_json(workspace, "order", "show", order_id)["state"]
    assert at_kill in ("submitted", "awaiting_approval"), f"killed too late: order was {at_kill}"

    [shown] = drive(workspace, [order_id]).values()

    assert shown["state"] == "installed", shown
    assert_chains_to_pebble(workspace, cn, {cn, "e2e-acme-killed.jp"}, pebble.root_pem())
    new_orders = set(pebble.orders_created()) - orders_before
    assert len(new_orders) == 1, new_orders
    assert new_orders == acme_orders_of(workspace)
    assert challenge_files_for(pebble, workspace) == []


# --- issue 19: revokeCert (RFC 8555 §7.6) ------------------------------------------


def pebble_status(pebble, serial_hex: str) -> str:
    import httpx
    response = httpx.get(f"{pebble.management}/cert-status-by-serial/{serial_hex}",
                         verify=pebble.ca_bundle, timeout=10)
    response.raise_for_status()
    return json.loads(response.text)["Status"]


def test_revoke_on_pebble(workspace, pebble):
    configure_acme(workspace, pebble)
    order_id = place_paid(workspace, "www.e2e-revoke-one.jp")
    shown = drive(workspace, [order_id])[order_id]
    assert shown["state"] == "installed", shown["reason"]
    serial = shown["certificate"]["serial"]
    assert pebble_status(pebble, serial) == "Valid"
    proc = run_cli(workspace, "order", "revoke", order_id, "--reason", "keyCompromise")
    assert proc.returncode == 0, proc.stderr
    assert pebble_status(pebble, serial) == "Revoked"
    after = cli_json(workspace, "order", "show", order_id)
    assert (after["state"], after["reason"]) == ("revoked", "keyCompromise")
    # the installed files are left in place (documented): a renewal replaces them
    assert (workspace.parent / "var/servers/C-1001/www.e2e-revoke-one.jp/cert.pem").exists()
    again = run_cli(workspace, "order", "revoke", order_id, "--reason", "keyCompromise")
    assert again.returncode == 2 and "revoked" in again.stderr
    crl = run_cli(workspace, "ca", "crl")
    assert crl.returncode == 2 and "ca.kind" in crl.stderr
