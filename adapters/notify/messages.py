"""Render a :class:`adapters.base.Notice` into a well-formed RFC 5322 message.

Templates are Jinja2 text files, one per message and language::

    adapters/notify/templates/<language>/<template>.txt.j2

The first rendered line is ``Subject: ...``, the second is blank and the rest is the
body. ``ja`` is the default language; a language without the template falls back to
``ja``. A provider overrides wording with a directory (``[notify] template_dir``) laid
out the same way: a file there with the same relative path wins, the rest comes from
the package. Shared pieces (``_common.j2`` macros, ``_footer.txt.j2`` signature) are
looked up the same way, so a provider can replace just the signature.

Every template receives the engine's context (missing known keys are ``None``) plus
``language`` and ``attachments`` (the attached file names); undefined names are errors (``StrictUndefined``). Filters: ``jst``
("2026-12-05 18:30 JST") and ``date_jst`` ("2026年12月05日" / "2026-12-05").
"""
from __future__ import annotations

import email.errors
import email.policy
import email.utils
import hashlib
import re
from datetime import date, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Callable

import idna
import jinja2

from adapters.base import BadInput, Notice, PermanentError

DEFAULT_LANGUAGE = "ja"
#: a fixed offset: Japan has no daylight saving time, so no tz database is needed
JST = timezone(timedelta(hours=9), "JST")
PACKAGE_TEMPLATES = Path(__file__).with_name("templates")

TEMPLATES = (
    "order_received", "work_started", "csr_request", "approval_pending",
    "approval_request", "approval_reminder", "installed", "delivered", "cancelled",
    "rejected", "on_hold", "renewal_payment_due", "renewal_blocked", "revoked",
)
#: the only messages allowed to carry the approver's own link (context["url"])
LINK_TEMPLATES = frozenset({"approval_request", "approval_reminder"})
CONTEXT_KEYS = (
    "order_id", "common_name", "names", "plan", "contract", "validation", "approver",
    "deadline_at", "reason", "certificate", "url", "renewal_of", "expires_at",
)
#: context a message cannot do without (default: the common name)
REQUIRED = {
    "approval_request": ("common_name", "url"),
}
#: context keys never handed to a template, whatever the caller passes
SECRET_KEYS = frozenset({
    "token", "password", "secret", "private_key", "private_key_pem", "key_pem", "csr_key",
})

_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})?$")


