"""`certflow serve` in a real browser (Debian chromium driven by Playwright): the domain
administrator's approval page and the operator console, as people use them."""
from __future__ import annotations

import json

import httpx

from support.helpers import break_installation, cli_json, configure, place_args, run_cli
from support.web import OPERATOR, PASSWORD, mailed_approval_url, place_by_mail


def show(config, order_id):
    return cli_json(config, "order", "show", order_id)


def test_approver_opens_the_mailed_link_approves_and_the_link_is_then_used(
        web_workspace, certflow_web, browser_page, tmp_path):
    order_id = place_by_mail(web_workspace)
    before = show(web_workspace, order_id)
    url = mailed_approval_url(web_workspace)
    assert url.startswith(certflow_web + "/approve?token=")

    browser_page.goto(url)
    assert browser_page.locator("h1").inner_text() == "サーバー証明書発行の承認"
    assert browser_page.locator("#names").inner_text().split() == ["www.example.jp", "example.jp"]
    assert browser_page.locator("#organization").inner_text() == "Example Corp."
    browser_page.screenshot(path=str(tmp_path / "approval.png"), full_page=True)
    assert show(web_workspace, order_id) == before  # opening it changed nothing

    browser_page.get_by_role("button", name="承認する").click()
    assert browser_page.locator("#message-title").inner_text() == "承認しました"
    run_cli(web_workspace, "daemon", "--once", check=True)
    assert show(web_workspace, order_id)["state"] == "installed"

    browser_page.goto(url)
    assert "already used" in browser_page.locator("#message-text").inner_text()
    assert httpx.get(url).status_code == 410


def test_declining_cancels_the_order_with_the_reason(web_workspace, certflow_web, browser_page):
    order_id = place_by_mail(web_workspace)
    browser_page.goto(mailed_approval_url(web_workspace) + "&lang=en")
    assert browser_page.locator("h1").inner_text() == "Approve a server certificate"
    browser_page.get_by_role("button", name="Decline").click()
    assert browser_page.locator("#message-title").inner_text() == "Declined"

    order = show(web_workspace, order_id)
    assert order["state"] == "cancelled"
    assert order["reason"] == "the domain administrator declined"
    history = cli_json(web_workspace, "order", "history", order_id)
    assert (history[-1]["trigger"], history[-1]["actor"]) == ("cancel", "approver")
    run_cli(web_workspace, "daemon", "--once", check=True)
    [app] = [a for a in cli_json(web_workspace, "ca", "applications") if a["order_id"] == order_id]
    assert app["status"] == "cancelled"


def test_a_prefetch_without_javascript_changes_nothing(web_workspace, certflow_web):
    order_id = place_by_mail(web_workspace)
    before = show(web_workspace, order_id)
    url = mailed_approval_url(web_workspace)
    for _ in range(3):  # a scanner fetches, follows, fetches again
        fetched = httpx.get(url, headers={"User-Agent": "SafeLinks-Scanner"})
        assert fetched.status_code == 200 and "承認する" in fetched.text
        assert httpx.head(url).status_code == 200
    run_cli(web_workspace, "daemon", "--once", check=True)
    assert show(web_workspace, order_id) == before
    [app] = [a for a in cli_json(web_workspace, "ca", "applications") if a["order_id"] == order_id]
    assert app["status"] == "pending"
    # the person's own click still works afterwards
    run_cli(web_workspace, "ca", "approve", url, check=True)


def login(page, base: str, password: str = PASSWORD):
    page.goto(base + "/ops/")
    assert "/ops/login" in page.url  # no session: the login page
    page.get_by_label("オペレーター名").fill(OPERATOR)
    page.get_by_label("パスワード").fill(password)
    page.get_by_role("button", name="ログイン").click()


def test_operator_finds_an_order_on_hold_resumes_it_and_sees_it_installed(
        web_workspace, certflow_web, browser_page, tmp_path):
    run_cli(web_workspace, "order", "place", *place_args(common_name="www.other.jp"), check=True)
    configure(web_workspace, {"effects.max_attempts": 1})
    blocker = break_installation(web_workspace)
    held = cli_json(web_workspace, "order", "place", *place_args(common_name="www.held.jp"))
    run_cli(web_workspace, "order", "pay", held["id"], check=True)
    run_cli(web_workspace, "daemon", "--once", check=True)
    assert show(web_workspace, held["id"])["state"] == "on_hold"

    login(browser_page, certflow_web, password="wrong password!")
    assert browser_page.locator("#error").inner_text() == \
        "オペレーター名またはパスワードが違います。"
    assert "/ops/login" in browser_page.url
    login(browser_page, certflow_web)
    assert browser_page.locator("#me").inner_text() == OPERATOR

    browser_page.goto(certflow_web + "/ops/orders")
    browser_page.get_by_label("ドメイン名で検索").fill("held.jp")
    browser_page.get_by_role("button", name="絞り込む").click()
    rows = browser_page.locator("table.orders tbody tr")
    assert rows.count() == 1 and "www.held.jp" in rows.inner_text()
    rows.get_by_role("link").click()
    assert browser_page.locator("#state").inner_text() == "on_hold"

    blocker.unlink()
    browser_page.get_by_role("button", name="再開する").click()
    assert browser_page.locator("#flash").is_visible()
    run_cli(web_workspace, "daemon", "--once", check=True)
    browser_page.reload()
    assert browser_page.locator("#state").inner_text() == "installed"
    assert browser_page.locator("#certificate").is_visible()
    browser_page.screenshot(path=str(tmp_path / "order.png"), full_page=True)
    history = cli_json(web_workspace, "order", "history", held["id"])
    assert {"trigger": "resume", "actor": OPERATOR}.items() <= \
        next(e for e in history if e["trigger"] == "resume").items()

    # the same POST without the CSRF token: refused, nothing done
    cookies = {c["name"]: c["value"] for c in browser_page.context.cookies()}
    forged = httpx.post(f"{certflow_web}/ops/orders/{held['id']}/cancel", cookies=cookies,
                        data={"reason": "forged"})
    assert forged.status_code == 403
    assert show(web_workspace, held["id"])["state"] == "installed"


def test_console_pages_need_a_login(web_workspace, certflow_web):
    for path in ("/ops/", "/ops/orders", "/ops/hold", "/ops/expiring", "/ops/contracts"):
        answer = httpx.get(certflow_web + path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ops/login")
    assert json.dumps(httpx.post(certflow_web + "/ops/logout").status_code) == "403"
