"""Reading the folder notifier's .eml files as a customer would."""
from __future__ import annotations

import email
import email.policy
from pathlib import Path
from adapters.abilities import approval_tokens


def messages(workspace_config: Path) -> list[email.message.EmailMessage]:
    folder = Path(workspace_config).parent / "var/mail"
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
            for p in sorted(folder.glob("*.eml"))]


def to(workspace_config: Path, address: str) -> list[email.message.EmailMessage]:
    return [m for m in messages(workspace_config) if address in str(m["To"])]


def body(msg) -> str:
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part else ""


def token_in(msg) -> str:
    found = approval_tokens(body(msg))
    assert found, body(msg)
    return found[0]
