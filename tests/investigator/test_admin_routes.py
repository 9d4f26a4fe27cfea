"""Administration pages: the administrator manages accounts (never case content), the auditor
reads the audit log (never case content); everyone else gets 404 (A1, A5)."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select, text

from investigator.web.guards import StaffPrincipal  # noqa: F401 - the guard under test
from portal.kernel.db.models import AuditEntry, User
from portal.kernel.services import Services
from tests.investigator.conftest import Browser, Staff, code_for, form_token, in_app_loop
from tests.investigator.ws_helpers import Desk, run
from tests.visible import visible_text


def signed_in(browser: Browser, staff: Staff) -> None:
    response = browser.enrol(staff)
    assert response.status_code == 303, response.text


def test_administrator_creates_and_disables_an_account(
    staff_client: Browser, make_staff: Callable[..., Staff], services: Services
) -> None:
    admin = make_staff("root", "administrator")
    signed_in(staff_client, admin)
    page = staff_client.client.get("/workspace/users")
    assert page.status_code == 200 and "root" in page.text
    created = staff_client.client.post(
        "/workspace/users",
        data={
            "_csrf_token": form_token(page.text),
            "username": "lin",
            "display_name": "Lin",
            "roles": ["investigator", "team_lead"],
        },
    )
    assert created.status_code == 200
    assert "One-time password" in created.text
    bad = staff_client.client.post(
        "/workspace/users",
        data={
            "_csrf_token": form_token(page.text),
            "username": "liaison",
            "roles": ["department_liaison"],
        },
    )
    assert bad.status_code == 400 and "department" in bad.text

    async def lin() -> User:
        async with services.db.read() as s:
            return (await s.execute(select(User).where(User.username == "lin"))).scalar_one()

    user = in_app_loop(staff_client.client, lin)
    assert user.roles == "investigator,team_lead" and user.must_change_password
    off = staff_client.client.post(
        f"/workspace/users/{user.id}/disable",
        data={"_csrf_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert off.status_code == 303
    assert in_app_loop(staff_client.client, lin).disabled
    # the administrator cannot disable themselves
    me = staff_client.client.post(
        f"/workspace/users/{admin.user_id}/disable", data={"_csrf_token": form_token(page.text)}
    )
    assert me.status_code == 404


def test_auditor_reads_the_log_and_sees_a_broken_chain(
    staff_client: Browser, make_staff: Callable[..., Staff], services: Services
) -> None:
    auditor = make_staff("audrey", "auditor")
    signed_in(staff_client, auditor)
    page = staff_client.client.get("/workspace/audit")
    assert page.status_code == 200
    shown = visible_text(page.text)
    assert "Signed in" in shown and "verifies" in shown
    assert "signin.success" not in shown  # the action in words, never its code

    async def tamper() -> None:
        async with services.db.write() as s:
            await s.execute(text("UPDATE audit_log SET detail = 'edited' WHERE id = 1"))

    in_app_loop(staff_client.client, tamper)
    assert "BROKEN at entry 1" in staff_client.client.get("/workspace/audit").text


def test_other_roles_get_404(staff_client: Browser, make_staff: Callable[..., Staff]) -> None:
    someone = make_staff("ivan", "investigator,intake_officer,approver")
    signed_in(staff_client, someone)
    for path in ("/workspace/users", "/workspace/audit", "/workspace/audit/export"):
        assert staff_client.client.get(path).status_code == 404, path
    token = staff_client.token()
    assert (
        staff_client.client.post(
            "/workspace/users", data={"_csrf_token": token, "username": "x", "roles": ["auditor"]}
        ).status_code
        == 404
    )


def test_a_lost_authenticator_is_reset_by_another_administrator(
    staff_client: Browser, make_staff: Callable[..., Staff], services: Services
) -> None:
    admin = make_staff("root", "administrator")
    lin = make_staff("lin", "investigator")
    # lin sets up an authenticator, then loses the phone
    signed_in(staff_client, lin)
    assert staff_client.sign_out().status_code == 303
    old_secret = lin.totp_secret
    assert old_secret

    # nobody but an administrator may reset it; an administrator not their own
    inv = make_staff("ivy", "investigator")
    signed_in(staff_client, inv)
    page = staff_client.client.get("/workspace/")
    refused = staff_client.client.post(
        f"/workspace/users/{lin.user_id}/reset-two-step",
        data={"_csrf_token": form_token(page.text)},
    )
    assert refused.status_code == 404
    staff_client.sign_out()
    signed_in(staff_client, admin)
    page = staff_client.client.get("/workspace/users")
    assert f'action="/workspace/users/{lin.user_id}/reset-two-step"' in page.text
    assert f'action="/workspace/users/{admin.user_id}/reset-two-step"' not in page.text
    own = staff_client.client.post(
        f"/workspace/users/{admin.user_id}/reset-two-step",
        data={"_csrf_token": form_token(page.text)},
    )
    assert own.status_code == 404
    done = staff_client.client.post(
        f"/workspace/users/{lin.user_id}/reset-two-step",
        data={"_csrf_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/workspace/users?saved=1"
    assert "Set up at the next sign-in" in staff_client.client.get("/workspace/users").text
    staff_client.sign_out()

    # the password is still needed: a wrong one gets nowhere near the enrolment
    wrong = staff_client.password_step("lin", "not the password at all 1")
    assert wrong.headers.get("location") != "/workspace/totp/enrol"
    # with it, lin enrols a new authenticator; the old phone's codes are worthless
    assert staff_client.enrol(lin).status_code == 303
    assert lin.totp_secret and lin.totp_secret != old_secret
    staff_client.sign_out()
    response = staff_client.password_step("lin", lin.password)
    assert response.headers["location"] == "/workspace/totp"
    assert staff_client.code_step(code_for(old_secret, 2)).status_code != 303

    async def entries() -> list[str]:
        async with services.db.read() as s:
            rows = await s.execute(select(AuditEntry.action, AuditEntry.actor_user_id))
            return [f"{a}:{u}" for a, u in rows.all()]

    assert f"user.reset_two_step:{admin.user_id}" in in_app_loop(staff_client.client, entries)


def test_administrator_changes_roles_which_apply_at_once(
    client: TestClient[Litestar], services: Services
) -> None:
    desk = Desk(client, services)
    desk.add("root", "administrator")
    desk.add("lin", "investigator")
    lin_id = desk.user_id("lin")
    assert desk.get("lin", "/workspace/audit").status_code == 404  # not an auditor yet

    page = desk.get("root", f"/workspace/users/{lin_id}")
    assert page.status_code == 200 and 'value="auditor"' in page.text
    assert desk.get("root", f"/workspace/users/{desk.user_id('root')}").status_code == 404
    assert desk.post("root", f"/workspace/users/{desk.user_id('root')}", {}).status_code == 404
    assert desk.get("lin", f"/workspace/users/{lin_id}").status_code == 404
    assert (
        desk.post("lin", f"/workspace/users/{lin_id}", {"roles": "administrator"}).status_code
        == 404
    )

    none = desk.post("root", f"/workspace/users/{lin_id}", {"roles": []})
    assert none.status_code == 400 and "Choose at least one role." in none.text
    liaison = desk.post("root", f"/workspace/users/{lin_id}", {"roles": ["department_liaison"]})
    assert liaison.status_code == 400 and "must belong to a department" in liaison.text
    unknown = desk.post(
        "root",
        f"/workspace/users/{lin_id}",
        {"roles": ["auditor"], "department_id": "no-such-department"},
    )
    assert unknown.status_code == 400 and "does not exist" in unknown.text

    done = desk.post("root", f"/workspace/users/{lin_id}", {"roles": ["investigator", "auditor"]})
    assert done.status_code == 303 and done.headers["location"] == "/workspace/users?saved=1"
    # lin's very next request sees the new role, without signing in again
    assert desk.get("lin", "/workspace/audit").status_code == 200
    desk.post("root", f"/workspace/users/{lin_id}", {"roles": ["investigator"]})
    assert desk.get("lin", "/workspace/audit").status_code == 404

    async def entries() -> list[str]:
        async with services.db.read() as s:
            rows = await s.execute(select(AuditEntry.action, AuditEntry.detail))
            return [f"{a} {d}" for a, d in rows.all() if a == "user.roles"]

    logged = run(client, entries)
    assert len(logged) == 2 and f"user={lin_id} roles=investigator,auditor" in logged[0]


def test_administrator_is_warned_while_no_one_could_open_a_report(
    client: TestClient[Litestar], services: Services
) -> None:
    desk = Desk(client, services)
    desk.add("root", "administrator")
    home = desk.get("root", "/workspace/")
    assert "There is no active intake officer" in home.text
    assert "There is no active identity custodian" in home.text
    desk.add("ian", "intake_officer")
    home = desk.get("root", "/workspace/")
    assert "There is no active intake officer" not in home.text
    assert "There is no active identity custodian" in home.text
    desk.add("cus", "identity_custodian")
    assert "There is no active" not in desk.get("root", "/workspace/").text
    # a disabled account does not count; other roles are not told
    desk.post("root", f"/workspace/users/{desk.user_id('ian')}/disable")
    assert "There is no active intake officer" in desk.get("root", "/workspace/").text
    assert "There is no active" not in desk.get("cus", "/workspace/").text
    # reports about the centre itself need an independent reviewer: the owner's to appoint
    reviewer = "No independent reviewer (audit committee or supervisory board) is appointed"
    assert reviewer in desk.get("root", "/workspace/").text
    assert "portal user appoint-reviewer NAME" in desk.get("root", "/workspace/").text
    assert reviewer not in desk.get("cus", "/workspace/").text
    desk.add("board", "independent_reviewer")
    assert reviewer not in desk.get("root", "/workspace/").text
