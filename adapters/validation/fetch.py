"""The checking side of file validation: an HTTP GET of the validation file as a CA makes
it, optionally sent to a fixed address with the domain as Host (curl's ``--connect-to``)."""
from __future__ import annotations

import logging
import os

import httpx
import idna

from adapters.base import BadInput
from adapters.common.hostport import format_host_port, parse_host_port
from adapters.validation.webroot import challenge_relpath

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024


def fetch_validation_file(domain: str, name: str, connect_to: str | None, timeout: float
                          ) -> tuple[str | None, str]:
    """``(body, "")`` when ``http://<domain>/<name>`` answers 200, else ``(None, why)``.

    Redirects are not followed and proxies from the environment are not used. Network
    failures, timeouts, non-200 answers and bodies over MAX_BODY are all a ``why`` (the
    CA simply tries again); a path outside the challenge directories is BadInput.
    """
    relpath = challenge_relpath(name)
    try:
        host = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise BadInput("common_name", f"{domain!r} is not a domain name", domain=domain) from exc
    authority = format_host_port(*parse_host_port(connect_to, "ca.connect_to")) if connect_to \
        else host
    where = f"http://{host}/{relpath}"
    try:
        # trust_env=False: a proxy from the environment must not stand in for the site
        with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            with client.stream("GET", f"http://{authority}/{relpath}",
                               headers={"Host": host}) as response:
                if response.status_code != 200:
                    return None, f"{where} answered HTTP {response.status_code}"
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        return None, f"{where} answered more than {MAX_BODY} bytes"
    except httpx.HTTPError as exc:
        log.info("validation fetch %s (via %s) failed: %s", where, authority, exc)
        return None, f"cannot fetch {where}: {type(exc).__name__} {exc}".strip()
    return body.decode("utf-8", "replace"), ""


def validation_file_problem(domain: str, name: str, expected: str, webroot: str | None,
                            connect_to: str | None, timeout: float) -> str | None:
    """Why the validation file does not (yet) prove control of ``domain``; None when it does.

    Without ``connect_to`` and with a ``webroot`` the file is read there (never outside
    it); otherwise it is fetched over HTTP like a CA would.
    """
    where = f"http://{domain}/{name}"
    if connect_to is None and webroot:
        root = os.path.realpath(webroot)
        path = os.path.realpath(os.path.join(root, name))
        if os.path.commonpath([root, path]) != root:
            return f"validation file path escapes the webroot {webroot}"
        try:
            with open(path, "rb") as handle:
                text = handle.read(MAX_BODY).decode("utf-8", "replace")
        except OSError as exc:
            return f"validation file {path} not readable: {exc.strerror}"
        where = path
    else:
        text, problem = fetch_validation_file(domain, name, connect_to, timeout)
        if text is None:
            return problem
    if text.rstrip() != expected:
        return f"{where} does not hold the expected validation value"
    return None
