"""The ACME adapter's network and its edge: where acme, josepy, requests and urllib3
exceptions become adapters.base errors, and ACME problems (compound ones with their
subproblems) become one-line reasons."""
from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any, Callable, Iterator

import josepy as jose
import requests
import urllib3
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages

from adapters.base import AdapterError, BadInput, PermanentError, Refused, TransientError
from adapters.common.retry_after import retry_after_seconds
from adapters.common.utc import as_utc

#: Pebble rejects ~5% of good nonces; six attempts make a surfaced badNonce ~1e-8
NONCE_ATTEMPTS = 6
#: problems that mean "the CA will not issue this": the order is rejected
REFUSAL_CODES = frozenset({
    "unauthorized", "rejectedIdentifier", "unsupportedIdentifier", "malformed", "caa",
    "badCSR", "dns", "connection", "incorrectResponse", "tls", "badRevocationReason",
})
#: problems worth trying again later, whatever the request was
TRANSIENT_CODES = frozenset({"badNonce", "rateLimited", "serverInternal"})
#: problems about the account's external binding: the operator must fix [ca] eab_*
EAB_CODES = frozenset({"externalAccountRequired", "unauthorized", "malformed"})


class AcmeNetwork(acme_client.ClientNetwork):
    """ClientNetwork that rides out bad nonces and remembers the last HTTP answer, through
    public API only: a requests response hook on the public ``session``, and repeats of the
    public ``post`` (which itself repeats once on badNonce).

    One instance serves one thread (its calls one after another), so ``last_response`` is
    never shared by threads; each public call starts by forgetting it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_response: requests.Response | None = None
        self.session.hooks["response"].append(self._remember)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last_response = response

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        # a badNonce means the server did nothing with the request: repeating it is safe
        for attempt in range(1, NONCE_ATTEMPTS // 2 + 1):
            try:
                return super().post(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt == NONCE_ATTEMPTS // 2:
                    raise
        raise AssertionError("unreachable")


@contextlib.contextmanager
def acme_edge(net: AcmeNetwork, action: str, clock: Callable[[], datetime],
              eab_kid: str | None, **values: Any) -> Iterator[None]:
    """The ACME adapter's edge: exceptions of acme, josepy, requests and urllib3 raised
    during ``action`` become adapters.base errors carrying the ACME problem's detail."""
    response = lambda: net.last_response  # noqa: E731 - read when it fails
    try:
        yield
    except (AdapterError, BadInput):
        raise
    except messages.Error as exc:
        raise _problem_error(exc, action, response(), clock, eab_kid, values) from exc
    except (requests.exceptions.JSONDecodeError, json.JSONDecodeError) as exc:
        raise PermanentError(f"ACME CA sent an unreadable answer during {action}",
                             action=action, **values) from exc
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
            urllib3.exceptions.ProxySchemeUnsupported) as exc:
        raise TransientError(f"ACME CA unreachable during {action}: "
                             f"{type(exc).__name__}", action=action, **values) from exc
    except acme_errors.NonceError as exc:
        raise TransientError(f"ACME CA sent no usable nonce during {action}",
                             action=action, **values) from exc
    except acme_errors.ClientError as exc:
        raise _http_error(exc, action, response(), clock, values) from exc
    except (acme_errors.Error, jose.errors.Error, KeyError) as exc:
        raise PermanentError(f"ACME CA sent an unexpected answer during {action}: "
                             f"{type(exc).__name__}", action=action, **values) from exc


def _problem_error(problem: messages.Error, action: str, response: requests.Response | None,
                   clock: Callable[[], datetime], eab_kid: str | None, values: dict
                   ) -> AdapterError:
    code = problem.code or str(problem.typ)
    detail = problem_detail(problem)
    status = response.status_code if response is not None else None
    values = dict(values, action=action, problem=str(problem.typ), detail=detail,
                  http_status=status)
    if code in TRANSIENT_CODES or (status is not None and status >= 500):
        return TransientError(f"ACME CA busy during {action} ({code}): {detail}",
                              retry_after=parse_retry_after(response, clock),
                              **values)
    if action == "new-account":
        if eab_kid is None and code == "externalAccountRequired":
            return PermanentError(f"ACME CA requires external account binding: set eab_kid "
                                  f"and eab_hmac_key in [ca] ({detail})", field="eab_kid",
                                  **values)
        if eab_kid is not None and code in EAB_CODES:
            return PermanentError(f"ACME CA refused the account's external binding "
                                  f"(check eab_kid and eab_hmac_key): {detail}",
                                  field="eab_kid", **values)
        return PermanentError(f"ACME CA refused the account: {detail}", **values)
    if action in ("new-order", "finalize") and problem_codes(problem) & REFUSAL_CODES:
        return Refused(f"ACME CA refused the order ({code}): {detail}", **values)
    return PermanentError(f"ACME CA error during {action} ({code}): {detail}", **values)


def problem_refusal(what: str, problem: messages.Error, order_url: str,
                    redact: str | None = None, **values: Any) -> Refused:
    detail = problem_detail(problem)
    if redact:
        detail = detail.replace(redact, "<token>")
    if problem.identifier is not None:
        values.setdefault("domain", problem.identifier.value)
    return Refused(f"{what}: {detail}", detail=detail, problem=str(problem.typ),
                   order_url=order_url, **values)


def _http_error(exc: acme_errors.ClientError, action: str,
                response: requests.Response | None, clock: Callable[[], datetime],
                values: dict) -> AdapterError:
    """A non-problem error answer (e.g. a proxy's HTML 502)."""
    status = response.status_code if response is not None else None
    if status is None or status >= 500 or status == 429:
        return TransientError(f"ACME CA answered HTTP {status} during {action}",
                              retry_after=parse_retry_after(response, clock), action=action,
                              http_status=status, **values)
    return PermanentError(f"ACME CA answered HTTP {status} during {action}",
                          action=action, http_status=status, **values)


def parse_retry_after(response: requests.Response | None,
                       clock: Callable[[], datetime]) -> float | None:
    """Retry-After in seconds, None when absent or bad."""
    if response is None:
        return None
    return retry_after_seconds(response.headers.get("Retry-After"), as_utc(clock()))


def problem_detail(problem: messages.Error) -> str:
    """The problem's detail, and for a ``compound`` one each subproblem's identifier and
    detail (RFC 8555 §6.7.1): ``… (a.example: CAA forbids; b.example: no A record)``."""
    detail = _one_line(problem.detail or problem.title or problem.description
                       or problem.code or str(problem.typ))
    parts = [f"{sub.identifier.value if sub.identifier is not None else 'order'}: "
             f"{_one_line(sub.detail or sub.title or sub.code or str(sub.typ))}"
             for sub in problem.subproblems or ()]
    return f"{detail} ({'; '.join(parts)})" if parts else detail


def problem_codes(problem: messages.Error) -> set[str]:
    """The problem's code and its subproblems' (a compound problem is what they are)."""
    return {c for c in (problem.code, *(s.code for s in problem.subproblems or ())) if c}


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
