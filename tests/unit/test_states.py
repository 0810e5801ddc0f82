"""The lifecycle as data: guards, the what-if contract, and the policy table."""
import dataclasses
from datetime import date, datetime, timezone

import pytest

import states
from states import GUARDS, LIFECYCLE, GuardContext, Steps
from states.policy import max_lifetime_days, requested_lifetime, rule_at

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def refusal(names, context):
    """The first failing guard's reason, or None when all pass."""
    return next((r for r in (GUARDS[n](context) for n in names) if r), None)


def ctx(plan="basic", **contract):
    return GuardContext({"plan": plan, "contract": "C"}, {"status": "active", **contract}, NOW)


def test_every_state_of_the_design_table_exists():
    assert set(LIFECYCLE.state_names) >= {
        "ordered", "paid", "awaiting_csr", "submitted", "awaiting_approval", "issued",
        "installed", "delivered", "cancelled", "rejected", "on_hold"}


def test_guards_decide_plan_rules():
    assert refusal(("contract_active",), ctx(status="expired")) is not None
    assert "fixed IP" in refusal(("flex_has_fixed_ip",), ctx("flex"))
    assert refusal(("flex_has_fixed_ip",), ctx("flex", fixed_ip=True)) is None
    assert refusal(("application_only",), ctx("ex-cloud", plesk=False)) is None
    assert refusal(("full_service",), ctx("ex-cloud", plesk=False)) is not None
    assert refusal(("full_service",), ctx("ex-cloud", plesk=True)) is None
    assert GUARDS["contract_active"](GuardContext({"contract": "X"}, None, NOW)) is not None


def test_approval_waits_ten_days_then_expires():
    deadline = LIFECYCLE.state("awaiting_approval").deadline
    assert deadline[0].days == 10 and deadline[1] == "expire"
    assert LIFECYCLE.deadline_reason("expire") == \
        "the domain administrator did not approve within 10 days"


def test_deadline_reason_follows_the_duration():
    """The reason text is derived from the lifecycle's timedelta, never written out."""
    from datetime import timedelta
    states_ = tuple(dataclasses.replace(s, deadline=s.deadline._replace(after=timedelta(days=14)))
                    if s.name == "awaiting_approval" else s for s in LIFECYCLE.states)
    variant = dataclasses.replace(LIFECYCLE, states=states_)
    assert variant.deadline_reason("expire") == \
        "the domain administrator did not approve within 14 days"


def test_lifecycle_rules_live_in_states():
    assert set(LIFECYCLE.public_triggers) == {"place", "pay", "cancel", "reject", "resume"}
    assert set(LIFECYCLE.final_states) == {"installed", "delivered", "cancelled", "rejected",
                                           "revoked"}
    assert set(LIFECYCLE.certificate_states) == {"issued", "installed", "delivered"}
    assert LIFECYCLE.trigger("cancel").data == ("reason",)
    [reminder] = LIFECYCLE.state("awaiting_approval").reminders
    assert reminder.days_setting == "approval_reminder_days"


def test_lifecycle_is_frozen_and_replaceable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LIFECYCLE.initial = "x"  # type: ignore[misc]
    variant = dataclasses.replace(LIFECYCLE, transitions=tuple(
        t for t in LIFECYCLE.transitions if t.trigger != "expire"))
    assert not Steps(variant).allows("expire", "awaiting_approval", "cancelled")
    assert Steps(LIFECYCLE).allows("expire", "awaiting_approval", "cancelled")


def test_states_package_does_no_io():
    import ast, pathlib
    for path in pathlib.Path(states.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {n.names[0].name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)}
        imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not imported & {"os", "sqlite3", "socket", "subprocess", "workflow", "adapters", "httpx"}, path


@pytest.mark.parametrize("day, cap", [
    (date(2025, 7, 14), 398), (date(2026, 3, 14), 398), (date(2026, 3, 15), 200),
    (date(2027, 3, 15), 100), (date(2029, 3, 14), 100), (date(2029, 3, 15), 47)])
def test_dated_lifetimes(day, cap):
    assert max_lifetime_days(day) == cap
    assert requested_lifetime(day).days == cap - 1


def test_whois_mail_ends_with_sc080():
    assert rule_at(date(2025, 7, 14)).whois_email is True
    assert rule_at(date(2025, 7, 15)).whois_email is False
