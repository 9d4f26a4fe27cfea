"""Administration pages: the administrator manages accounts (never case content), the auditor
reads the audit log (never case content); everyone else gets 404 (A1, A5)."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, text

from investigator.web.guards import StaffPrincipal  # noqa: F401 - the guard under test
from portal.db.models import User
from portal.services import Services
from tests.investigator.conftest import Browser, Staff, form_token, in_app_loop


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
    assert "signin.success" in page.text and "verifies" in page.text

    async def tamper() -> None:
        async with services.db.write() as s:
            await s.execute(text("UPDATE audit_log SET detail = 'edited' WHERE id = 1"))

    in_app_loop(staff_client.client, tamper)
    assert "BROKEN at entry 1" in staff_client.client.get("/workspace/audit").text


def test_other_roles_get_404(staff_client: Browser, make_staff: Callable[..., Staff]) -> None:
    someone = make_staff("ivan", "investigator,intake_officer,approver")
    signed_in(staff_client, someone)
    for path in ("/workspace/users", "/workspace/audit"):
        assert staff_client.client.get(path).status_code == 404, path
    token = staff_client.token()
    assert (
        staff_client.client.post(
            "/workspace/users", data={"_csrf_token": token, "username": "x", "roles": ["auditor"]}
        ).status_code
        == 404
    )
