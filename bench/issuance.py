"""Issuance at fleet speed: certflow's daemon against certbot and lego on one Pebble.

    python bench/issuance.py [--orders N] [--peers certbot,lego] [--json]

One Pebble (external account binding required, ``PEBBLE_VA_NOSLEEP=1``, its default
nonce rejection), pebble-challtestsrv as its DNS (every name is 127.0.0.1) and an HTTP
responder on the VA's port serving one webroot, all on loopback. Every client uses
EC P-256 keys and http-01 through that webroot, and registers its own account (EAB).

- certflow: a real ``certflow daemon`` (default ``[effects] workers``) on a fresh
  workspace with ``[ca] kind = "acme"``; N orders are placed, then paid one after
  another through the library; timed from the first pay to the last installed.
  Per order: pay → installed; and the time from the first pay to the first installed.
- certbot, from PyPI in a bench-only virtualenv made under the cache directory
  (``$XDG_CACHE_HOME``, else ``~/.cache``, ``certflow-bench/``) on first use: N
  parallel ``certbot certonly --webroot`` processes for the same N names, each with its
  own config directory (certbot locks it).
- lego, Debian's package when installed (``apt-get install lego``): N parallel
  ``lego --http --http.webroot ... run`` processes, each with its own ``--path``.

Prints each client's certificates/s and ``ratio_vs_best`` (certflow ÷ the fastest peer).
A peer that is not there is said so, and its figure is null. Targets on a 2-core box
(not asserted anywhere): ratio_vs_best >= 1.5, the first certificate installed within
3 s of the first payment.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

EMAIL = "ops@hosting.example"
PEERS = ("certbot", "lego")
TIMEOUT = 600.0


def names(n: int) -> list[str]:
    return [f"www.bench{i}.example.jp" for i in range(n)]


def _order(cn: str) -> dict:
    return dict(common_name=cn, organization="Example Corp.", locality="Shinjuku-ku",
                prefecture="Tokyo", country="JP", plan="basic", contract="C-1001",
                email="owner@example.jp", validation="http-01")


# --- certflow -----------------------------------------------------------------------


def run_certflow(work: Path, pebble, hosts: list[str]) -> dict:
    from support.helpers import configure
    from workflow.engine import Engine
    from workflow.ops.workspace import init_workspace

    config = init_workspace(work / "certflow")
    root = pebble.write_root(work / "pebble-root.pem")
    configure(config, {
        "ca.kind": "acme", "ca.directory": pebble.directory, "ca.ca_bundle": pebble.ca_bundle,
        "ca.email": EMAIL, "ca.eab_kid": pebble.eab_kid, "ca.eab_hmac_key": pebble.eab_hmac_key,
        "ca.trust_roots": [root], "validation.webroot": str(pebble.webroot),
        "keys.algorithm": "p256"})
    engine = Engine.from_config(str(config))
    log_path = work / "certflow-daemon.log"
    log = open(log_path, "wb")
    daemon = subprocess.Popen([sys.executable, "-m", "workflow", "--config", str(config), "-v",
                               "daemon"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                              cwd=str(ROOT), stdout=log, stderr=subprocess.STDOUT)
    db = sqlite3.connect(engine.config["store"]["path"], timeout=30)
    try:
        _wait(lambda: b"lease owner" in log_path.read_bytes(), 60, "the daemon to start")
        ids = [engine.place(**_order(cn)).id for cn in hosts]
        _wait(lambda: _pending(db) == 0, 120, "the order mails of the placed orders")
        paid: dict[str, float] = {}
        cpu_at_pay = _cpu_seconds(daemon.pid)
        for order_id in ids:
            engine.fire(order_id, "pay", actor="bench")
            paid[order_id] = time.perf_counter()
        installed: dict[str, float] = {}
        final = ("installed", "rejected", "cancelled", "on_hold")
        end = time.monotonic() + TIMEOUT
        while len(installed) < len(ids) and time.monotonic() < end:
            now = time.perf_counter()
            rows = db.execute(f"SELECT id, state FROM orders WHERE state IN "
                              f"({', '.join('?' * len(final))})", final).fetchall()
            for order_id, state in rows:
                installed.setdefault(order_id, now if state == "installed" else float("nan"))
            time.sleep(0.01)
        cpu = _cpu_seconds(daemon.pid) - cpu_at_pay
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        db.close()
        engine.close()
    done = {i: t for i, t in installed.items() if t == t}
    if not done:
        raise SystemExit(f"bench broken: certflow installed nothing; see {log_path}")
    first_pay = min(paid.values())
    latencies = sorted(done[i] - paid[i] for i in done)
    return {"ok": len(done), "failed": len(hosts) - len(done),
            "seconds": max(done.values()) - first_pay,
            "first_installed_s": min(done.values()) - first_pay,
            "first_paid_first": min(done, key=done.get) == ids[0], "cpu_s": cpu,
            "p50": statistics.median(latencies), "p99": _p99(latencies)}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a running process used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pending(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0]


def _p99(values: list[float]) -> float:
    """Nearest rank: the value 99 % of the orders did not exceed."""
    ordered = sorted(values)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)]


def _wait(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise SystemExit(f"bench broken: timed out waiting for {what}")
        time.sleep(0.02)


# --- the peers ----------------------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "certflow-bench"


def certbot_command() -> tuple[list[str] | None, str]:
    """certbot in the bench's own virtualenv (made on first use), or why not."""
    venv = cache_dir() / "certbot-venv"
    certbot = venv / "bin" / "certbot"
    if not certbot.exists():
        print(f"certbot: installing from PyPI into {venv} (bench only) ...", flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)],
                              capture_output=True, text=True)
        if made.returncode == 0:
            made = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "certbot"],
                                  capture_output=True, text=True)
        if made.returncode != 0 or not certbot.exists():
            return None, "certbot could not be installed from PyPI: " + \
                (made.stderr.strip().splitlines() or ["no output"])[-1]
    return [str(certbot)], ""


