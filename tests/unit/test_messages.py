"""Messages: every template in both languages, headers, overrides, and what never goes out."""
from __future__ import annotations

import email
import email.policy
import os
from datetime import datetime, timezone

import pytest

from adapters.base import Attachment, BadInput, Notice, PermanentError
from adapters.notify.messages import TEMPLATES, MessageBuilder, date_jst, jst
from adapters.notify.folder import FolderNotifier

CERT_PEM = b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n"
KEY_PEM = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n"
TOKEN = "Zm9vYmFyYmF6cXV4cXV1eA"
FIXED_NOW = datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc)


def full_context(**changes) -> dict:
    context = {
        "order_id": "ord-0001",
        "common_name": "www.example.jp",
        "names": ["www.example.jp", "example.jp"],
        "plan": "basic",
        "contract": "C-1001",
        "validation": "email",
        "approver": "admin@example.jp",
        "deadline_at": datetime(2026, 12, 5, 9, 30, tzinfo=timezone.utc),
        "reason": "承認期限を過ぎました",
        "certificate": {"serial": "5A0F3C", "not_before": "2026-11-25T00:00:00+00:00",
                        "not_after": datetime(2027, 6, 12, 23, 59, 59, tzinfo=timezone.utc),
                        "sha256": "AB:CD:EF:01"},
        "url": f"https://ca.example.jp/approve?token={TOKEN}",
        "renewal_of": "ord-0000",
        "expires_at": datetime(2026, 12, 31, 15, 0, tzinfo=timezone.utc),
    }
    context.update(changes)
    return context


def notice(template="order_received", language="ja", key="ord-0001:1:notify", to=None,
           attachments=(), **context) -> Notice:
    return Notice(template=template, to=to or "customer@example.jp", language=language,
                  context=full_context(**context), idempotency_key=key,
                  attachments=attachments)


@pytest.fixture
def builder() -> MessageBuilder:
    return MessageBuilder("SSL受付 <ssl@provider.example.jp>", clock=lambda: FIXED_NOW)


def parse(msg) -> email.message.EmailMessage:
    return email.message_from_bytes(msg.as_bytes(policy=email.policy.SMTP),
                                    policy=email.policy.default)


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_with_a_full_context(builder, template, language):
    subject, body = builder.render(notice(template, language))
    assert "www.example.jp" in subject
    assert "www.example.jp" in body
    assert "None" not in subject + body
    assert "PRIVATE KEY" not in body
    if template in ("approval_request", "approval_reminder"):
        assert f"?token={TOKEN}" in body
    else:
        assert TOKEN not in body
    if language == "ja":
        assert any("\u3040" <= ch <= "\u30ff" for ch in body)   # kana: written in Japanese


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("template", [t for t in TEMPLATES if t != "approval_request"])
def test_every_template_renders_with_only_the_essentials(builder, template, language):
    sparse = {key: None for key in full_context()}
    sparse.update(order_id="ord-0002", common_name="shop.example.com")
    n = Notice(template, "customer@example.com", language, sparse, "ord-0002:1:x")
    subject, body = builder.render(n)
    assert "shop.example.com" in subject and "shop.example.com" in body
    assert "None" not in subject + body


def test_approval_request_has_the_cas_subject_link_and_ten_days(builder):
    subject, body = builder.render(notice("approval_request"))
    assert subject == "サーバー証明書発行手続きのご案内 [www.example.jp]"
    assert f"https://ca.example.jp/approve?token={TOKEN}" in body
    assert "10日" in body
    assert "2026年12月05日" in body          # 09:30 UTC is 18:30 in Japan, same day
    _, body_en = builder.render(notice("approval_request", "en"))
    assert "10 days" in body_en and f"?token={TOKEN}" in body_en


def test_approval_request_without_a_link_is_refused(builder):
    with pytest.raises(PermanentError, match="url"):
        builder.render(notice("approval_request", url=None))


def test_approval_pending_tells_the_customer_who_approves_and_by_when(builder):
    _, body = builder.render(notice("approval_pending"))
    assert "admin@example.jp" in body
    assert "2026年12月05日" in body and "2026-12-05 18:30 JST" in body
    _, body_file = builder.render(notice("approval_pending", validation="file"))
    assert "admin@example.jp" not in body_file and ".well-known" in body_file


def test_reminder_goes_to_the_approver_with_link_or_to_the_customer_without(builder):
    subject, body = builder.render(notice("approval_reminder"))
    assert "サーバー証明書発行手続きのご案内" in subject and TOKEN in body
    subject, body = builder.render(notice("approval_reminder", url=None))
    assert "ご担当者様" in body and "token" not in body


