"""The one helper each for what was written several times (issue 15 item 9)."""
from __future__ import annotations

import email.utils
from datetime import datetime, timedelta, timezone

import httpx

from adapters.abilities import approval_tokens
from adapters.common.redact import redact_url
from adapters.common.utc import as_utc, from_text, to_text


def test_rdap_retry_after_reads_http_dates_too():
    from adapters.contacts.rdap import _retry_after
    later = datetime.now(timezone.utc) + timedelta(seconds=600)
    seconds = _retry_after(httpx.Headers({"Retry-After": email.utils.format_datetime(later, usegmt=True)}))
    assert seconds is not None and 590 <= seconds <= 600
    assert _retry_after(httpx.Headers({"Retry-After": "30"})) == 30.0


def test_urls_lose_their_credentials_and_query():
    assert redact_url("https://user:pa55@hooks.example/in?key=k3y#x") == "https://hooks.example/in"
    assert redact_url("http://[::1]:8080/dir") == "http://[::1]:8080/dir"


def test_utc_text_round_trips_at_both_precisions_and_sorts_as_time():
    when = datetime(2027, 3, 16, 9, 30, 5, 123456, tzinfo=timezone(timedelta(hours=9)))
    assert from_text(to_text(when)) == as_utc(when)
    assert to_text(when, "seconds") == "2027-03-16T00:30:05Z"
    assert from_text("2027-03-16T00:30:05Z") == as_utc(when).replace(microsecond=0)
    assert to_text(when) < to_text(when + timedelta(microseconds=1))


def test_approval_tokens_are_found_in_mail_text():
    token = "a" * 20 + "-_" + "B" * 21
    assert approval_tokens(f"click https://ca.example/approve?token={token}\nthanks") == [token]
    assert approval_tokens("no link here") == []
