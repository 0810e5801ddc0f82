"""Parsing "host:port" settings ([ca] connect_to, [contacts] whois, WHOIS referrals)."""
from __future__ import annotations

import ipaddress
from adapters.base import BadInput
from adapters.common.names import is_host_name



def parse_host_port(value: str, field: str, default_port: int | None = None) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` / ``host`` (when ``default_port`` is given).

    Raises BadInput naming ``field`` when the value is not a plain host and port.
    """
    text = (value or "").strip()
    host, port_text = text, None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise BadInput(field, f"{field} {value!r} is not host:port", value=value)
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise BadInput(field, f"{field} {value!r} is not host:port", value=value)
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if port_text is None:
        if default_port is None:
            raise BadInput(field, f"{field} {value!r} needs a port (host:port)", value=value)
        port = default_port
    elif not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise BadInput(field, f"{field} {value!r} has no valid port", value=value)
    else:
        port = int(port_text)
    if not _valid_host(host):
        raise BadInput(field, f"{field} {value!r} has no valid host", value=value)
    return host.rstrip(".") if not _is_ip(host) else host, port


def format_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _valid_host(host: str) -> bool:
    return bool(host) and (_is_ip(host) or is_host_name(host, underscore=True, trailing_dot=True))
