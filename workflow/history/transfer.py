"""``certflow export`` / ``import``: order histories as JSON Lines.

Format (schema 1), one JSON object per line, UTF-8:

    {"format": "certflow-orders", "schema": 1, "exported_at": "...Z", "orders": N}
    {"id": ..., "state": ..., "version": ..., <every other orders column>,
     "sans": [...], "data": {...}, "certificate": {serial, not_before, not_after, sha256,
     names, cert_pem, chain_pem, issued_at} | null,
     "events": [{seq, at, trigger, source, dest, actor, data}, ...]}
    ...

What leaves: order fields, the CSR (public), the certificate and its chain (public),
the full history. What never leaves: private keys (the ``keys`` table), approval
tokens and validation contents (never stored in orders or events), the names of
published validation challenges (an ACME http-01 name carries its token), the outbox.

Import is all or nothing, in one ``BEGIN IMMEDIATE`` transaction: every line is read
with a cap, parsed and checked first like outside input (``workflow.history.import_check``:
types and ranges, intake's field checks, the id format; a bad line is refused naming
``FILE:LINE`` and the key), each order's events are folded through the engine's lifecycle
and must reproduce the exported state, version and deadline, and an order id already
present refuses the whole file — so importing the same file twice changes nothing the
second time.

Imported orders are history that nothing acts on here, whatever their state: no outbox
effects (no mail, no CA call, no installation), no private key, no live deadline (the
exported one is kept as ``data.imported.deadline_at``, which ``replay --verify`` reads),
no renewal, and the engine refuses every trigger on them. The exporting workspace's CA
application id and challenges are kept under ``data.imported`` only, so they never name
an application of this workspace's CA.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from workflow.clock import iso
from workflow.errors import ValidationError
from workflow.history import import_check as check
from workflow.history.progress import progress
from workflow.history.replay import Folder
from workflow.store.schema import ORDER_COLUMNS

FORMAT = "certflow-orders"
SCHEMA = 1
#: ``orders.data`` keys that stay home: challenge names can carry ACME tokens
_PRIVATE_ORDER_DATA = frozenset({"challenges"})
#: orders columns stored as JSON text, exported as JSON values
_JSON_COLUMNS = ("sans", "data")
_EVENT_FIELDS = ("seq", "at", "trigger", "source", "dest", "actor", "data")
_CERT_FIELDS = ("serial", "not_before", "not_after", "sha256", "names", "cert_pem", "chain_pem",
                "issued_at")
#: a progress bar on a terminal from this many orders on


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# --- export ---------------------------------------------------------------------------

def export_file(engine, path: str) -> int:
    """Write every order with its history to ``path`` (JSON Lines, schema 1); return the
    number of orders. One read snapshot; the file appears complete or not at all."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with engine.store.snapshot() as store:  # orders and events from the same moment
            total = store.order_count()
            with open(tmp, "w", encoding="utf-8") as fh, progress("exporting", total) as advance:
                fh.write(_dump({"format": FORMAT, "schema": SCHEMA, "exported_at": iso(engine.now()),
                                "orders": total}) + "\n")
                for obj in _export_objects(*store.export_rows()):
                    fh.write(_dump(obj) + "\n")
                    advance()
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ValidationError("file", f"{path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return total


def _export_objects(orders: Iterator, certs: Iterator, events: Iterator) -> Iterator[dict]:
    """Orders with certificate and events, merged from three ordered scans (no query per order)."""
    cert = next(certs, None)
    event = next(events, None)
    for row in orders:
        obj = dict(row)
        for col in _JSON_COLUMNS:
            obj[col] = json.loads(obj[col]) if obj[col] else ([] if col == "sans" else {})
        for key in _PRIVATE_ORDER_DATA:
            obj["data"].pop(key, None)
        order_id = obj["id"]
        while cert is not None and cert["order_id"] < order_id:
            cert = next(certs, None)  # a certificate without an order: not ours to carry
        obj["certificate"] = None
        if cert is not None and cert["order_id"] == order_id:
            obj["certificate"] = {k: cert[k] for k in _CERT_FIELDS}
            obj["certificate"]["names"] = json.loads(cert["names"] or "[]")
            cert = next(certs, None)
        history = []
        while event is not None and event["order_id"] <= order_id:
            if event["order_id"] == order_id:
                e = {k: event[k] for k in _EVENT_FIELDS}
                e["data"] = json.loads(e["data"]) if e["data"] else None
                history.append(e)
            event = next(events, None)
        obj["events"] = history
        yield obj


# --- import ---------------------------------------------------------------------------

#: one order line (an order with its certificate, chain and history is tens of KiB)
LINE_CAP = 8 << 20
#: a whole export file
FILE_CAP = 1 << 30
#: orders.data keys that name things of the exporting workspace (its CA's application,
#: its published challenges): kept under data.imported for the record, acted on by nothing
_FOREIGN_ORDER_DATA = ("application_id", "challenges")


def import_file(engine, path: str) -> int:
    """Read ``path`` (written by :func:`export_file`) into this workspace; return the
    number of orders. All or nothing: ValidationError (CLI exit 2) naming the line or
    the order for a corrupt line, a value of the wrong type or range, fields intake
    refuses, a history the lifecycle refuses or that does not reproduce its order row,
    or an order id already here. Imported orders are history that nothing acts on:
    no outbox effects, no live deadline, and the engine refuses triggers on them."""
    from adapters.base import BadInput
    from adapters.common.files import read_lines_capped
    columns = set(ORDER_COLUMNS)
    folder = Folder(engine.lifecycle)
    contracts = engine.contracts
    default_validation = engine.config["validation"]["default"]
    parsed: list[tuple[int, dict, str | None]] = []
    seen: dict[str, int] = {}
    try:
        lines = read_lines_capped(path, LINE_CAP, FILE_CAP, "file")
        n, line = next(lines, (1, ""))
        try:
            header = check.parse_line(line) if line.strip() else None
            if header is None:
                raise ValidationError("line", f"{path}:1: empty file, expected a {FORMAT} header")
            check.check_header(header, FORMAT, SCHEMA)
        except check.Refused as exc:
            raise ValidationError("line", f"{path}:1: {exc}") from None
        announced = header.get("orders")
        with progress("checking", announced or 0) as advance:
            for n, line in lines:
                try:
                    obj = check.parse_line(line)
                    deadline = check.check_order(obj, columns, folder, contracts,
                                                 default_validation)
                except check.Refused as exc:
                    raise ValidationError("line", f"{path}:{n}: {exc}") from None
                if obj["id"] in seen:
                    raise ValidationError("id", f"{path}:{n}: order {obj['id']} already on line "
                                          f"{seen[obj['id']]}", obj["id"])
                seen[obj["id"]] = n
                parsed.append((n, obj, deadline))
                advance()
    except BadInput as exc:
        raise ValidationError("file", exc.message) from None
    if announced is not None and announced != len(parsed):
        raise ValidationError("line", f"{path}: the header announces {announced} orders but "
                              f"the file holds {len(parsed)} (truncated?)")
    stamp = iso(engine.now())
    with engine.store.transaction() as tx, progress("importing", len(parsed)) as advance:
        for n, obj, deadline in parsed:
            _insert(tx, path, n, _as_history(obj, deadline, stamp))
            advance()
    return len(parsed)


def _as_history(obj: dict, deadline: str | None, stamp: str) -> dict:
    """The row to store for an imported order: marked ``data.imported``, without the
    exporting workspace's application id and challenges, and without a live deadline,
    so that neither the daemon nor a command acts on it here."""
    obj = dict(obj)
    data = dict(obj.get("data") or {})
    previous = data.get("imported") if isinstance(data.get("imported"), dict) else {}
    mark = {**previous, "at": previous.get("at", stamp)}
    for key in _FOREIGN_ORDER_DATA:
        if key in data:
            mark[key] = data.pop(key)
    if deadline is not None:
        mark["deadline_at"] = deadline
    if obj.get("held_deadline"):
        mark["held_deadline"] = obj["held_deadline"]
    data["imported"] = mark
    obj["data"] = data
    obj["deadline_at"] = obj["deadline_trigger"] = obj["held_deadline"] = None
    return obj


def _insert(tx, path: str, n: int, obj: dict) -> None:
    order_id = obj["id"]
    if tx.order_exists(order_id):
        raise ValidationError("id", f"{path}:{n}: order {order_id} already exists here; "
                              "nothing imported", order_id)
    row = {k: v for k, v in obj.items() if k not in ("certificate", "events")}
    row.setdefault("entered_seq", row["version"])
    for col in _JSON_COLUMNS:
        if col in row:
            row[col] = _dump(row[col] if row[col] is not None else ([] if col == "sans" else {}))
    events = [{"order_id": order_id, **{k: e.get(k) for k in _EVENT_FIELDS},
               "data": _dump(e["data"]) if e.get("data") else None} for e in obj["events"]]
    cert = obj.get("certificate")
    if cert:
        cert = {"order_id": order_id, **{k: _dump(cert.get(k) or []) if k == "names"
                                         else cert.get(k) for k in _CERT_FIELDS}}
    conflict = tx.import_order(row, events, cert)
    if conflict:  # e.g. a renewal_of that already has a renewal here
        raise ValidationError("line", f"{path}:{n}: order {order_id} conflicts with this "
                              f"workspace ({conflict}); nothing imported", order_id)