def lego_command() -> tuple[list[str] | None, str]:
    lego = shutil.which("lego")
    if lego is None:
        return None, "lego is not installed (Debian: apt-get install lego)"
    return [lego], ""


def certbot_args(pebble, host: str, home: Path) -> list[str]:
    return ["certonly", "--non-interactive", "--agree-tos", "--no-eff-email", "-m", EMAIL,
            "--server", pebble.directory, "--eab-kid", pebble.eab_kid,
            "--eab-hmac-key", pebble.eab_hmac_key, "--webroot", "-w", str(pebble.webroot),
            "-d", host, "--key-type", "ecdsa", "--elliptic-curve", "secp256r1",
            "--config-dir", str(home / "config"), "--work-dir", str(home / "work"),
            "--logs-dir", str(home / "logs")]


def lego_args(pebble, host: str, home: Path) -> list[str]:
    return ["--server", pebble.directory, "--accept-tos", "--email", EMAIL, "--eab",
            "--kid", pebble.eab_kid, "--hmac", pebble.eab_hmac_key, "--key-type", "ec256",
            "--path", str(home), "--domains", host, "--http",
            "--http.webroot", str(pebble.webroot), "run"]


def run_peer(name: str, command: list[str], make_args, work: Path, pebble,
             hosts: list[str]) -> dict:
    """N processes at once, one name each; timed from the first start to the last exit."""
    env = {**os.environ, "REQUESTS_CA_BUNDLE": pebble.ca_bundle,
           "LEGO_CA_CERTIFICATES": pebble.ca_bundle}
    homes = [work / name / str(i) for i in range(len(hosts))]
    for home in homes:
        home.mkdir(parents=True)
    start = time.perf_counter()
    procs = [subprocess.Popen(command + make_args(pebble, host, home), env=env,
                              stdout=open(home / "out.log", "wb"), stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL) for host, home in zip(hosts, homes)]
    codes = [p.wait(timeout=TIMEOUT) for p in procs]
    seconds = time.perf_counter() - start
    ok = sum(code == 0 for code in codes)
    if ok < len(hosts):
        failed = next(h for h, c in zip(homes, codes) if c != 0)
        last = (failed / "out.log").read_text(errors="replace").strip().splitlines()[-3:]
        print(f"{name}: {len(hosts) - ok} of {len(hosts)} runs failed, e.g.: " + " | ".join(last))
    return {"ok": ok, "failed": len(hosts) - ok, "seconds": seconds}


# --- main ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50, help="certificates per client")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help="peers to measure, comma-separated (default: certbot,lego)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    if args.orders < 1 or not set(peers) <= set(PEERS):
        parser.error(f"need --orders >= 1 and --peers among {', '.join(PEERS)}")
    if not shutil.which("pebble"):
        raise SystemExit("pebble is not installed (Debian: apt-get install pebble)")
    from support.pebble import start_pebble

    hosts = names(args.orders)
    rates: dict[str, float | None] = {p: None for p in PEERS}
    with tempfile.TemporaryDirectory(prefix="certflow-issuance-") as tmp:
        work = Path(tmp)
        with start_pebble(work / "pebble") as pebble:
            certflow = run_certflow(work, pebble, hosts)
            for peer in PEERS:
                if peer not in peers:
                    print(f"{peer}: not measured (--peers)")
                    continue
                command, why = certbot_command() if peer == "certbot" else lego_command()
                if command is None:
                    print(f"{peer}: not measured: {why}")
                    continue
                result = run_peer(peer, command, certbot_args if peer == "certbot" else lego_args,
                                  work, pebble, hosts)
                rates[peer] = result["ok"] / result["seconds"] if result["ok"] else None
                print(f"{peer}: {result['ok']} certificates in {result['seconds']:.2f} s, "
                      f"{rates[peer] or 0:.2f}/s ({args.orders} parallel processes)")
    certflow_rate = certflow["ok"] / certflow["seconds"]
    best = max((r for r in rates.values() if r), default=None)
    ratio = certflow_rate / best if best else None
    print(f"certflow: {certflow['ok']} certificates in {certflow['seconds']:.2f} s, "
          f"{certflow_rate:.2f}/s (daemon){'' if not certflow['failed'] else ', ' + str(certflow['failed']) + ' not installed'}")
    print(f"certflow daemon CPU from the first pay on: {certflow['cpu_s']:.1f} s, "
          f"{certflow['cpu_s'] / args.orders * 1000:.0f} ms per certificate")
    print(f"ratio_vs_best: {'n/a (no peer measured)' if ratio is None else f'{ratio:.2f}'} "
          "(certflow / fastest peer; goal >= 1.5)")
    print(f"first installed {certflow['first_installed_s']:.2f} s after the first pay "
          f"(goal <= 3 s; {'the first paid order' if certflow['first_paid_first'] else 'not the first paid order'}); "
          f"pay -> installed p50 {certflow['p50']:.2f} s, p99 {certflow['p99']:.2f} s")
    if args.json:
        def r(v):
            return None if v is None else round(v, 3)
        print(json.dumps({"orders": args.orders, "certflow_per_s": r(certflow_rate),
                          "certbot_per_s": r(rates["certbot"]), "lego_per_s": r(rates["lego"]),
                          "ratio_vs_best": r(ratio),
                          "first_installed_s": r(certflow["first_installed_s"]),
                          "pay_to_installed_p50_s": r(certflow["p50"]),
                          "pay_to_installed_p99_s": r(certflow["p99"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
