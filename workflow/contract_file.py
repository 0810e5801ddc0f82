"""``certflow contract import FILE``: contracts from a provisioning backend's export.

Two formats, told apart by the first non-blank character:

- JSON Lines: one object per line, ``{"id": "C-1", "plan": "basic", "servers": [...]}``;
- CSV with a header row naming ``id`` and any of the contract fields; an empty cell
  leaves the field as it is (a new contract takes the default), ``servers`` holds
  directories separated by ``;``, booleans are ``true``/``false`` (also yes/no, 1/0).

All or nothing: every line is checked as ``contract put`` checks it, in one transaction;
the first refusal names ``FILE:LINE`` and the field, and nothing is written.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from adapters.base import BadInput
from adapters.common.files import read_capped
from workflow.contracts import FIELDS
from workflow.errors import ValidationError

#: 100,000 contracts of a few hundred bytes each, with room to spare
FILE_CAP = 256 << 20
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_BOOLEAN_FIELDS = ("fixed_ip", "plesk")


def read_items(path: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(FILE:LINE, id, fields)`` of every contract in the file; ValidationError naming
    the line for one that cannot be read (the book checks the values)."""
    try:
        raw = read_capped(path, FILE_CAP, "file")
    except BadInput as exc:
        raise ValidationError("file", exc.message, path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("file", f"{path} is not UTF-8 text", path) from None
    items = _jsonl(path, text) if text.lstrip().startswith("{") else _csv(path, text)
    seen: dict[str, str] = {}
    for where, cid, _ in items:
        if cid in seen:
            raise ValidationError("id", f"{where}: contract {cid} already on {seen[cid]}", cid)
        seen[cid] = where
    if not items:
        raise ValidationError("file", f"{path}: no contracts in the file", path)
    return items


def _jsonl(path: str, text: str) -> list[tuple[str, str, dict[str, Any]]]:
    items = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise ValidationError("line", f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise ValidationError("line", f"{where}: expected a JSON object")
        items.append((where, _id(obj.pop("id", None), where), obj))
    return items


def _csv(path: str, text: str) -> list[tuple[str, str, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        raise ValidationError("line", f"{path}:1: {exc}") from None
    for column in header:
        if column != "id" and column not in FIELDS:
            raise ValidationError(column or "header", f"{path}:1: unknown column {column!r} "
                                  f"(columns: id, {', '.join(FIELDS)})", column)
    if "id" not in header:
        raise ValidationError("id", f"{path}:1: the header names no id column")
    items = []
    try:
        for row in reader:
            n = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{n}"
            if len(row) != len(header):
                raise ValidationError("line", f"{where}: {len(row)} cells, the header has "
                                      f"{len(header)}")
            cells = dict(zip(header, (c.strip() for c in row)))
            cid = _id(cells.pop("id"), where)
            items.append((where, cid, {k: _cell(k, v, where) for k, v in cells.items() if v}))
    except csv.Error as exc:
        raise ValidationError("line", f"{path}:{reader.line_num}: {exc}") from None
    return items


def _id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("id", f"{where}: id is required")
    return value.strip()


def _cell(field: str, value: str, where: str) -> Any:
    if field in _BOOLEAN_FIELDS:
        if value.lower() not in _BOOLEANS:
            raise ValidationError(field, f"{where}: {field} {value!r} is not true or false", value)
        return _BOOLEANS[value.lower()]
    if field == "servers":
        return [s.strip() for s in value.split(";") if s.strip()]
    return value
