"""Notices in the workspace (issue 16 item 3), over HTTP, with NO mail server configured.

* every notice (new-report batches, urgent cases, 50 % / 80 % warnings, overdue 督办 to the
  handler and their superior, approvals, identity requests, reporter messages) is listed on
  /workspace/notices, with the unread count in the navigation;
* ``portal notify run`` without SMTP succeeds and says the mail was skipped;
* until the administrator saves a duty roster every intake officer is on duty; the
  administrator's home warns when nobody is;
* an overdue case nobody opened reaches the intake officers and the approvers by name;
* a subject of the case or a conflicted person never sees, nor counts, a notice about it.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select, update

from investigator.domain import deadlines as dl
from investigator.domain import notify
from portal.kernel import clock
from portal.kernel.db.models import Case, PendingNotice, Subject, User
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, run, submit_case

D = dt.date
OVERDUE = "Deadline overdue (supervision notice)"
NEW = "New reports received"
URGENT = "Urgent case: you are on duty"


def at(day: dt.date, hour: int = 10) -> None:
    moment = dt.datetime(day.year, day.month, day.day, hour, 0, tzinfo=clock.SHANGHAI)
    clock.set_clock(lambda: moment)


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    at(D(2025, 9, 29))  # a Monday; the initial review (3 working days) is due on Oct 10
    yield
    clock.set_clock(None)


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    assert not services.settings.smtp_host  # these tests run without a mail server
    d = Desk(client, services)
    d.add("ina", "intake_officer")
    d.add("ivo", "intake_officer")
    d.add("apo", "approver")
    d.add("adm", "administrator")
    return d


def tick(desk: Desk) -> notify.RunReport:
    report: notify.RunReport = run(desk.client, lambda: notify.run(desk.services))
    assert report.error is None and not report.mail_configured
    return report


def new_case(desk: Desk, token: str, *, urgent: bool = False) -> tuple[str, str]:
    case_id, _code = run(desk.client, lambda: submit_case(desk.services, token=token))

    async def number() -> str:
        async with desk.services.db.write() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            case.urgent = urgent
            return case.number

    return str(case_id), str(run(desk.client, number))


def unread_in_nav(desk: Desk, name: str) -> int:
    text = desk.get(name, "/workspace/").text
    marker = "Notices ("
    if marker not in text:
        return 0
    return int(text.split(marker, 1)[1].split(" ", 1)[0])


def test_notices_are_listed_without_mail_and_never_reach_excluded_staff(desk: Desk) -> None:
    case_a, number_a = new_case(desk, "token-notices-a", urgent=True)
    case_b, number_b = new_case(desk, "token-notices-b")
    # ivo declares a conflict on case B before anything is queued
    r = desk.post("ivo", f"/workspace/cases/{case_b}/conflict", {"confirm": "yes"})
    assert r.status_code == 303
    tick(desk)
    # no roster saved: every intake officer is on duty and hears of the urgent case by name
    page = desk.get("ina", "/workspace/notices").text
    assert NEW in page and URGENT in page and number_a in page and number_b in page
    assert unread_in_nav(desk, "ina") == 3  # two new reports and one urgent case
    page = desk.get("ivo", "/workspace/notices").text
    assert number_a in page and URGENT in page
    assert number_b not in page and case_b not in page  # conflicted: never told
    assert unread_in_nav(desk, "ivo") == 2

    # named as a subject of case A after the notices were queued: they vanish, count and all
    async def accuse() -> None:
        async with desk.services.db.write() as s:
            s.add(Subject(case_id=case_a, sealed=b"x", user_id=desk.user_id("ivo")))

    run(desk.client, accuse)
    page = desk.get("ivo", "/workspace/notices").text
    assert number_a not in page and case_a not in page and number_b not in page
    assert unread_in_nav(desk, "ivo") == 0

    # the initial reviews (due Oct 10, after 国庆) are overdue and nobody opened either case
    at(D(2025, 10, 13))
    tick(desk)
    page = desk.get("apo", "/workspace/notices").text
    assert OVERDUE in page and number_a in page and number_b in page
    # named, but no link to a case the approver may not open yet (no dead end)
    assert f"/workspace/cases/{case_a}" not in page
    assert unread_in_nav(desk, "apo") == 2
    page = desk.get("ina", "/workspace/notices").text
    assert page.count(f"<td>{OVERDUE}</td>") == 2  # one row per case
    assert f'href="/workspace/cases/{case_a}"' in page
    assert unread_in_nav(desk, "ivo") == 0  # excluded from both cases

    async def kinds_of(name: str) -> list[str]:
        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(PendingNotice.kind).where(PendingNotice.user_id == desk.user_id(name))
            )
            return list(rows.scalars())

    # nothing was even queued for the excluded person after the exclusion
    assert "deadline_overdue" not in run(desk.client, lambda: kinds_of("ivo"))

    r = desk.post("ina", "/workspace/notices/read", {})
    assert r.status_code == 303
    assert unread_in_nav(desk, "ina") == 0
    page = desk.get("ina", "/workspace/notices").text
    assert "You have no unread notices." in page and number_a in page  # still listed, read
    assert unread_in_nav(desk, "apo") == 2  # one person's reading is theirs only


def test_warnings_and_overdue_reach_the_handler_and_their_superior(desk: Desk) -> None:
    lead = desk.add("lead", "team_lead,investigator")
    boss = desk.add("boss", "team_lead")
    case_id, number = new_case(desk, "token-notices-handling")

    async def handling() -> None:
        async with desk.services.db.write() as s:
            await s.execute(
                update(User).where(User.id == lead.user_id).values(superior_id=boss.user_id)
            )
            case = await s.get(Case, case_id)
            assert case is not None
            await dl.open_deadline(s, case, "handling", lead.user_id)  # due Oct 29

    run(desk.client, handling)
    tick(desk)
    steps = (
        (D(2025, 10, 14), "Half of a deadline's time is used"),
        (D(2025, 10, 24), "A deadline's time is 80 per cent used"),
        (D(2025, 10, 30), OVERDUE),
    )
    for day, words in steps:
        at(day)
        tick(desk)
        for name in ("lead", "boss"):
            page = desk.get(name, "/workspace/notices").text
            assert words in page and number in page, (name, words)
    assert "Half of a deadline" not in desk.get("apo", "/workspace/notices").text


def test_duty_roster_defaults_to_intake_officers_and_home_warns_when_nobody(
    desk: Desk,
) -> None:
    home = desk.get("adm", "/workspace/").text
    assert "Nobody is on duty" not in home
    page = desk.get("adm", "/workspace/notifications").text
    assert "every intake officer is on duty" in page
    r = desk.post("adm", "/workspace/notifications/duty", {})  # an empty roster, saved
    assert r.status_code == 303
    assert "Nobody is on duty" in desk.get("adm", "/workspace/").text
    assert "Nobody is on duty" not in desk.get("ina", "/workspace/").text  # the admin's task
    _case, number = new_case(desk, "token-notices-nobody", urgent=True)
    tick(desk)
    assert URGENT not in desk.get("ina", "/workspace/notices").text
    r = desk.post("adm", "/workspace/notifications/duty", {"on_duty": desk.user_id("apo")})
    assert r.status_code == 303
    assert "Nobody is on duty" not in desk.get("adm", "/workspace/").text
    _case2, number2 = new_case(desk, "token-notices-apo", urgent=True)
    tick(desk)
    page = desk.get("apo", "/workspace/notices").text
    assert URGENT in page and number2 in page and number not in page
    for lang, words in (("zh-CN", "无人值班"), ("zh-TW", "無人值班")):
        r = desk.post("adm", "/workspace/notifications/duty", {})
        home = desk.client.get("/workspace/", headers={"accept-language": lang})
        assert words in home.text, lang


def test_portal_notify_run_without_smtp_succeeds_and_skips_only_the_mail(
    desk: Desk, services: Services
) -> None:
    new_case(desk, "token-notices-cli")
    run(desk.client, services.db.dispose)  # the subprocess opens the same database
    settings = services.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATABASE_URL"))}
    env.update(
        PORTAL_DATA_DIR=str(settings.data_dir),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        DATABASE_URL=settings.database_url,
    )
    out = subprocess.run(
        [sys.executable, "-m", "portal.app.cli", "notify", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no mail server configured" in out.stdout and "mail skipped" in out.stdout
    assert "listed in the workspace" in out.stdout
    assert NEW in desk.get("ina", "/workspace/notices").text


def test_notices_and_their_unread_count_in_three_languages(desk: Desk) -> None:
    new_case(desk, "token-notices-lang")
    tick(desk)
    desk.use("ina")
    for lang, kind, nav in (
        ("zh-CN", "收到新举报", "通知（1 条未读）"),
        ("zh-TW", "收到新舉報", "通知（1 則未讀）"),
        ("en", NEW, "Notices (1 unread)"),
    ):
        page = desk.client.get("/workspace/notices", headers={"accept-language": lang}).text
        assert kind in page and nav in page, lang
        assert "new_cases" not in page  # never the internal code
