"""The pages' words in Japanese (the default) and English."""
from __future__ import annotations

LANGUAGES = ("ja", "en")

_TEXT: dict[str, tuple[str, str]] = {
    # approval page
    "approval_title": ("サーバー証明書発行の承認", "Approve a server certificate"),
    "approval_intro": ("以下のドメインについて、サーバー証明書の発行申請がありました。"
                       "ドメインの管理者として、発行を承認するかどうかを選んでください。",
                       "A server certificate has been requested for the domain names below. "
                       "As their administrator, please approve or decline the request."),
    "names": ("ドメイン名", "Domain names"),
    "organization": ("申請組織", "Organization"),
    "deadline": ("承認期限", "Approve by"),
    "approver": ("承認者", "Approver"),
    "approve": ("承認する", "Approve"),
    "decline": ("承認しない", "Decline"),
    "approved_title": ("承認しました", "Approved"),
    "approved_text": ("ご承認ありがとうございました。証明書が発行されます。",
                      "Thank you. The certificate will now be issued."),
    "declined_title": ("承認しませんでした", "Declined"),
    "declined_text": ("申請は取り消されました。証明書は発行されません。",
                      "The request has been cancelled. No certificate will be issued."),
    "used_title": ("この承認リンクは使用済みです", "This approval link has already been used"),
    "used_text": ("この申請への回答はすでに受け付けています（already used）。",
                  "An answer to this request was already received."),
    "expired_title": ("この承認リンクは期限切れです", "This approval link has expired"),
    "expired_text": ("承認期限を過ぎたため、申請は取り消されます。",
                     "The deadline has passed; the request is cancelled."),
    "withdrawn_title": ("この申請は取り消されました", "This request was withdrawn"),
    "withdrawn_text": ("この申請はすでに取り消されているため、承認は不要です。",
                       "The request was cancelled; nothing needs to be approved."),
    "unavailable": ("ただいま混み合っています。しばらくしてからもう一度お試しください。",
                    "Busy right now: please try again in a moment."),
    "unknown_title": ("承認リンクが見つかりません", "Approval link not found"),
    "unknown_text": ("リンクが正しくないか、すでに無効です。メールのリンクをもう一度ご確認ください。",
                     "The link is wrong or no longer valid. Please check the link in the mail."),
    "bad_form": ("フォームの有効期限が切れています。ページを開き直してください。",
                 "The form is stale. Please open the page again."),
    # console
    "console": ("certflow 運用コンソール", "certflow console"),
    "login": ("ログイン", "Log in"),
    "logout": ("ログアウト", "Log out"),
    "operator": ("オペレーター名", "Operator"),
    "password": ("パスワード", "Password"),
    "login_failed": ("オペレーター名またはパスワードが違います。", "Wrong operator name or password."),
    "throttled": ("ログインの失敗が続いたため、{s} 秒後に再度お試しください。",
                  "Too many failed logins: try again in {s} s."),
    "status": ("概要", "Status"),
    "orders": ("注文", "Orders"),
    "on_hold": ("保留中", "On hold"),
    "expiring": ("期限間近", "Expiring soon"),
    "notifications": ("送信失敗した通知", "Failed notifications"),
    "contracts": ("契約", "Contracts"),
    "state": ("状態", "State"),
    "contract": ("契約", "Contract"),
    "common_name": ("コモンネーム", "Common name"),
    "search": ("ドメイン名で検索", "Search by name"),
    "expiring_within": ("有効期限まで（日）", "Expires within (days)"),
    "filter": ("絞り込む", "Filter"),
    "any": ("すべて", "any"),
    "next_page": ("次へ", "Next"),
    "first_page": ("最初へ", "First"),
    "none": ("該当なし", "none"),
    "reason": ("理由", "Reason"),
    "updated": ("更新", "Updated"),
    "plan": ("プラン", "Plan"),
    "email": ("連絡先", "Customer"),
    "timeline": ("履歴", "Timeline"),
    "at": ("日時", "At"),
    "event": ("出来事", "Event"),
    "actor": ("実行者", "Actor"),
    "certificate": ("証明書", "Certificate"),
    "serial": ("シリアル番号", "Serial"),
    "not_before": ("有効期間の開始", "Not before"),
    "not_after": ("有効期限", "Not after"),
    "actions": ("操作", "Actions"),
    "resume": ("再開する", "Resume"),
    "cancel": ("取り消す", "Cancel"),
    "cancel_reason": ("取り消しの理由", "Reason for cancelling"),
    "held_from": ("保留前の状態", "Held from"),
    "count": ("件数", "Orders"),
    "done": ("実行しました", "Done"),
    "refused": ("実行できません", "Refused"),
    "not_found": ("見つかりません", "Not found"),
    "forbidden": ("CSRF トークンがありません。ページを開き直してください。",
                  "Missing or wrong CSRF token. Open the page again."),
    "days": ("日", "days"),
    "validation": ("検証方法", "Validation"),
    "deadline_at": ("期限", "Deadline"),
    "renewal_of": ("更新元", "Renewal of"),
    "status_col": ("状態", "Status"),
    "fixed_ip": ("固定 IP", "Fixed IP"),
    "servers": ("サーバー", "Servers"),
    "pending_effects": ("予定の処理", "Pending work"),
    "effects_pending": ("未処理の作業", "Effects pending"),
    "failed_effects": ("失敗した作業", "Failed effects"),
    "deadlines_48h": ("48 時間以内の期限", "Deadlines in the next 48 h"),
    "language": ("English", "日本語"),
    "retry": ("今すぐ再試行", "Retry now"),
    "resend_approval": ("承認メールを再送", "Resend approval mail"),
    "set_approver": ("承認者を変更", "Set approver"),
    "approver_address": ("新しい承認者のアドレス", "New approver address"),
    "renew": ("今すぐ更新", "Renew now"),
    "revoke": ("失効させる", "Revoke"),
    "revoke_reason": ("失効の理由", "Revocation reason"),
    "effect": ("処理", "Effect"),
    "attempts": ("試行回数", "Attempts"),
    "next_at": ("次の実行", "Next attempt"),
    "last_error": ("最後のエラー", "Last error"),
    "template": ("通知", "Notice"),
    "failed_at": ("失敗日時", "Failed at"),
    "retry_all": ("すべて再送", "Retry all"),
    "ack_all": ("すべて確認済みにする", "Acknowledge all"),
    "ack": ("確認済み", "Acknowledge"),
    "order": ("注文", "Order"),
}


def choose(requested: str | None, fallback: str | None = None) -> str:
    for lang in (requested, fallback):
        if lang in LANGUAGES:
            return lang
    return "ja"


def translator(lang: str):
    index = LANGUAGES.index(lang)

    def t(key: str, **values) -> str:
        text = _TEXT[key][index]
        return text.format(**values) if values else text
    return t
