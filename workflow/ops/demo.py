"""``certflow demo``: a story on the embedded defaults, told with a moved clock.

The demo makes its own workspace (``certflow init``), then plays a few days of a
hosting company's certificate desk through the real engine, local CA, mail folder and
installer. Nothing waits: the injected :class:`MovableClock` jumps ahead, and each
``Daemon.run_once()`` does what the daemon would have done by then.

The demo empties its directory first, so it only ever deletes a directory that holds
its own marker file (``.certflow-demo``); any other non-empty directory is refused.
"""
from __future__ import annotations

import email
import email.policy
import os
import shutil
import sys
from datetime import timedelta
from pathlib import Path

from rich.markup import escape

from workflow.clock import parse_iso
from workflow.errors import ValidationError
from adapters.abilities import approval_tokens

MARKER = ".certflow-demo"
#: the issuing chapters (1-3) span about two days of story time; they are played that
#: far in the past (within the local CA's one-week backdate)
STORY_HEAD_START = timedelta(days=3)
_STYLES = {"installed": "green", "delivered": "green", "rejected": "red", "cancelled": "yellow",
           "on_hold": "bold red"}

# the story's cast: (label, order fields); plans follow the contracts in the default config
_DN = dict(organization="Example Corp.", unit="Web", locality="Shinjuku-ku",
           prefecture="Tokyo", country="JP")
FILE_ORDERS = (
    dict(common_name="www.example.jp", plan="basic", contract="C-1001", email="owner@example.jp", **_DN),
    dict(common_name="shop.example.jp", plan="basic", contract="C-1001", email="owner@example.jp", **_DN),
    dict(common_name="www.example-ha.jp", plan="pro", contract="C-1002", email="it@example-ha.jp",
         organization="Example HA Trading Co., Ltd.", locality="Yokohama-shi",
         prefecture="Kanagawa", country="JP"),
)
MAIL_APPROVED = dict(common_name="www.example.co.jp", plan="basic", contract="C-1001",
                     email="owner@example.co.jp", validation="email", **_DN)
MAIL_SILENT = dict(common_name="www.example-shop.jp", plan="basic", contract="C-1001",
                   email="owner@example-shop.jp", validation="email", **_DN)
APPLICATION_ONLY = dict(common_name="www.example-cloud.jp", plan="ex-cloud", contract="C-3001",
                        email="dev@example-cloud.jp", organization="Example Cloud K.K.",
                        locality="Osaka-shi", prefecture="Osaka", country="JP",
                        # the customer's server is not ours: no file validation there
                        validation="email")
EXPIRED_CONTRACT = dict(common_name="www.example.ne.jp", plan="basic", contract="C-9001",
                        email="owner@example.ne.jp", **_DN)


# --- the workspace ----------------------------------------------------------------


def prepare_directory(directory: Path) -> Path:
    """Create (or empty a previous demo's) workspace; refuse any other non-empty path."""
    target = Path(os.path.abspath(directory))
    if target.is_symlink():
        raise ValidationError("dir", f"{target} is a symbolic link; give the demo a real directory")
    if target.exists():
        if not target.is_dir():
            raise ValidationError("dir", f"{target} exists and is not a directory")
        if (target / MARKER).is_file():
            cwd = Path.cwd().resolve()
            if cwd == target.resolve() or target.resolve() in cwd.parents:
                raise ValidationError("dir", f"{target} is the current directory or contains it; "
                                      "run the demo from elsewhere")
            shutil.rmtree(target)
        elif any(target.iterdir()):
            raise ValidationError("dir", f"{target} is not empty and is not a certflow demo "
                                  f"workspace (no {MARKER} file); choose another --dir")
    target.mkdir(parents=True, exist_ok=True)
    (target / MARKER).write_text("certflow demo workspace: `certflow demo` empties this "
                                 "directory on its next run.\n", encoding="utf-8")
    return target


# --- the story ----------------------------------------------------------------------


