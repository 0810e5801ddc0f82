"""The checks ``certflow import`` makes on each line before anything is written.

An export file is outside input like an order form: every value is checked for its
type and range (a column holds text or a 64-bit integer, never a list, a dict or 2^70),
the order's fields pass intake's checks (``workflow.intake.validate_order``) and must be
stored the way intake stores them, ids have certflow's id format, timestamps are the
canonical ``YYYY-MM-DDTHH:MM:SSZ``, and the history must fold to the exported state,
version and deadline. A problem raises :class:`Refused` naming the key; the caller adds
``FILE:LINE``.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

from workflow.clock import iso, parse_iso
from workflow.errors import ValidationError
from workflow.history.replay import Folder
from workflow.intake import validate_order

#: certflow's order ids: the UTC date, "-", 8 to 32 lower-case hex digits of randomness
ORDER_ID = re.compile(r"[0-9]{8}-[0-9a-f]{8,32}")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_HEX = re.compile(r"[0-9a-fA-F:]{1,128}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,63}")
INT64_MAX = (1 << 63) - 1
#: JSON nesting deeper than this is not something certflow writes
MAX_DEPTH = 16
#: free text (a reason, an actor) and PEM blocks certflow writes stay well under these
MAX_TEXT = 64 * 1024
MAX_PEM = 64 * 1024
#: timestamps certflow writes fall in these years
YEARS = (1970, 9000)

#: order fields intake checks, and how the row must hold them
_INTAKE_FIELDS = ("common_name", "organization", "unit", "locality", "prefecture", "country",
                  "plan", "contract", "email", "validation", "approver", "language", "renewal_of")
_CERT_KEYS = ("serial", "not_before", "not_after", "sha256", "names", "cert_pem", "chain_pem",
              "issued_at")
_EVENT_KEYS = ("seq", "at", "trigger", "source", "dest", "actor", "data")


class Refused(Exception):
    """A problem with one line; turned into ValidationError("line", "FILE:N: ...")."""


def _no_constant(name: str):
    raise Refused(f"not JSON ({name} is not a number JSON allows)")


def parse_line(line: str) -> dict:
    """One JSON object; Refused for anything else, a nesting deeper than MAX_DEPTH,
    a non-finite number or an integer outside 64 bits anywhere in it."""
    if not line.strip():
        raise Refused("empty line")
    try:
        obj = json.loads(line, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise Refused(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise Refused(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise Refused(f"not JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise Refused(f"expected a JSON object, found {type(obj).__name__}")
    _check_values(obj)
    return obj


def _check_values(root: Any) -> None:
    """Walk every value once (iteratively: no recursion for a hostile depth)."""
    stack = [(root, 0, "")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_DEPTH:
            raise Refused(f"JSON nested deeper than {MAX_DEPTH} levels (at {where or 'top'})")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key, where or "a key")
                stack.append((item, depth + 1, key))
        elif isinstance(value, list):
            stack.extend((item, depth + 1, where) for item in value)
        elif isinstance(value, str):
            _check_text(value, where or "a value")
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if not -INT64_MAX - 1 <= value <= INT64_MAX:
                raise Refused(f"{where or 'a value'}: integer {_short(value)} is outside 64 bits")
        elif isinstance(value, float) and not math.isfinite(value):
            raise Refused(f"{where or 'a value'}: number {value} is not finite")


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(f"{where}: text holds an unpaired surrogate (not UTF-8)") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_header(obj: dict, fmt: str, schema: int) -> None:
    if obj.get("format") != fmt:
        raise Refused(f"not a certflow export (header format {_short(obj.get('format'))}, "
                      f"expected {fmt!r})")
    if type(obj.get("schema")) is not int or obj["schema"] != schema:
        raise Refused(f"export schema {_short(obj.get('schema'))} is not supported (this certflow "
                      f"reads schema {schema})")
    if "orders" in obj and (type(obj["orders"]) is not int or obj["orders"] < 0):
        raise Refused(f"header orders {_short(obj['orders'])} is not a count")


def _need(obj: dict, key: str, kind: type | tuple, where: str, optional: bool = False) -> Any:
    value = obj.get(key)
    if value is None and optional:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise Refused(f"{where}{key} is {_short(value)}, expected {names}"
                      + (" or null" if optional else ""))
    return value


def _count(obj: dict, key: str, where: str, optional: bool = False) -> int | None:
    value = _need(obj, key, int, where, optional)
    if value is not None and value < 0:
        raise Refused(f"{where}{key} is {value}, expected a count (0 or more)")
    return value


def _timestamp(obj: dict, key: str, where: str, optional: bool = False) -> str | None:
    value = _need(obj, key, str, where, optional)
    if value is None:
        return None
    try:
        ok = bool(_TIMESTAMP.fullmatch(value)) and iso(parse_iso(value)) == value
    except (ValueError, OverflowError):
        ok = False
    if not ok:
        raise Refused(f"{where}{key} {_short(value)} is not a UTC time YYYY-MM-DDTHH:MM:SSZ")
    if not YEARS[0] <= int(value[:4]) <= YEARS[1]:  # a deadline added must still be a date
        raise Refused(f"{where}{key} {value} is not between the years {YEARS[0]} and {YEARS[1]}")
    return value


def _text(obj: dict, key: str, where: str, limit: int = MAX_TEXT, optional: bool = True) -> str | None:
    value = _need(obj, key, str, where, optional)
    if value is not None and len(value) > limit:
        raise Refused(f"{where}{key} is longer than {limit} characters")
    return value


def _pem(obj: dict, key: str, where: str, label: str, optional: bool) -> str | None:
    value = _text(obj, key, where, MAX_PEM, optional)
    if value is None or (optional and value == ""):
        return value
    if "PRIVATE KEY" in value:
        raise Refused(f"{where}{key} carries a private key; refusing it")
    if not value.lstrip().startswith(f"-----BEGIN {label}-----"):
        raise Refused(f"{where}{key} is not a PEM {label.lower()}")
    return value


def _state_name(obj: dict, key: str, where: str, states: frozenset, optional: bool = False):
    value = _need(obj, key, str, where, optional)
    if value is not None and value not in states:
        raise Refused(f"{where}{key} {_short(value)} is not a state of this lifecycle")
    return value


def check_id(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not ORDER_ID.fullmatch(value):
        raise Refused(f"{where}{key} {_short(value)} is not a certflow order id "
                      "(YYYYMMDD-<hex>)")
    return value


def check_order(obj: dict, columns: set[str], folder: Folder, contracts: dict,
                default_validation: str) -> str | None:
    """Check one order line; return the deadline its history gives (None without one)."""
    order_id = check_id(obj.get("id"), "id", "order ")
    where = f"order {order_id}: "
    unknown = sorted(set(obj) - columns - {"certificate", "events"})
    if unknown:
        raise Refused(f"{where}unknown field {unknown[0]!r}")
    states = frozenset(folder.lifecycle.state_names)
    _check_intake(obj, where, contracts, default_validation)
    _state_name(obj, "state", where, states)
    version = _count(obj, "version", where)
    entered = _count(obj, "entered_seq", where, optional=True)
    if entered is not None and entered > version:
        raise Refused(f"{where}entered_seq {entered} is past version {version}")
    _state_name(obj, "held_from", where, states, optional=True)
    for key in ("deadline_at", "held_deadline", "created_at", "updated_at"):
        _timestamp(obj, key, where, optional=True)
    _need(obj, "deadline_trigger", str, where, optional=True)
    _text(obj, "reason", where)
    _pem(obj, "csr", where, "CERTIFICATE REQUEST", optional=True)
    data = _need(obj, "data", dict, where, optional=True) or {}
    _check_certificate(obj, where)
    folded = _check_events(obj, where, folder)
    previous = data.get("imported") if isinstance(data.get("imported"), dict) else {}
    # an order imported before (and exported again) holds its deadline in data.imported
    exported_deadline = obj.get("deadline_at") or previous.get("deadline_at")
    got = (folded.state, folded.version, folded.deadline_at)
    want = (obj["state"], version, exported_deadline)
    if got != want:
        diffs = [f"{name} says {w!r}, its events give {g!r}"
                 for name, w, g in zip(("state", "version", "deadline_at"), want, got) if w != g]
        raise Refused(f"{where}history does not reproduce the order: {'; '.join(diffs)}")
    deadline = folder.lifecycle.state(folded.state).deadline
    trigger = deadline.trigger if deadline and folded.deadline_at else None
    if obj.get("deadline_at") and obj.get("deadline_trigger", trigger) != trigger:
        raise Refused(f"{where}deadline_trigger {_short(obj['deadline_trigger'])} is not "
                      f"{folded.state}'s ({trigger!r})")
    return folded.deadline_at


def _check_intake(obj: dict, where: str, contracts: dict, default_validation: str) -> None:
    """The order's fields pass intake's checks and are stored as intake stores them."""
    fields = {}
    for key in _INTAKE_FIELDS:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise Refused(f"{where}{key} is {_short(value)}, expected str or null")
        if value is not None:
            fields[key] = value
    try:
        of = validate_order(fields, contracts, default_validation, allow_gaps=True)
    except ValidationError as exc:
        raise Refused(f"{where}{exc.field}: {exc.message}") from None
    if of.renewal_of is not None:
        check_id(of.renewal_of, "renewal_of", where)
    sans = _need(obj, "sans", list, where, optional=True) or []
    expected = {**{k: getattr(of, k) for k in _INTAKE_FIELDS if k != "approver"},
                "sans": list(of.sans)}
    stored = {**{k: obj.get(k) for k in _INTAKE_FIELDS if k != "approver"}, "sans": sans}
    for key, value in expected.items():
        if stored[key] != value:
            raise Refused(f"{where}{key} {_short(stored[key])} is not what intake stores "
                          f"({_short(value)})")


def _check_certificate(obj: dict, where: str) -> None:
    cert = _need(obj, "certificate", dict, where, optional=True)
    if cert is None:
        return
    w = f"{where}certificate "
    unknown = sorted(set(cert) - set(_CERT_KEYS))
    if unknown:
        raise Refused(f"{w}has unknown field {unknown[0]!r}")
    serial = _need(cert, "serial", str, w)
    if not _HEX.fullmatch(serial):
        raise Refused(f"{w}serial {_short(serial)} is not a hex number")
    for key in ("not_before", "not_after"):
        _timestamp(cert, key, w)
    _timestamp(cert, "issued_at", w, optional=True)
    sha = _need(cert, "sha256", str, w, optional=True)
    if sha is not None and not _SHA256.fullmatch(sha):
        raise Refused(f"{w}sha256 {_short(sha)} is not 64 lower-case hex digits")
    names = _need(cert, "names", list, w, optional=True) or []
    if not all(isinstance(n, str) and len(n) <= 253 for n in names):
        raise Refused(f"{w}names must be host names (text)")
    _pem(cert, "cert_pem", w, "CERTIFICATE", optional=False)
    _pem(cert, "chain_pem", w, "CERTIFICATE", optional=True)


def _check_events(obj: dict, where: str, folder: Folder):
    events = _need(obj, "events", list, where)
    if not events:
        raise Refused(f"{where}no events: an order's history starts with place")
    states = frozenset(folder.lifecycle.state_names) | {folder.lifecycle.initial}
    steps = []
    for i, e in enumerate(events, start=1):
        if not isinstance(e, dict):
            raise Refused(f"{where}event #{i} is not an object")
        w = f"{where}event #{i} "
        unknown = sorted(set(e) - set(_EVENT_KEYS))
        if unknown:
            raise Refused(f"{w}has unknown field {unknown[0]!r}")
        seq = _count(e, "seq", w)
        at = _timestamp(e, "at", w)
        trigger = _need(e, "trigger", str, w)
        if not _NAME.fullmatch(trigger):
            raise Refused(f"{w}trigger {_short(trigger)} is not a trigger name")
        source = _state_name(e, "source", w, states)
        dest = _state_name(e, "dest", w, states)
        _text(e, "actor", w, limit=256)
        _need(e, "data", dict, w, optional=True)
        steps.append((seq, at, trigger, source, dest))
    try:
        folded = folder.fold(steps)
    except (ValueError, OverflowError) as exc:  # a deadline past what a date can hold
        raise Refused(f"{where}history refused: {exc}") from None
    if folded.error:
        raise Refused(f"{where}history refused: {folded.error}")
    return folded
