"""Issue 19: the log lines an operator follows (one per committed transition, one per
effect outcome), JSON lines, nothing configured at import, no secret in any line."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from support import mailfolder
from support.daemon import mails_of
from support.helpers import ORDER, ROOT, cli_json, configure, place_args, run_cli
from workflow.effects.dispatcher import Dispatcher
from workflow.errors import InvalidTransition
from workflow.ops.logformat import JsonFormatter, redact

IMPORT_CHECK = """
import logging
import workflow, workflow.engine, workflow.effects.daemon, workflow.effects.dispatcher
import workflow.effects.metrics, workflow.ops.exporter, workflow.ops.cli, workflow.logs
from prometheus_client import REGISTRY
root = logging.getLogger()
ours = [n for n in logging.root.manager.loggerDict if n.startswith("certflow")]
print(len(root.handlers), root.level, [n for n in ours if logging.getLogger(n).handlers
      or logging.getLogger(n).level != logging.NOTSET],
      [n for n in REGISTRY._names_to_collectors if n.startswith("certflow")])
"""


def test_importing_workflow_configures_no_logging_and_no_global_metrics():
    out = subprocess.run([sys.executable, "-c", IMPORT_CHECK], capture_output=True, text=True,
                         cwd=str(ROOT), check=True).stdout.split(maxsplit=2)
    assert out == ["0", str(logging.WARNING), "[] []\n"]


def moves(caplog) -> list[dict]:
    return [r.certflow for r in caplog.records if r.name == "certflow.transitions"]


def test_one_line_per_committed_transition(engine, caplog):
    caplog.set_level(logging.INFO, logger="certflow")
    order = engine.place(**ORDER)
    engine.fire(order.id, "pay", actor="billing")
    assert moves(caplog) == [
        {"order": order.id, "trigger": "place", "source": "new", "dest": "ordered", "actor": "api"},
        {"order": order.id, "trigger": "pay", "source": "ordered", "dest": "paid",
         "actor": "billing"}]
    line = [r for r in caplog.records if r.name == "certflow.transitions"][-1]
    assert line.levelno == logging.INFO
    assert line.getMessage() == f"order {order.id}: pay ordered -> paid by billing"

    caplog.clear()
    with pytest.raises(InvalidTransition):
        engine.fire(order.id, "pay")
    with pytest.raises(RuntimeError):  # applied, then rolled back: it never happened
        with engine.command() as tx:
            engine.apply(tx, engine.load(tx, order.id), "cancel", {"reason": "x"}, "test",
                         engine.now())
            raise RuntimeError("rolled back")
    assert engine.get(order.id).state == "paid"
    assert moves(caplog) == []


def test_one_line_per_effect_outcome(engine, caplog):
    caplog.set_level(logging.INFO, logger="certflow")
    order = engine.place(**ORDER)
    engine.fire(order.id, "pay")
    Dispatcher(engine).drain()
    outcomes = [r.certflow for r in caplog.records
                if r.name == "certflow.effects" and getattr(r, "certflow", None)]
    ran = {(o["effect"], o["result"]) for o in outcomes if o["order"] == order.id}
    assert {("make_csr", "done"), ("submit_ca", "done"), ("install", "done")} <= ran
    assert all(o["attempt"] == 1 and o["duration_seconds"] >= 0 for o in outcomes)
    assert engine.get(order.id).state == "installed"


def test_json_formatter_one_object_per_line_and_secrets_hidden():
    record = logging.LogRecord("certflow.x", logging.ERROR, __file__, 1,
                               "got %s\nand https://ca/approve?token=s3cr3t&x=1", (
                                   "-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----",),
                               None)
    record.certflow = {"order": "20261201-0a"}
    text = JsonFormatter().format(record)
    assert "\n" not in text
    line = json.loads(text)
    assert line["order"] == "20261201-0a" and line["level"] == "ERROR"
    assert "MIIEv" not in text and "s3cr3t" not in text
    assert line["message"] == ("got <private key hidden>\nand "
                               "https://ca/approve?token=<hidden>&x=1")
    assert redact("-----BEGIN EC PRIVATE KEY-----\nAAA") == "<ec private key hidden>"


def json_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_json_log_of_a_whole_order_through_the_cli(workspace):
    configure(workspace, {"daemon.log_format": "json"})
    order = cli_json(workspace, "order", "place", *place_args(validation="email"))
    logged = [run_cli(workspace, "-v", "order", "pay", order["id"], check=True),
              run_cli(workspace, "-v", "daemon", "--once", check=True)]
    [mail] = mails_of(workspace, "approval_request", to="admin@example.jp")
    token = mailfolder.token_in(mail)
    logged += [run_cli(workspace, "-v", "ca", "approve", token, check=True),
               run_cli(workspace, "-v", "daemon", "--once", check=True)]
    lines = [line for proc in logged for line in json_lines(proc.stderr)]  # each line JSON
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)

    history = cli_json(workspace, "order", "history", order["id"])
    assert history[-1]["dest"] == "installed"
    assert [(ln["trigger"], ln["source"], ln["dest"], ln["actor"]) for ln in lines
            if ln["logger"] == "certflow.transitions"] == \
        [(e["trigger"], e["source"], e["dest"], e["actor"]) for e in history[1:]]
    effects = [ln for ln in lines if ln["logger"] == "certflow.effects" and "effect" in ln]
    assert {"make_csr", "submit_ca", "install"} <= {ln["effect"] for ln in effects}
    assert all(ln["order"] == order["id"] and ln["attempt"] >= 1 and ln["result"] in
               ("done", "dropped", "retry", "failed") and ln["duration_seconds"] >= 0
               for ln in effects)

    text = "".join(proc.stderr for proc in logged)
    key = (Path(workspace).parent / "var/servers/C-1001/www.example.jp/privkey.pem").read_text()
    key_body = "".join(key.splitlines()[1:-1])
    assert token not in text and key_body[:64] not in text and "PRIVATE KEY" not in text

    # --log-format beats [daemon] log_format
    second = cli_json(workspace, "order", "place", *place_args())
    proc = run_cli(workspace, "-v", "--log-format", "text", "order", "pay", second["id"],
                   check=True)
    assert proc.stderr.rstrip().endswith(
        f"INFO certflow.transitions: order {second['id']}: pay ordered -> paid by cli")