class Story:
    """The engine, its clock and daemon, and a console that narrates what happens."""

    def __init__(self, config_path: Path, console) -> None:
        from workflow import config as config_mod
        from workflow.clock import MovableClock, SystemClock
        from workflow.effects.daemon import Daemon
        from workflow.engine import Engine

        # start in the past, so that every certificate the story issues is valid in real
        # time when the demo ends (its root was made a moment ago, backdated by a week)
        self.clock = MovableClock(SystemClock().now() - STORY_HEAD_START)
        self.engine = Engine(config_mod.load(config_path), self.clock)
        self.daemon = Daemon(self.engine)
        self.console = console
        self.root = config_path.parent
        self.ids: dict[str, str] = {}          # common name -> order id
        self._seen: dict[str, int] = {}        # order id -> last event seq narrated

    def close(self) -> None:
        self.engine.close()

    # narration ------------------------------------------------------------------------

    def when(self) -> str:
        return f"{self.clock.now():%Y-%m-%d %H:%M} UTC"

    def chapter(self, title: str) -> None:
        self.console.rule(f"[bold]{title}[/]", align="left")

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{self.when()}[/]  {text}")

    def later(self, delta: timedelta, why: str) -> None:
        self.clock.advance(delta)
        self.say(f"[magenta]⏩ {why}[/]")

    def rel(self, path: str | Path) -> str:
        p = Path(path)
        try:
            return str(p.relative_to(self.root))
        except ValueError:
            return str(p)

    def _narrate_new_events(self) -> None:
        for cn, order_id in self.ids.items():
            for e in self.engine.history(order_id):
                if e.seq <= self._seen.get(order_id, 0):
                    continue
                self._seen[order_id] = e.seq
                style = _STYLES.get(e.dest, "cyan")
                self.console.print(f"    {cn:<22} {e.source} → [{style}]{e.dest}[/]"
                                   f"  [dim]({e.trigger} by {e.actor})[/]")

    # actions --------------------------------------------------------------------------

    def place(self, fields: dict, note: str = "") -> str:
        order = self.engine.place(actor="demo", **fields)
        self.ids[order.common_name] = order.id
        extra = f", SAN {', '.join(order.sans)}" if order.sans else ""
        self.say(f"order {order.id} placed: [bold]{order.common_name}[/]{extra} "
                 f"(plan {order.plan}, contract {order.contract}, validation {order.validation})"
                 + (f" — {note}" if note else ""))
        self._narrate_new_events()
        return order.id

    def pay(self, order_id: str) -> None:
        self.engine.fire(order_id, "pay", actor="demo")
        self.say(f"payment confirmed for {self.engine.get(order_id).common_name}")
        self._narrate_new_events()

    def daemon_pass(self, show_mail: bool = False) -> None:
        before = set(mail_files(self.engine))
        totals = self.daemon.run_once()
        self.say(f"[bold]daemon pass[/]: {totals['effects']} effects run, "
                 f"{totals['deadlines']} deadlines fired, {totals['renewals']} renewals opened")
        self._narrate_new_events()
        if show_mail:
            for path in mail_files(self.engine):
                if path not in before:
                    msg = read_mail(path)
                    self.console.print(f"    ✉ to {escape(str(msg['To']))}: {escape(str(msg['Subject']))}")

    def state(self, order_id: str) -> str:
        return self.engine.get(order_id).state

    def approval_token(self, order_id: str) -> tuple[str, Path]:
        """Read the approval URL's token from the CA's mail in the mail folder, as the
        domain administrator would."""
        order = self.engine.get(order_id)
        for path in mail_files(self.engine):
            msg = read_mail(path)
            if msg["To"] != order.approver or order.common_name not in (msg["Subject"] or ""):
                continue
            body = msg.get_body(preferencelist=("plain", "html"))
            found = approval_tokens(body.get_content() if body else "")
            if found:
                return found[0], path
        raise ValidationError("token", f"no approval mail for {order.common_name} in "
                              f"{self.engine.config['notify']['folder']}")


def mail_files(engine) -> list[Path]:
    """The mail folder's messages in the order they were written."""
    folder = Path(engine.config["notify"]["folder"])
    return sorted(folder.glob("*.eml"), key=lambda p: (p.stat().st_mtime_ns, p.name))


