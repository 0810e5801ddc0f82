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

Import is all or nothing, in one ``BEGIN IMMEDIATE`` transaction: every line is parsed
and checked first (a bad line is refused naming ``FILE:LINE``), each order's events are
folded through the engine's lifecycle and must reproduce the exported state, version
and deadline, and an order id already present refuses the whole file — so importing the
same file twice changes nothing the second time. Imported orders are history: they get
no outbox effects (no mail, no CA call, no installation), and no private key, so an
imported order still in flight cannot be installed here without a new key. Deadlines
do come along: the daemon here fires an imported approval deadline like its own.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from workflow.clock import iso
from workflow.errors import ValidationError
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

class _Refused(Exception):
    """A problem with one line; turned into ValidationError("line", "FILE:N: ...")."""


def import_file(engine, path: str) -> int:
    """Read ``path`` (written by :func:`export_file`) into this workspace; return the
    number of orders. All or nothing: ValidationError (CLI exit 2) naming the line or
    the order for a corrupt line, a history the lifecycle refuses or that does not
    reproduce its order row, or an order id already here. Imported orders get no outbox
    effects: they are history, not work to redo."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError("file", f"{path}: cannot read: {exc}") from None
    columns = set(ORDER_COLUMNS)
    folder = Folder(engine.lifecycle)
    lines = text.splitlines()
    if not lines:
        raise ValidationError("line", f"{path}:1: empty file, expected a {FORMAT} header")
    parsed: list[tuple[int, dict]] = []
    seen: dict[str, int] = {}
    with progress("checking", len(lines) - 1) as advance:
        for n, line in enumerate(lines, start=1):
            try:
                obj = _parse(line)
                if n == 1:
                    _check_header(obj)
                    header = obj
                    continue
                _check_order(obj, columns, folder)
            except _Refused as exc:
                raise ValidationError("line", f"{path}:{n}: {exc}") from None
            if obj["id"] in seen:
                raise ValidationError("id", f"{path}:{n}: order {obj['id']} already on line "
                                      f"{seen[obj['id']]}", obj["id"])
            seen[obj["id"]] = n
            parsed.append((n, obj))
            advance()
    if "orders" in header and header["orders"] != len(parsed):
        raise ValidationError("line", f"{path}: the header announces {header['orders']} orders but "
                              f"the file holds {len(parsed)} (truncated?)")
    with engine.store.transaction() as tx, progress("importing", len(parsed)) as advance:
        for n, obj in parsed:
            _insert(tx, path, n, obj)
            advance()
    return len(parsed)


def _parse(line: str) -> dict:
    if not line.strip():
        raise _Refused("empty line")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _Refused(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise _Refused(f"expected a JSON object, found {type(obj).__name__}")
    return obj


def _check_header(obj: dict) -> None:
    if obj.get("format") != FORMAT:
        raise _Refused(f"not a certflow export (header format {obj.get('format')!r}, "
                       f"expected {FORMAT!r})")
    if obj.get("schema") != SCHEMA:
        raise _Refused(f"export schema {obj.get('schema')!r} is not supported (this certflow "
                       f"reads schema {SCHEMA})")
    if "orders" in obj and (not isinstance(obj["orders"], int) or obj["orders"] < 0):
        raise _Refused(f"header orders {obj['orders']!r} is not a count")


def _need(obj: dict, key: str, kind: type | tuple, where: str, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise _Refused(f"{where}{key} is {value!r}, expected "
                       f"{getattr(kind, '__name__', 'a value of another type')}")
    return value


def _check_order(obj: dict, columns: set[str], folder: Folder) -> None:
    order_id = _need(obj, "id", str, "order ")
    where = f"order {order_id}: "
    unknown = sorted(set(obj) - columns - {"certificate", "events"})
    if unknown:
        raise _Refused(f"{where}unknown field {unknown[0]!r}")
    for key in ("state", "common_name", "plan", "contract"):
        _need(obj, key, str, where)
    _need(obj, "version", int, where)
    _need(obj, "deadline_at", str, where, optional=True)
    _need(obj, "sans", list, where, optional=True)
    _need(obj, "data", dict, where, optional=True)
    cert = _need(obj, "certificate", dict, where, optional=True)
    if cert is not None:
        for key in ("serial", "cert_pem"):
            _need(cert, key, str, f"{where}certificate ")
        if "PRIVATE KEY" in cert["cert_pem"] + (cert.get("chain_pem") or ""):
            raise _Refused(f"{where}certificate carries a private key; refusing it")
    events = _need(obj, "events", list, where)
    if not events:
        raise _Refused(f"{where}no events: an order's history starts with place")
    steps = []
    for i, e in enumerate(events, start=1):
        if not isinstance(e, dict):
            raise _Refused(f"{where}event #{i} is not an object")
        w = f"{where}event #{i} "
        steps.append((_need(e, "seq", int, w), _need(e, "at", str, w), _need(e, "trigger", str, w),
                      _need(e, "source", str, w), _need(e, "dest", str, w)))
        _need(e, "data", dict, w, optional=True)
    folded = folder.fold(steps)
    if folded.error:
        raise _Refused(f"{where}history refused: {folded.error}")
    got = (folded.state, folded.version, folded.deadline_at)
    want = (obj["state"], obj["version"], obj.get("deadline_at"))
    if got != want:
        diffs = [f"{name} says {w!r}, its events give {g!r}"
                 for name, w, g in zip(("state", "version", "deadline_at"), want, got) if w != g]
        raise _Refused(f"{where}history does not reproduce the order: {'; '.join(diffs)}")
    deadline = folder.lifecycle.state(folded.state).deadline
    trigger = deadline[1] if deadline and folded.deadline_at else None
    if obj.get("deadline_trigger", trigger) != trigger:
        raise _Refused(f"{where}deadline_trigger {obj['deadline_trigger']!r} is not {folded.state}'s "
                       f"({trigger!r})")


def _insert(tx, path: str, n: int, obj: dict) -> None:
    order_id = obj["id"]
    if tx.order_exists(order_id):
        raise ValidationError("id", f"{path}:{n}: order {order_id} already exists here; "
                              "nothing imported", order_id)
    row = {k: v for k, v in obj.items() if k not in ("certificate", "events")}
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
