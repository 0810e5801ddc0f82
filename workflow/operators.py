"""Operators of the web console: names and scrypt password hashes in the store.

``certflow operator add NAME`` reads the password from stdin; the store keeps
``scrypt$N$r$p$salt$hash`` only. An operator's name is the actor of every action
it takes in the console, so it is a plain word that cannot pass for another actor.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from workflow.clock import iso
from workflow.errors import NotFound, ValidationError

#: letters, digits, '.', '_', '-'; not one of the actors certflow itself writes
NAME = re.compile(r"[a-z][a-z0-9._-]{0,31}")
RESERVED = frozenset({"api", "cli", "daemon", "system", "approver", "certflow", "import"})
MIN_PASSWORD, MAX_PASSWORD = 10, 1024
#: scrypt cost: 2^15 × 8 × 128 B = 32 MiB and ~0.1 s per check
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1
_MAXMEM = 64 * 1024 * 1024


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise ValidationError("name", "operator name: 1-32 of a-z 0-9 . _ -, starting with a "
                              "letter", name)
    if name in RESERVED:
        raise ValidationError("name", f"operator name {name!r} is reserved (an actor certflow "
                              "writes itself)", name)
    return name


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     _b64(salt), _b64(digest)))


def password_matches(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        found = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, _unb64(digest))


#: checked against when the name is unknown, so a wrong name costs what a wrong password does
_DUMMY_HASH = None


def verify(engine, name: str, password: str) -> bool:
    """Does ``password`` belong to operator ``name``? (Always spends one scrypt.)"""
    global _DUMMY_HASH
    row = engine.store.operator(name) if NAME.fullmatch(name or "") else None
    if row is None:
        _DUMMY_HASH = _DUMMY_HASH or hash_password(secrets.token_hex(8))
        password_matches(password, _DUMMY_HASH)
        return False
    return password_matches(password, row["password_hash"])


def exists(engine, name: str) -> bool:
    return engine.store.operator(name) is not None


def add(engine, name: str, password: str) -> None:
    check_name(name)
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationError("password", f"password: {MIN_PASSWORD} to {MAX_PASSWORD} "
                              "characters")
    hashed = hash_password(password)
    with engine.store.transaction() as tx:
        if not tx.insert_operator(name, hashed, iso(engine.now())):
            raise ValidationError("name", f"operator {name} exists (remove it first to set a "
                                  "new password)", name)


def remove(engine, name: str) -> None:
    with engine.store.transaction() as tx:
        if not tx.delete_operator(name):
            raise NotFound("operator", name)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM,
                          dklen=32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
