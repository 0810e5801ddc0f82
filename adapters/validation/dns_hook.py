"""``DnsHookValidator``: dns-01 TXT records published by an operator's hook command."""
from __future__ import annotations

import logging
import os
import shlex
import subprocess

from adapters.base import BadInput, Challenge, PermanentError, TransientError
from adapters.common.names import is_host_name

log = logging.getLogger(__name__)


class DnsHookValidator:
    """Publishes dns challenges by running an operator's hook command (no shell).

    The hook is called as ``<command...> add|remove <record name> <value>`` with the same
    values in ``CERTFLOW_DNS_ACTION``, ``CERTFLOW_DNS_NAME`` and ``CERTFLOW_DNS_VALUE``.
    Exit 0 means done; ``remove`` of an absent record should also exit 0.
    """

    def __init__(self, command: str, timeout: float = 30) -> None:
        try:
            self.argv = shlex.split(command or "")
        except ValueError as exc:
            raise BadInput("validation.dns_hook", f"validation.dns_hook cannot be split: {exc}",
                           value=command) from exc
        if not self.argv:
            raise BadInput("validation.dns_hook", "validation.dns_hook is empty", value=command)
        self.timeout = timeout

    def place(self, challenge: Challenge, webroot: str | None) -> None:
        self._run("add", challenge)

    def remove(self, challenge: Challenge, webroot: str | None) -> None:
        self._run("remove", challenge)

    def _run(self, action: str, challenge: Challenge) -> None:
        if challenge.kind != "dns":
            raise PermanentError(f"dns hook cannot publish a {challenge.kind!r} challenge",
                                 kind=challenge.kind)
        name = challenge.name
        if "." not in (name or "") or not is_host_name(name, underscore=True, trailing_dot=True):
            raise BadInput("validation.record", f"dns record name {name!r} is not a domain name",
                           record=name)
        value = challenge.content
        if not value or any(ch in value for ch in "\r\n\x00"):
            raise BadInput("validation.value", "dns record value is empty or spans lines",
                           record=name)
        env = dict(os.environ, CERTFLOW_DNS_ACTION=action, CERTFLOW_DNS_NAME=name,
                   CERTFLOW_DNS_VALUE=value)
        program = self.argv[0]
        try:
            done = subprocess.run([*self.argv, action, name, value], env=env,
                                  capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"dns hook {program} {action} {name} timed out after "
                                 f"{self.timeout:g}s", command=program, action=action,
                                 record=name) from exc
        except OSError as exc:
            # a missing or non-executable hook will not fix itself by retrying
            raise PermanentError(f"dns hook {program} cannot be run: {exc.strerror}",
                                 command=program) from exc
        if done.returncode != 0:
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            last = lines[-1].strip() if lines else ""
            raise TransientError(f"dns hook {program} {action} {name} exited "
                                 f"{done.returncode}" + (f": {last}" if last else ""),
                                 command=program, action=action, record=name,
                                 exit_code=done.returncode, detail=last)
        log.info("dns hook %s %s %s: done", program, action, name)
