"""Export order histories to JSON Lines and import them into another workspace:
verified as it goes, all or nothing, no private keys or tokens on the way."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.helpers import cli_json, make_workspace, run_cli
from support.postgres import store_sql

TABLES = ("orders", "events", "certificates", "keys", "outbox")


@pytest.fixture
def workspace(workspace_both):
    return workspace_both


def counts(config: Path) -> dict[str, int]:
    return {t: store_sql(config, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}


def views(config: Path, ids: list[str]) -> dict[str, tuple]:
    """What an operator sees of each order: `order show --json` and `order history --json`."""
    return {i: (cli_json(config, "order", "show", i), cli_json(config, "order", "history", i))
            for i in ids}


def _without_origin(views: dict) -> dict:
    return {i: ({k: v for k, v in show.items() if k not in ("application_id", "imported")}, hist)
            for i, (show, hist) in views.items()}


@pytest.fixture
def exported(population, tmp_path):
    path = tmp_path / "orders.jsonl"
    proc = run_cli(population.config, "export", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"exported {len(population.all)} orders" in proc.stdout
    return path


@pytest.fixture
def fresh(tmp_path, other_backend_settings) -> Path:
    return make_workspace(tmp_path / "other", other_backend_settings)


def test_export_import_round_trip(population, exported, fresh):
    assert run_cli(fresh, "import", str(exported), check=True).stdout.startswith(
        f"imported {len(population.all)} orders")

    rows = cli_json(fresh, "replay", "--all", "--verify")
    assert sorted(r["id"] for r in rows) == sorted(population.all)
    assert all(r["ok"] for r in rows), rows
    here, there = views(fresh, population.all), views(population.config, population.all)
    # the CA application belongs to the exporting workspace's CA: it names nothing here
    assert all(show["application_id"] is None and show["imported"] for show, _ in here.values())
    assert any(show["application_id"] for show, _ in there.values())
    assert _without_origin(here) == _without_origin(there)
    imported = counts(fresh)
    assert imported["outbox"] == 0  # history, not work to redo: no mail, no CA call
    assert imported["keys"] == 0
    assert imported["certificates"] == len(population.installed)

    again = run_cli(fresh, "import", str(exported))
    assert again.returncode == 2
    assert "already exists" in again.stderr and again.stderr.count("\n") == 1
    assert counts(fresh) == imported


def test_export_carries_no_private_key_and_no_token(population, exported):
    text = exported.read_text()
    assert counts(population.config)["keys"] >= len(population.installed)  # there were keys to leak
    assert "PRIVATE KEY" not in text
    tokens = population.approval_tokens()
    assert tokens, "the expired order's approval mail carries a token"
    for token in tokens:
        assert token not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["format"] == "certflow-orders" and lines[0]["schema"] == 1
    assert lines[0]["orders"] == len(lines) - 1 == len(population.all)
    by_id = {o["id"]: o for o in lines[1:]}
    for order_id in population.installed:
        assert by_id[order_id]["certificate"]["cert_pem"].startswith("-----BEGIN CERTIFICATE-----")
        assert by_id[order_id]["csr"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
        assert [e["trigger"] for e in by_id[order_id]["events"]] == \
            ["place", "pay", "submit", "ca_accept", "issue", "install"]
    assert all("challenges" not in o["data"] for o in by_id.values())


def _rewrite(src: Path, dst: Path, line_no: int, change) -> Path:
    lines = src.read_text().splitlines()
    lines[line_no - 1] = change(lines[line_no - 1])
    dst.write_text("\n".join(lines) + "\n")
    return dst


def test_a_corrupt_line_imports_nothing(exported, fresh, tmp_path):
    before = counts(fresh)
    broken = _rewrite(exported, tmp_path / "broken.jsonl", 4, lambda line: line[: len(line) // 2])
    proc = run_cli(fresh, "import", str(broken))
    assert proc.returncode == 2
    assert f"{broken}:4: not JSON" in proc.stderr
    assert counts(fresh) == before

    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text("\n".join(exported.read_text().splitlines()[:-2]) + "\n")
    proc = run_cli(fresh, "import", str(truncated))
    assert proc.returncode == 2 and "truncated" in proc.stderr
    assert counts(fresh) == before

    proc = run_cli(fresh, "import", str(tmp_path / "missing.jsonl"))
    assert proc.returncode == 2 and "missing.jsonl" in proc.stderr


def test_a_history_that_does_not_reproduce_its_order_imports_nothing(population, exported, fresh,
                                                                     tmp_path):
    before = counts(fresh)
    lines = exported.read_text().splitlines()
    n, victim = next((n, json.loads(line)) for n, line in enumerate(lines, start=1)
                     if n > 1 and json.loads(line)["id"] == population.installed[0])

    def claim_issued(line: str) -> str:
        obj = json.loads(line)
        obj["state"] = "issued"
        return json.dumps(obj)

    lying = _rewrite(exported, tmp_path / "lying.jsonl", n, claim_issued)
    proc = run_cli(fresh, "import", str(lying))
    assert proc.returncode == 2
    assert f"{lying}:{n}: order {victim['id']}: history does not reproduce the order: " \
           "state says 'issued', its events give 'installed'" in proc.stderr
    assert counts(fresh) == before

    def skip_payment(line: str) -> str:
        obj = json.loads(line)
        obj["events"] = [e for e in obj["events"] if e["trigger"] != "pay"]
        return json.dumps(obj)

    gap = _rewrite(exported, tmp_path / "gap.jsonl", n, skip_payment)
    proc = run_cli(fresh, "import", str(gap))
    assert proc.returncode == 2
    assert f"order {victim['id']}: history refused: event 2 missing" in proc.stderr
    assert counts(fresh) == before


def test_an_import_that_collides_with_one_order_imports_nothing(population, exported, fresh, tmp_path):
    """The file's last order already exists here: the orders before it are not kept."""
    lines = exported.read_text().splitlines()
    first_only = tmp_path / "first.jsonl"
    header = json.loads(lines[0])
    first_only.write_text("\n".join([json.dumps({**header, "orders": 1}), lines[-1]]) + "\n")
    run_cli(fresh, "import", str(first_only), check=True)
    before = counts(fresh)
    assert before["orders"] == 1

    proc = run_cli(fresh, "import", str(exported))
    assert proc.returncode == 2
    assert json.loads(lines[-1])["id"] in proc.stderr
    assert counts(fresh) == before
