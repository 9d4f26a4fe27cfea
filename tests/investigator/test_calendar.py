"""The Chinese working-day calendar (W10): 国庆, 春节, 调休 and the administrator's overrides."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from investigator.domain.calendar import (
    CalendarYearMissing,
    WorkCalendar,
    covered_years,
    load_calendar,
    package_years,
    remove_override,
    set_override,
)
from portal.kernel.db.models import AuditEntry
from portal.kernel.services import Services

D = dt.date
CAL = WorkCalendar()


def test_package_holidays_and_make_up_working_days() -> None:
    assert not CAL.is_workday(D(2025, 10, 1))  # 国庆
    assert not CAL.is_workday(D(2025, 10, 8))
    assert CAL.is_workday(D(2025, 10, 9))
    assert CAL.is_workday(D(2025, 10, 11))  # a 调休 Saturday
    assert CAL.is_workday(D(2025, 9, 28))  # a 调休 Sunday
    assert not CAL.is_workday(D(2025, 1, 29))  # 春节
    assert CAL.is_workday(D(2025, 2, 8))  # 调休 Saturday after 春节
    assert not CAL.is_workday(D(2025, 11, 1))  # an ordinary Saturday


def test_working_days_skip_national_day_and_count_the_make_up_saturday() -> None:
    # start day not counted: Sep 30 (1), Oct 1-8 holiday, Oct 9 (2), Oct 10 (3)
    assert CAL.add_working_days(D(2025, 9, 29), 3) == D(2025, 10, 10)
    # the 3rd working day after Sep 30 is the 调休 Saturday Oct 11
    assert CAL.add_working_days(D(2025, 9, 30), 3) == D(2025, 10, 11)
    # 15 working days from Fri Sep 26: Sun Sep 28 (调休) counts, the holiday does not
    assert CAL.add_working_days(D(2025, 9, 26), 15) == D(2025, 10, 23)
    assert CAL.add_working_days(D(2025, 9, 26), 0) == D(2025, 9, 26)


def test_working_days_across_spring_festival() -> None:
    # Sun Jan 26 is a 调休 working day (1), Jan 27 (2), Jan 28 - Feb 4 holiday, Feb 5 (3)
    assert CAL.add_working_days(D(2025, 1, 24), 3) == D(2025, 2, 5)
    assert CAL.working_days_between(D(2025, 1, 24), D(2025, 2, 5)) == 3


def test_calendar_day_period_ending_on_a_rest_day_rolls_to_the_next_working_day() -> None:
    assert CAL.add_calendar_days(D(2025, 9, 1), 30) == D(2025, 10, 9)  # Oct 1 is 国庆
    assert CAL.add_calendar_days(D(2025, 11, 1), 7) == D(2025, 11, 10)  # Sat -> Mon
    assert CAL.add_calendar_days(D(2025, 11, 3), 2) == D(2025, 11, 5)  # a working day
    assert CAL.add_months(D(2025, 7, 1), 3) == D(2025, 10, 9)  # Oct 1 -> after 国庆
    # Feb has no 30th: its last day, Sat Feb 28 2026, is a 调休 working day of 春节 2026
    assert CAL.add_months(D(2025, 11, 30), 3) == D(2026, 2, 28)


def test_a_year_outside_the_package_raises_instead_of_guessing() -> None:
    missing = max(package_years()) + 1
    with pytest.raises(CalendarYearMissing) as err:
        CAL.is_workday(D(missing, 3, 2))
    assert err.value.year == missing
    with pytest.raises(CalendarYearMissing):
        CAL.add_working_days(D(missing - 1, 12, 30), 5)
    assert missing not in CAL.covered_years()


def test_an_override_does_not_cover_a_year_only_a_confirmed_year_does() -> None:
    missing = max(package_years()) + 1
    jan1 = D(missing, 1, 1)
    cal = WorkCalendar(overrides={jan1: False})
    assert missing not in cal.covered_years()
    with pytest.raises(CalendarYearMissing):
        cal.is_workday(jan1)
    monday = next(D(missing, 1, d) for d in range(2, 9) if D(missing, 1, d).weekday() == 0)
    lenient = cal.lenient()  # provisional: Monday to Friday plus what was entered
    assert not lenient.is_workday(jan1) and lenient.is_workday(monday)
    confirmed = WorkCalendar(overrides={jan1: False}, confirmed=frozenset({missing}))
    assert missing in confirmed.covered_years()
    assert not confirmed.is_workday(jan1)
    assert confirmed.is_workday(monday)
    assert confirmed.source(jan1) == "override"
    assert confirmed.source(monday) == "weekday"


async def test_administrator_override_wins_over_the_package(services: Services) -> None:
    async with services.db.write() as s:
        await set_override(s, D(2025, 10, 8), True, "make-up day", actor=None)  # type: ignore[arg-type]
        await set_override(s, D(2025, 11, 3), False, "local holiday", actor=None)  # type: ignore[arg-type]
    async with services.db.read() as s:
        cal = await load_calendar(s)
        assert cal.is_workday(D(2025, 10, 8))
        assert not cal.is_workday(D(2025, 11, 3))
        assert cal.add_working_days(D(2025, 9, 30), 1) == D(2025, 10, 8)
        actions = (await s.execute(select(AuditEntry.action))).scalars().all()
        assert actions.count("calendar.override") == 2
    async with services.db.write() as s:
        assert await remove_override(s, D(2025, 10, 8), actor=None)  # type: ignore[arg-type]
    async with services.db.read() as s:
        assert not (await load_calendar(s)).is_workday(D(2025, 10, 8))
        assert 2025 in await covered_years(s)


def test_year_days_lists_holidays_and_working_weekends() -> None:
    days = {d: (work, src) for d, work, src in CAL.year_days(2025)}
    assert days[D(2025, 10, 1)] == (False, "package")
    assert days[D(2025, 10, 11)] == (True, "package")
    assert D(2025, 11, 1) not in days  # an ordinary weekend is not listed