def test_deadline_is_a_date_in_japan_time():
    late_utc = datetime(2026, 12, 4, 15, 30, tzinfo=timezone.utc)   # 00:30 on the 5th in JST
    assert jst(late_utc) == "2026-12-05 00:30 JST"
    assert jst("2026-12-05T09:30:00Z") == "2026-12-05 18:30 JST"
    assert jst(None) == ""

    class Ctx(dict):
        pass
    assert date_jst(Ctx(language="ja"), late_utc) == "2026年12月05日"
    assert date_jst(Ctx(language="en"), late_utc) == "2026-12-05"


def test_installed_reports_the_certificate(builder):
    _, body = builder.render(notice("installed"))
    assert "5A0F3C" in body and "AB:CD:EF:01" in body
    assert "2027-06-13 08:59 JST" in body


def test_reasons_reach_the_customer_and_the_operator(builder):
    for template in ("cancelled", "rejected", "on_hold"):
        _, body = builder.render(notice(template, reason="ドメイン管理者が承認しませんでした"))
        assert "ドメイン管理者が承認しませんでした" in body
    _, body = builder.render(notice("on_hold", "en", reason="CA unreachable"))
    assert "certflow order resume ord-0001" in body


def test_renewal_messages_name_the_expiry_date(builder):
    _, body = builder.render(notice("renewal_payment_due"))
    assert "2027年01月01日" in body       # 15:00 UTC on Dec 31 is Jan 1 in Japan
    _, body = builder.render(notice("renewal_blocked", "en"))
    assert "2027-01-01" in body and "C-1001" in body


def test_csr_request_explains_openssl_and_asks_for_the_path(builder):
    _, body = builder.render(notice("csr_request"))
    assert "openssl req -new -sha256" in body and "パス" in body
    _, body = builder.render(notice("csr_request", "en"))
    assert "openssl req -new -sha256" in body and "path" in body


def test_english_is_chosen_per_order_and_unknown_languages_fall_back_to_japanese(builder):
    subject_en, _ = builder.render(notice(language="en"))
    assert subject_en == "[SSL certificate] We have received your order [www.example.jp]"
    subject_fr, _ = builder.render(notice(language="fr"))
    subject_ja, _ = builder.render(notice(language="ja"))
    assert subject_fr == subject_ja == "【SSLサーバー証明書】お申し込みを受け付けました [www.example.jp]"
    assert builder.render(notice(language="../en"))[0] == subject_ja


def test_override_directory_wins_and_the_rest_comes_from_the_package(tmp_path):
    (tmp_path / "ja").mkdir()
    (tmp_path / "ja" / "order_received.txt.j2").write_text(
        "Subject: 受付完了 {{ common_name }}\n\n株式会社サンプルです。{{ order_id }}\n",
        encoding="utf-8")
    (tmp_path / "ja" / "_footer.txt.j2").write_text("サンプル株式会社 SSL係\n", encoding="utf-8")
    builder = MessageBuilder("ssl@provider.example.jp", template_dir=str(tmp_path))
    assert builder.render(notice()) == ("受付完了 www.example.jp", "株式会社サンプルです。ord-0001\n")
    subject, body = builder.render(notice("work_started"))       # packaged template
    assert subject.startswith("【SSLサーバー証明書】") and body.endswith("サンプル株式会社 SSL係\n")
    assert builder.render(notice(language="en"))[0].startswith("[SSL certificate]")


def test_override_cannot_reach_the_link_or_secrets(tmp_path):
    (tmp_path / "ja").mkdir()
    (tmp_path / "ja" / "order_received.txt.j2").write_text(
        "Subject: x {{ common_name }}\n\n{{ url }}\n", encoding="utf-8")
    (tmp_path / "ja" / "work_started.txt.j2").write_text(
        "Subject: x {{ common_name }}\n\n{{ token }}\n", encoding="utf-8")
    builder = MessageBuilder("ssl@provider.example.jp", template_dir=str(tmp_path))
    assert TOKEN not in builder.render(notice())[1]
    with pytest.raises(PermanentError, match="work_started"):
        builder.render(notice("work_started", token=TOKEN))