def read_mail(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def _customer_key_and_csr(engine, order) -> str:
    """What the application-only customer does on their own machine: key + CSR. A CA
    that takes the names from the application needs only the common name in it (the
    provider's own procedure); another gets every name."""
    from adapters.base import DistinguishedName
    keys = engine.adapters.keys
    key_pem = keys.generate_key("rsa2048")  # stays with the customer; never given to certflow
    dn = DistinguishedName(order.common_name, order.organization, order.locality,
                           order.prefecture, order.country, order.unit)
    names = order.names[:1] if engine.adapters.ca.names_from_application else order.names
    return keys.make_csr(key_pem, dn, names)


def _tell(story: Story) -> None:
    s, engine = story, story.engine

    s.chapter("1. Three orders with file validation, installed by certflow")
    file_ids = []
    for fields in FILE_ORDERS:
        note = "load-balanced: three web servers" if fields["contract"] == "C-1002" else ""
        file_ids.append(s.place(fields, note))
    s.later(timedelta(hours=1), "one hour later: the payments arrive")
    for order_id in file_ids:
        s.pay(order_id)
    s.say("the daemon makes each key and CSR, applies to the local CA, places "
          "/.well-known/pki-validation/<random>.txt in the webroot, and installs the certificate")
    s.daemon_pass()

    s.chapter("2. Domain validation by mail: the administrator approves with the token")
    s.later(timedelta(hours=1), "one hour later")
    approved = s.place(MAIL_APPROVED, "approval mail to the constructed admin@ address")
    silent = s.place(MAIL_SILENT, "approval mail too; nobody will answer it")
    s.pay(approved)
    s.pay(silent)
    s.daemon_pass(show_mail=True)
    s.later(timedelta(hours=20), "the next morning, the administrator of example.co.jp reads the mail")
    token, mail = s.approval_token(approved)
    s.say(f"approval mail {s.rel(mail)} carries the URL …?token=<{len(token)} characters>; "
          "the administrator opens it")
    application_id = engine.adapters.ca.approve(token)
    s.say(f"local CA: application {application_id} approved")
    s.daemon_pass()

    s.chapter("3. Application-only (EX-CLOUD without Plesk): the customer sends a CSR")
    s.later(timedelta(hours=2), "two hours later")
    app_only = s.place(APPLICATION_ONLY, "the customer makes the key and installs")
    s.pay(app_only)
    s.daemon_pass()
    s.later(timedelta(days=1), "a day later, the customer sends a CSR made on their own server")
    order = engine.get(app_only)
    engine.submit_csr(app_only, _customer_key_and_csr(engine, order), actor="demo")
    s.say(f"CSR checked (SHA-256, RSA 2048, common name {order.common_name}; the CA issues "
          f"for {', '.join(order.names)}) and submitted")
    s.daemon_pass()
    token, _ = s.approval_token(app_only)
    s.say(f"local CA: application {engine.adapters.ca.approve(token)} approved by "
          f"{engine.get(app_only).approver}")
    s.daemon_pass()

    s.chapter("4. A contract that is no longer valid")
    s.place(EXPIRED_CONTRACT, "contract C-9001 expired")
    s.say(f"reason: {engine.get(s.ids[EXPIRED_CONTRACT['common_name']]).reason}")
    s.daemon_pass(show_mail=True)

    s.chapter("5. Ten days pass without an approval")
    deadline = parse_iso(engine.get(silent).deadline_at)
    s.clock.set(deadline - timedelta(days=3) + timedelta(minutes=1))
    s.say("[magenta]⏩ seven days later: three days are left[/]")
    s.daemon_pass(show_mail=True)
    s.clock.set(deadline + timedelta(hours=1))
    s.say(f"[magenta]⏩ 10 days (+1 h) after the approval mail: the deadline "
          f"{engine.get(silent).deadline_at} has passed[/]")
    s.daemon_pass()


def _report(story: Story) -> None:
    from rich.table import Table

    s, engine, con = story, story.engine, story.console
    s.chapter("Orders")
    t = Table(title=None)
    for col in ("order", "common name", "plan", "contract", "validation", "state", "reason"):
        t.add_column(col, overflow="fold")
    for cn, order_id in s.ids.items():
        o = engine.get(order_id)
        t.add_row(o.id, o.common_name, o.plan, o.contract, o.validation,
                  f"[{_STYLES.get(o.state, 'cyan')}]{o.state}[/]", escape(o.reason or ""))
    con.print(t)

    s.chapter("Timelines (order history)")
    for cn, order_id in s.ids.items():
        t = Table(title=f"{cn}  ({order_id})", title_justify="left", show_edge=False)
        for col in ("seq", "at (UTC)", "trigger", "from → to", "actor"):
            t.add_column(col)
        for e in engine.history(order_id):
            t.add_row(str(e.seq), e.at.replace("T", " ").rstrip("Z"), e.trigger,
                      f"{e.source} → {e.dest}", e.actor)
        con.print(t)

    from workflow.history.replay import run_replay
    rows = run_replay(engine, [], True, True, None, progress=False)
    bad = [r for r in rows if not r["ok"]]
    con.print(f"replay --all --verify: {len(rows) - len(bad)} of {len(rows)} orders rebuilt "
              "from their events match the stored state")

    s.chapter("Where things are")
    cfg = engine.config
    mails = mail_files(engine)
    t = Table(title=f"mail: {len(mails)} RFC 5322 files (.eml) in {s.rel(cfg['notify']['folder'])}/, "
              "oldest first — open one in any mail client", title_justify="left")
    for col in ("file", "to", "subject"):
        t.add_column(col, overflow="fold")
    for path in mails:
        m = read_mail(path)
        t.add_row(path.name[:12] + "….eml", escape(str(m["To"])), escape(str(m["Subject"])))
    con.print(t)

    servers = Path(cfg["install"]["root"])
    t = Table(title=f"installed certificates: {s.rel(servers)}/<server>/<common name>/",
              title_justify="left")
    for col in ("directory", "files", "privkey.pem mode"):
        t.add_column(col)
    for key in sorted(servers.rglob("privkey.pem")):
        files = " ".join(sorted(p.name for p in key.parent.glob("*.pem")))
        t.add_row(s.rel(key.parent) + "/", files, f"{key.stat().st_mode & 0o777:04o}")
    con.print(t)
    con.print(f"certificates and the event history: {s.rel(cfg['store']['path'])} "
              "(tables certificates, events)")
    con.print(f"local CA root (trust it to test): {s.rel(Path(cfg['ca']['dir']) / 'root.pem')}; "
              "private keys are stored encrypted, the master key is "
              f"{s.rel(cfg['keys']['master_key'])}")
    for path in mails:
        m = read_mail(path)
        names = [a.get_filename() for a in m.iter_attachments()]
        if m["To"] == APPLICATION_ONLY["email"] and names:
            con.print(f"the application-only customer's certificate went out by mail: "
                      f"{s.rel(path)} with {', '.join(names)} attached (no private key)")
    cli = shutil.which("certflow") or str(Path(sys.executable).with_name("certflow"))
    con.print(f"\nExplore: [bold]cd {s.root}[/] then  {cli} order list · {cli} status · "
              f"{cli} order history {s.ids[FILE_ORDERS[0]['common_name']]} · "
              f"{cli} replay --all --verify")


def run_demo(directory: str | os.PathLike) -> None:
    """Create ``directory`` as a fresh workspace and tell the story there (see module doc)."""
    from rich.console import Console

    from workflow.ops.workspace import init_workspace

    target = prepare_directory(Path(directory))
    config_path = init_workspace(target, force=True)
    console = Console() if sys.stdout.isatty() else Console(width=120)
    console.print(f"[bold]certflow demo[/] — workspace {target} (embedded default config); "
                  "the clock is moved by hand, nothing waits")
    story = Story(config_path, console)
    try:
        _tell(story)
        _report(story)
    finally:
        story.close()
