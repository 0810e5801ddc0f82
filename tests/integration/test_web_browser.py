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
        web_workspace, web_server, page, tmp_path):
    order_id = place_by_mail(web_workspace)
    before = show(web_workspace, order_id)
    url = mailed_approval_url(web_workspace)
    assert url.startswith(web_server + "/approve?token=")

    page.goto(url)
    assert page.locator("h1").inner_text() == "サーバー証明書発行の承認"
    assert page.locator("#names").inner_text().split() == ["www.example.jp", "example.jp"]
    assert page.locator("#organization").inner_text() == "Example Corp."
    page.screenshot(path=str(tmp_path / "approval.png"), full_page=True)
    assert show(web_workspace, order_id) == before  # opening it changed nothing

    page.get_by_role("button", name="承認する").click()
    assert page.locator("#message-title").inner_text() == "承認しました"
    run_cli(web_workspace, "daemon", "--once", check=True)
    assert show(web_workspace, order_id)["state"] == "installed"

    page.goto(url)
    assert "already used" in page.locator("#message-text").inner_text()
    assert httpx.get(url).status_code == 410


def test_declining_cancels_the_order_with_the_reason(web_workspace, web_server, page):
    order_id = place_by_mail(web_workspace)
    page.goto(mailed_approval_url(web_workspace) + "&lang=en")
    assert page.locator("h1").inner_text() == "Approve a server certificate"
    page.get_by_role("button", name="Decline").click()
    assert page.locator("#message-title").inner_text() == "Declined"

    order = show(web_workspace, order_id)
    assert order["state"] == "cancelled"
    assert order["reason"] == "the domain administrator declined"
    history = cli_json(web_workspace, "order", "history", order_id)
    assert (history[-1]["trigger"], history[-1]["actor"]) == ("cancel", "approver")
    run_cli(web_workspace, "daemon", "--once", check=True)
    [app] = [a for a in cli_json(web_workspace, "ca", "applications") if a["order_id"] == order_id]
    assert app["status"] == "cancelled"


def test_a_prefetch_without_javascript_changes_nothing(web_workspace, web_server):
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
        web_workspace, web_server, page, tmp_path):
    run_cli(web_workspace, "order", "place", *place_args(common_name="www.other.jp"), check=True)
    configure(web_workspace, {"effects.max_attempts": 1})
    blocker = break_installation(web_workspace)
    held = cli_json(web_workspace, "order", "place", *place_args(common_name="www.held.jp"))
    run_cli(web_workspace, "order", "pay", held["id"], check=True)
    run_cli(web_workspace, "daemon", "--once", check=True)
    assert show(web_workspace, held["id"])["state"] == "on_hold"

    login(page, web_server, password="wrong password!")
    assert page.locator("#error").inner_text() == "オペレーター名またはパスワードが違います。"
    assert "/ops/login" in page.url
    login(page, web_server)
    assert page.locator("#me").inner_text() == OPERATOR

    page.goto(web_server + "/ops/orders")
    page.get_by_label("ドメイン名で検索").fill("held.jp")
    page.get_by_role("button", name="絞り込む").click()
    rows = page.locator("table.orders tbody tr")
    assert rows.count() == 1 and "www.held.jp" in rows.inner_text()
    rows.get_by_role("link").click()
    assert page.locator("#state").inner_text() == "on_hold"

    blocker.unlink()
    page.get_by_role("button", name="再開する").click()
    assert page.locator("#flash").is_visible()
    run_cli(web_workspace, "daemon", "--once", check=True)
    page.reload()
    assert page.locator("#state").inner_text() == "installed"
    assert page.locator("#certificate").is_visible()
    page.screenshot(path=str(tmp_path / "order.png"), full_page=True)
    history = cli_json(web_workspace, "order", "history", held["id"])
    assert {"trigger": "resume", "actor": OPERATOR}.items() <= \
        next(e for e in history if e["trigger"] == "resume").items()

    # the same POST without the CSRF token: refused, nothing done
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    forged = httpx.post(f"{web_server}/ops/orders/{held['id']}/cancel", cookies=cookies,
                        data={"reason": "forged"})
    assert forged.status_code == 403
    assert show(web_workspace, held["id"])["state"] == "installed"


def test_console_pages_need_a_login(web_workspace, web_server):
    for path in ("/ops/", "/ops/orders", "/ops/hold", "/ops/expiring", "/ops/contracts"):
        answer = httpx.get(web_server + path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/ops/login")
    assert json.dumps(httpx.post(web_server + "/ops/logout").status_code) == "403"
