"""Syntax of the addresses settings carry: e-mail addresses, ``host:port``, http(s) URLs,
command lines. One checker each, raising BadInput naming the key."""
from __future__ import annotations

import re
import shlex
from urllib.parse import urlsplit

from adapters.base import BadInput
from adapters.common.hostport import parse_host_port
from adapters.common.redact import redact_url

#: an addr-spec without quoting or comments: what certflow sends mail to and from
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def check_syntax(syntax: str, value: str, where: str, secret: bool = False) -> None:
    shown = "<hidden>" if secret else repr(value)
    if syntax == "email":
        if not EMAIL.match(value) or len(value) > 254:
            raise BadInput(where, f"{where} {shown} is not an e-mail address")
    elif syntax == "host:port":
        parse_host_port(value, where)
    elif syntax == "host[:port]":
        parse_host_port(value, where, default_port=0)
    elif syntax == "url":
        check_url(value, where)
    elif syntax == "command":
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise BadInput(where, f"{where} cannot be split into a command: {exc}") from None
        if not argv:
            raise BadInput(where, f"{where} is an empty command")
    else:
        raise ValueError(f"unknown syntax {syntax!r}")


def check_url(value: str, where: str) -> None:
    """An http(s) URL with a host; its password never appears in the message."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise BadInput(where, f"{where} {redact_url(value)!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
        raise BadInput(where, f"{where} {redact_url(value)!r} is not an http(s) URL")
