"""Calendar years never silently missing (issue 16 item 4), over HTTP, with the clock fixed on
2026-12-03: the ``chinesecalendar`` data ends with 2026, so 2027 has no schedule yet.

* a deadline running into 2027 is computed on Monday to Friday and shown as provisional, never
  absent;
* from 1 November the administrator's home asks for next year's schedule;
* one day entered does not cover a year; the administrator's complete schedule (holiday ranges
  and 调休 days in one form, validated against the year) does, once confirmed;
* confirming recomputes the provisional deadlines, audited, and keeps the dates the reporter
  is told.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from investigator.domain.calendar import package_years
from portal.kernel import clock
from portal.kernel.db.models import AuditEntry, CaseDeadline
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.investigator.ws_helpers import Desk, run, submit_case, year_schedule

D = dt.date
TODAY = D(2026, 12, 3)
NEXT = 2027
# 元旦 through Monday 4 January: the Monday-to-Friday guess counts Jan 1 and Jan 4 as working
HOLIDAYS = year_schedule(NEXT)[0].replace(
    f"{NEXT}-01-01 .. {NEXT}-01-03", "2027-01-01 .. 2027-01-04"
)
WORKDAYS = year_schedule(NEXT)[1]


def at(day: dt.date) -> None:
    moment = dt.datetime(day.year, day.month, day.day, 10, 0, tzinfo=clock.SHANGHAI)
    clock.set_clock(lambda: moment)


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[None]:
    assert NEXT not in package_years(), "the package now knows 2027: move these dates on"
    at(TODAY)
    yield
    clock.set_clock(None)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # an initial review of 25 working days runs from 3 December into January
    return settings.with_overrides(deadline_rules={"initial_review": "25wd"})


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("admin", "administrator")
    return d


def deadlines_of(desk: Desk, case_id: str) -> dict[str, CaseDeadline]:
    async def read() -> dict[str, CaseDeadline]:
        async with desk.services.db.read() as s:
            rows = await s.execute(select(CaseDeadline).where(CaseDeadline.case_id == case_id))
            return {d.stage: d for d in rows.scalars()}

    return dict(run(desk.client, read))


def audit_details(desk: Desk, action: str) -> list[str]:
    async def read() -> list[str]:
        async with desk.services.db.read() as s:
            rows = await s.execute(select(AuditEntry.detail).where(AuditEntry.action == action))
            return [str(d) for d in rows.scalars()]

    return list(run(desk.client, read))


def new_case(desk: Desk, token: str) -> str:
    case_id, _code = run(desk.client, lambda: submit_case(desk.services, token=token))
    return str(case_id)


def confirm(desk: Desk, **overrides: str) -> Any:
    form = {"year": str(NEXT), "holidays": HOLIDAYS, "workdays": WORKDAYS, "confirm": "yes"}
    return desk.post("admin", "/workspace/calendar/year", {**form, **overrides})


ASK = "has no confirmed schedule for 2027"


def test_home_asks_for_next_years_schedule_from_the_first_of_november(desk: Desk) -> None:
    at(D(2026, 10, 31))
    assert ASK not in desk.get("admin", "/workspace/").text
    at(D(2026, 11, 1))
    home = desk.get("admin", "/workspace/").text
    assert ASK in home and "/workspace/calendar?year=2027" in home
    at(TODAY)
    assert ASK in desk.get("admin", "/workspace/").text
    assert ASK not in desk.get("intake", "/workspace/").text  # the administrator's task
    # one day entered does not cover the year
    r = desk.post(
        "admin", "/workspace/calendar", {"day": "2027-01-01", "kind": "restday", "note": "元旦"}
    )
    assert r.status_code == 303
    assert ASK in desk.get("admin", "/workspace/").text
    assert confirm(desk).status_code == 303
    assert ASK not in desk.get("admin", "/workspace/").text
    page = desk.get("admin", "/workspace/calendar?year=2027").text
    assert "Schedule confirmed on 2026-12-03." in page


def test_the_schedule_form_is_validated_against_the_year(desk: Desk) -> None:
    cases = [
        ({"confirm": ""}, "Confirm that this is the complete schedule of 2027."),
        ({"holidays": HOLIDAYS.replace("2027-02-10", "2026-02-10")}, "is not in 2027"),
        ({"holidays": HOLIDAYS.replace("2027-10-01 ..", "2027-10-04 ..")}, "2027-10-01 is a"),
        ({"holidays": "2027-01-01 元旦\n2027-05-01\n2027-10-01 .. 2027-10-03"}, "only 5 days"),
        ({"holidays": HOLIDAYS + "\n2027-02-15 .. 2027-02-20"}, "overlap"),
        ({"workdays": "2027-03-03 调休"}, "2027-03-03 is a weekday"),
        ({"workdays": "2027-02-13"}, "inside a holiday range"),
        ({"holidays": "not a date"}, "this is not a date"),
    ]
    for change, message in cases:
        r = confirm(desk, **change)
        assert r.status_code == 400, change
        assert message in r.text, (change, message)
    assert audit_details(desk, "calendar.year_confirmed") == []
    assert ASK in desk.get("admin", "/workspace/").text
    # the holiday data's own years are not entered by hand; only the administrator enters one
    r = desk.post("admin", "/workspace/calendar/year", {"year": "2026", "confirm": "yes"})
    assert r.status_code == 400 and "already covers 2026" in r.text
    assert desk.post("intake", "/workspace/calendar/year", {"year": "2027"}).status_code == 404


def test_provisional_deadlines_are_shown_then_recomputed_when_the_year_is_confirmed(
    desk: Desk,
) -> None:
    waiting = new_case(desk, "token-cal-years-1")  # initial review: 25 working days
    accepted = new_case(desk, "token-cal-years-2")
    r = desk.post("intake", f"/workspace/cases/{accepted}/accept", {"expected_stage": "received"})
    assert r.status_code == 303
    review = deadlines_of(desk, waiting)["initial_review"]
    # Dec 4-31 are 20 working days; then Fri Jan 1, Mon Jan 4 ... Thu Jan 7 on Monday to Friday
    assert review.provisional and review.due_on == D(2027, 1, 7)
    handling = deadlines_of(desk, accepted)["handling"]
    # 30 calendar days end on Sat Jan 2: the next working day, on Monday to Friday, is Jan 4
    assert handling.provisional and handling.due_on == D(2027, 1, 4)
    page = desk.get("intake", f"/workspace/cases/{waiting}/deadlines")
    assert page.status_code == 200 and "2027-01-07" in page.text and "(provisional)" in page.text

    assert confirm(desk).status_code == 303
    review = deadlines_of(desk, waiting)["initial_review"]
    # 元旦 through Jan 4: Jan 5, 6, 7, 8, 11 are the five January working days
    assert not review.provisional and review.due_on == D(2027, 1, 11)
    handling = deadlines_of(desk, accepted)["handling"]
    # the real calendar would say Jan 5; the reporter's period keeps its date
    assert not handling.provisional and handling.due_on == D(2027, 1, 4)
    page = desk.get("intake", f"/workspace/cases/{waiting}/deadlines")
    assert "2027-01-11" in page.text and "(provisional)" not in page.text
    details = audit_details(desk, "deadline.recomputed")
    assert any(
        f"deadline={review.id}" in d and "from=2027-01-07 to=2027-01-11" in d for d in details
    )
    assert any(f"deadline={handling.id}" in d and "reporter_date_kept=True" in d for d in details)
    assert len(audit_details(desk, "calendar.year_confirmed")) == 1
    calendar = desk.get("admin", "/workspace/calendar?year=2027").text
    assert "2027-01-04" in calendar and "元旦" in calendar


def test_calendar_labels_in_three_languages(desk: Desk) -> None:
    desk.use("admin")
    for lang, words in (
        ("zh-CN", "尚无已确认的 2027 年安排"),
        ("zh-TW", "尚無已確認的 2027 年安排"),
        ("en", ASK),
    ):
        home = desk.client.get("/workspace/", headers={"accept-language": lang})
        assert words in home.text, lang
        page = desk.client.get("/workspace/calendar?year=2027", headers={"accept-language": lang})
        assert "calendar/year" in page.text