def _as_datetime(value: object) -> datetime | None:
    """Accept an aware/naive datetime, a date or an ISO 8601 string; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if not isinstance(value, datetime):
        raise TypeError(f"not a date/time: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


def jst(value: object) -> str:
    """Format a moment in Japan time: ``2026-12-05 18:30 JST`` (``""`` for None)."""
    moment = _as_datetime(value)
    return "" if moment is None else moment.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")


@jinja2.pass_context
def date_jst(context: jinja2.runtime.Context, value: object) -> str:
    """The calendar date in Japan: ``2026年12月05日`` (ja) or ``2026-12-05`` (others)."""
    moment = _as_datetime(value)
    if moment is None:
        return ""
    day = moment.astimezone(JST)
    if context.get("language", DEFAULT_LANGUAGE) == "ja":
        return day.strftime("%Y年%m月%d日")
    return day.strftime("%Y-%m-%d")


def message_hash(idempotency_key: str) -> str:
    """The stable 32-hex-digit name of a notice (Message-ID local part, file name)."""
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]


def _ascii_domain(domain: str, field: str) -> str:
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise BadInput(field, f"{field} has an invalid mail domain: {domain!r}") from exc


def parse_addresses(value: str, field: str) -> list[Address]:
    """Validate ``Name <local@domain>, local@domain, ...``; IDN domains become A-labels."""
    if not value or any(ch in value for ch in "\r\n\0"):
        raise BadInput(field, f"{field} is empty or contains a line break")
    out = []
    for name, addr in email.utils.getaddresses([value]):
        local, at, domain = addr.rpartition("@")
        # getaddresses quietly joins "exa mple.jp": refuse anything it had to repair
        if not at or not local or not domain or not local.isascii() or addr not in value:
            raise BadInput(field, f"{field} is not a mail address: {value!r}")
        try:
            out.append(Address(display_name=name, username=local,
                               domain=_ascii_domain(domain, field)))
        except (ValueError, email.errors.HeaderParseError) as exc:
            raise BadInput(field, f"{field} is not a mail address: {value!r}") from exc
    if not out:
        raise BadInput(field, f"{field} is not a mail address: {value!r}")
    return out


class MessageBuilder:
    """Renders notices with Jinja2 and wraps them into ``EmailMessage`` objects.

    ``sender``: the From address (``"Support <ssl@example.jp>"`` or a bare address);
    its domain also names Message-IDs. ``template_dir``: optional override directory.
    ``clock``: returns the aware "now" for the Date header (injected for tests/demo).
    """

    def __init__(self, sender: str, template_dir: str | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        found = parse_addresses(sender, "notify.sender")
        if len(found) != 1:
            raise BadInput("notify.sender", f"sender must be one address: {sender!r}")
        self.sender = sender
        self.sender_address = found[0]
        self.domain = found[0].domain
        self.template_dir = template_dir
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        loaders: list[jinja2.BaseLoader] = []
        if template_dir is not None:
            if not Path(template_dir).is_dir():
                raise BadInput("notify.template_dir",
                               f"template directory does not exist: {template_dir}")
            loaders.append(jinja2.FileSystemLoader(template_dir, encoding="utf-8"))
        loaders.append(jinja2.FileSystemLoader(str(PACKAGE_TEMPLATES), encoding="utf-8"))
        self._env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,          # plain-text mail, not HTML
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["jst"] = jst
        self._env.filters["date_jst"] = date_jst

    def __repr__(self) -> str:
        return f"MessageBuilder(sender={self.sender!r}, template_dir={self.template_dir!r})"

    def message_id(self, idempotency_key: str) -> str:
        """``<hash@sender-domain>``: the same key always gives the same Message-ID."""
        return f"<{message_hash(idempotency_key)}@{self.domain}>"

    def language(self, notice: Notice) -> str:
        """The language actually used: the notice's when its template exists, else ja."""
        lang = (notice.language or DEFAULT_LANGUAGE).lower()
        if not _LANGUAGE.match(lang):
            return DEFAULT_LANGUAGE
        try:
            # get_source only looks the file up; compiling is render()'s business
            self._env.loader.get_source(self._env, f"{lang}/{notice.template}.txt.j2")
        except jinja2.TemplateNotFound:
            return DEFAULT_LANGUAGE
        return lang

    def render(self, notice: Notice) -> tuple[str, str]:
        """Return ``(subject, body)`` of the notice in its language."""
        if not _TEMPLATE_NAME.match(notice.template or ""):
            raise PermanentError(f"invalid template name {notice.template!r}",
                                 template=notice.template)
        lang = self.language(notice)
        name = f"{lang}/{notice.template}.txt.j2"
        context = {key: None for key in CONTEXT_KEYS}
        context.update({k: v for k, v in notice.context.items() if k not in SECRET_KEYS})
        if notice.template not in LINK_TEMPLATES:
            context["url"] = None      # the approver's link goes to the approver only
        context["names"] = list(context["names"] or ([context["common_name"]]
                                                      if context["common_name"] else []))
        context["language"] = lang
        context["attachments"] = [Path(a.filename).name for a in notice.attachments]
        missing = [k for k in REQUIRED.get(notice.template, ("common_name",)) if not context[k]]
        if missing:
            raise PermanentError(f"notice {notice.template} lacks {', '.join(missing)}",
                                 template=notice.template, missing=tuple(missing))
        try:
            text = self._env.get_template(name).render(context)
        except jinja2.TemplateNotFound as exc:
            raise PermanentError(f"no template {name} ({exc.name} missing)",
                                 template=notice.template, language=lang) from exc
        except jinja2.TemplateError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PermanentError(f"template {name} failed: {first}",
                                 template=notice.template, language=lang) from exc
        return self._split(name, text)

    @staticmethod
    def _split(name: str, text: str) -> tuple[str, str]:
        head, sep, body = text.partition("\n")
        if not head.startswith("Subject:") or not sep:
            raise PermanentError(f"template {name} must start with a 'Subject:' line",
                                 template=name)
        if body.startswith("\n"):
            body = body[1:]
        subject = " ".join(head[len("Subject:"):].split())   # one line, no injection
        if not subject:
            raise PermanentError(f"template {name} renders an empty subject", template=name)
        return subject, body.rstrip("\n") + "\n"

    def build(self, notice: Notice) -> EmailMessage:
        """The complete message: headers, UTF-8 text body, PEM attachments."""
        subject, body = self.render(notice)
        to = parse_addresses(notice.to, "to")
        _refuse_private_keys(notice, body)

        msg = EmailMessage(policy=email.policy.SMTP)
        msg["From"] = self.sender_address
        msg["To"] = tuple(to)
        msg["Subject"] = subject
        msg["Date"] = email.utils.format_datetime(_as_datetime(self._clock()))
        msg["Message-ID"] = self.message_id(notice.idempotency_key)
        msg["Auto-Submitted"] = "auto-generated"
        if notice.context.get("order_id"):
            msg["X-Certflow-Order"] = str(notice.context["order_id"])
        msg["X-Certflow-Template"] = notice.template
        # base64 keeps Japanese text intact over 7-bit relays (no 8BITMIME needed)
        msg.set_content(body, charset="utf-8",
                        cte="7bit" if body.isascii() else "base64")
        for attachment in notice.attachments:
            maintype, _, subtype = attachment.mime_type.partition("/")
            msg.add_attachment(attachment.content, maintype=maintype,
                               subtype=subtype or "octet-stream",
                               filename=Path(attachment.filename).name)
        # after the body: set_content/add_attachment rewrite the Content-* headers
        msg["Content-Language"] = self.language(notice)
        return msg


def _refuse_private_keys(notice: Notice, body: str) -> None:
    """Last line of defence: a private key never leaves in a mail."""
    if _PRIVATE_KEY.search(body.encode("utf-8")):
        raise PermanentError(f"refusing to mail a private key ({notice.template})",
                             template=notice.template)
    for attachment in notice.attachments:
        if _PRIVATE_KEY.search(attachment.content):
            raise PermanentError(f"refusing to attach a private key ({attachment.filename})",
                                 template=notice.template, filename=attachment.filename)


def builder_from(settings: dict, now: Callable[[], datetime] | None = None) -> MessageBuilder:
    """The renderer ``[notify]`` describes (sender, templates), for every notifier kind."""
    return MessageBuilder(settings["sender"], settings["templates"], clock=now)