def test_broken_override_template_is_a_permanent_error(tmp_path):
    (tmp_path / "ja").mkdir()
    (tmp_path / "ja" / "cancelled.txt.j2").write_text("Subject: {{ oops\n", encoding="utf-8")
    (tmp_path / "ja" / "rejected.txt.j2").write_text("no subject line\n", encoding="utf-8")
    builder = MessageBuilder("ssl@provider.example.jp", template_dir=str(tmp_path))
    with pytest.raises(PermanentError, match="ja/cancelled.txt.j2"):
        builder.render(notice("cancelled"))
    with pytest.raises(PermanentError, match="Subject"):
        builder.render(notice("rejected"))
    with pytest.raises(PermanentError, match="no_such_template"):
        builder.render(notice("no_such_template"))


def test_missing_template_dir_is_bad_config(tmp_path):
    with pytest.raises(BadInput) as info:
        MessageBuilder("ssl@provider.example.jp", template_dir=str(tmp_path / "nope"))
    assert info.value.field == "notify.template_dir"


def test_message_has_all_headers_and_an_encoded_japanese_subject(builder):
    raw = builder.build(notice()).as_bytes(policy=email.policy.SMTP)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()                       # MIME-encoded, not raw UTF-8
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "【SSLサーバー証明書】お申し込みを受け付けました [www.example.jp]"
    assert msg["From"].addresses[0].addr_spec == "ssl@provider.example.jp"
    assert msg["From"].addresses[0].display_name == "SSL受付"
    assert msg["To"] == "customer@example.jp"
    assert msg["Date"].datetime == FIXED_NOW
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Message-ID"].endswith("@provider.example.jp>")
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    assert "www.example.jp" in msg.get_content()
    assert "PRIVATE KEY" not in msg.get_content()


def test_message_id_is_stable_per_idempotency_key(builder):
    first = builder.build(notice(key="ord-0001:1:notify"))["Message-ID"]
    again = MessageBuilder("ssl@provider.example.jp").build(notice(key="ord-0001:1:notify"))
    other = builder.build(notice(key="ord-0001:2:notify"))["Message-ID"]
    assert first == again["Message-ID"]
    assert first != other


def test_delivered_attaches_certificate_and_chain_as_pem(builder):
    msg = parse(builder.build(notice(
        "delivered", attachments=(Attachment("www.example.jp.crt", CERT_PEM),
                                  Attachment("chain.pem", CERT_PEM)))))
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == ["www.example.jp.crt", "chain.pem"]
    assert all(p.get_content_type() == "application/x-pem-file" for p in parts)
    assert parts[0].get_content() == CERT_PEM
    body = msg.get_body(("plain",)).get_content()
    assert "www.example.jp.crt" in body and "chain.pem" in body


def test_a_private_key_is_never_mailed(builder):
    with pytest.raises(PermanentError, match="private key"):
        builder.build(notice("delivered", attachments=(Attachment("privkey.pem", KEY_PEM),)))
    with pytest.raises(PermanentError, match="private key"):
        builder.build(notice("rejected", reason=KEY_PEM.decode()))


@pytest.mark.parametrize("to", ["not-an-address", "a@example.jp\r\nBcc: evil@example.com", ""])
def test_bad_recipient_is_refused(builder, to):
    with pytest.raises(BadInput) as info:
        builder.build(Notice("order_received", to, "ja", full_context(), "k"))
    assert info.value.field == "to"


def test_idn_recipient_domain_is_sent_as_a_labels(builder):
    msg = parse(builder.build(notice(to="担当 <info@日本語.jp>, ops@example.jp")))
    assert [a.addr_spec for a in msg["To"].addresses] == ["info@xn--wgv71a119e.jp",
                                                          "ops@example.jp"]


def test_folder_notifier_writes_one_file_per_key(builder, tmp_path):
    folder = tmp_path / "mail"
    notifier = FolderNotifier(str(folder), builder)
    notifier.send(notice(key="ord-0001:1:notify"))
    notifier.send(notice(key="ord-0001:1:notify"))          # a retry after a crash
    notifier.send(notice("work_started", key="ord-0001:2:notify"))
    files = sorted(os.listdir(folder))
    assert len(files) == 2 and all(f.endswith(".eml") for f in files)
    first = notifier.path_for(notice(key="ord-0001:1:notify"))
    assert oct(first.stat().st_mode & 0o777) == "0o600"
    msg = email.message_from_bytes(first.read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "【SSLサーバー証明書】お申し込みを受け付けました [www.example.jp]"
    assert msg["Message-ID"] == builder.message_id("ord-0001:1:notify")
    assert b"\r\n" in first.read_bytes()                    # RFC 5322 line endings
    notifier.check()
