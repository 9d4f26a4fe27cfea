"""The inbox and case lists over HTTP: current deadline, working days left and its badge,
each filter, sorting, search by case number, pages, and the originals rule (A2) in every
list, count and filter result. The world is in ``tests/investigator/list_world.py``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import event

from portal.kernel.db.models import Case
from portal.kernel.services import Services
from tests.investigator.list_world import World, add_plain_cases, build, deadline, fix_clock
from tests.investigator.ws_helpers import Desk, case_ids_on, run

_ROW = re.compile(r"<tr>\s*<td><a href=\"/workspace/cases/[0-9a-f]{32}\">(\d+)</a>(.*?)</tr>", re.S)
_COUNT = re.compile(r"(\d+) cases? (?:in your view|match)")


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    yield from fix_clock()


@pytest.fixture
def world(client: TestClient[Litestar], services: Services) -> World:
    return build(Desk(client, services))


def rows(html: str) -> dict[str, str]:
    """case number -> the rest of its row, in page order."""
    return dict(_ROW.findall(html))


def letters(world: World, path: str, who: str = "intake") -> list[str]:
    page = world.desk.get(who, path)
    assert page.status_code == 200, page.status_code
    return [world.letter_of(n) for n in rows(page.text)]


def count_on(html: str) -> int:
    match = _COUNT.search(html)
    assert match, "no count on the page"
    return int(match.group(1))


def test_each_case_shows_its_current_deadline_days_left_and_badge(world: World) -> None:
    page = world.desk.get("intake", "/workspace/inbox")
    assert page.status_code == 200
    found = rows(page.text)
    a, b, c = (found[world.numbers[k]] for k in "ABC")
    assert "2026-11-04" in a and 'class="badge badge-ok"' in a and "On time" in a
    assert re.search(r'class="days-left">2\b', a)
    assert "2026-10-23" in b and 'class="badge badge-overdue"' in b and "6 days late" in b
    assert "Not set" in c and not any(
        f"badge-{state}" in c for state in ("ok", "warning", "overdue")
    )
    assert "Initial review" in a  # the deadline's stage in words, never its code
    assert "initial_review" not in page.text
    # the lead's case at 62 % of its time, ignoring the deadline already met
    d = rows(world.desk.get("lead", "/workspace/cases").text)[world.numbers["D"]]
    assert "2026-11-05" in d and "2026-10-14" not in d
    assert 'class="badge badge-warning"' in d and "Due soon" in d
    assert re.search(r'class="days-left">3\b', d)


def test_codes_are_words_in_each_language(world: World) -> None:
    client = world.desk.use("intake")
    for language, words in (
        ("zh-CN", ("受贿、索贿、行贿", "网上表单", "待我处理", "剩余工作日")),
        ("zh-TW", ("受賄、索賄、行賄", "待我處理", "剩餘工作日")),
        ("en", ("Bribery and kickbacks", "Web form", "Waiting for me", "Working days left")),
    ):
        client.headers["accept-language"] = language
        page = client.get("/workspace/inbox").text
        for word in words:
            assert word in page, (language, word)
        cells = " ".join(rows(page).values())
        for code in ("bribery", ">web<", ">phone<", ">high<", "initial_review"):
            assert code not in cells, (language, code)
    client.headers["accept-language"] = "en"


@pytest.mark.parametrize(
    ("query", "who", "expected"),
    [
        ("stage=triage", "intake", {"B"}),
        ("stage=received", "intake", {"A", "C", "E"}),
        ("category=fraud", "intake", {"B"}),
        ("channel=phone", "intake", {"B"}),
        ("channel=letter", "intake", {"C"}),
        ("severity=low", "intake", {"C"}),
        ("severity=high", "intake", {"B"}),
        ("due=2", "intake", {"A"}),
        ("due=1", "intake", set()),
        ("overdue=1", "intake", {"B", "E"}),
        ("overdue=1&channel=web", "intake", {"E"}),
        ("severity=critical", "lead", {"D"}),
        ("due=3", "lead", {"D"}),
        ("overdue=1", "lead", set()),
    ],
)
def test_each_filter(world: World, query: str, who: str, expected: set[str]) -> None:
    path = ("/workspace/inbox?" if who == "intake" else "/workspace/cases?") + query
    page = world.desk.get(who, path)
    assert page.status_code == 200
    assert {world.letter_of(n) for n in rows(page.text)} == expected
    if expected:
        assert count_on(page.text) == len(expected)
    else:
        assert "No case matches these filters." in page.text


def test_unknown_filter_values_are_ignored_never_echoed(world: World) -> None:
    page = world.desk.get(
        "intake", "/workspace/inbox?stage=<b>x</b>&channel=fax&sort=content&due=-3&page=zz"
    )
    assert page.status_code == 200
    assert "<b>x</b>" not in page.text and "fax" not in page.text
    assert {world.letter_of(n) for n in rows(page.text)} == {"A", "B", "C", "E"}
    # the inbox never widens beyond the intake stages, even when asked
    assert "D" not in letters(world, "/workspace/inbox?stage=investigating")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["A", "E", "B", "C"]),  # default: newest received first
        ("sort=received", ["C", "B", "E", "A"]),
        ("sort=received&dir=desc", ["A", "E", "B", "C"]),
        ("sort=due", ["B", "E", "A", "C"]),  # no deadline last
        ("sort=due&dir=desc", ["A", "E", "B", "C"]),  # no deadline last either way
        ("sort=number", ["A", "B", "C", "E"]),
        ("sort=number&dir=desc", ["E", "C", "B", "A"]),
        ("sort=channel", ["C", "B", "E", "A"]),  # letter, phone, web (then newest number)
        ("sort=severity", ["C", "B", "E", "A"]),  # low, high, then unclassified
        ("sort=stage", ["E", "C", "A", "B"]),  # received before triage
        ("sort=category&dir=desc", ["B", "E", "C", "A"]),  # Fraud after Bribery
    ],
)
def test_sorting(world: World, query: str, expected: list[str]) -> None:
    assert letters(world, "/workspace/inbox?" + query) == expected


def test_sort_links_keep_the_filters_and_turn_the_order(world: World) -> None:
    page = world.desk.get("intake", "/workspace/inbox?channel=web&sort=due").text
    assert 'aria-sort="ascending"' in page
    assert 'href="/workspace/inbox?channel=web&amp;sort=due&amp;dir=desc"' in page
    assert 'href="/workspace/inbox?channel=web&amp;sort=number&amp;dir=asc"' in page


def test_search_by_case_number(world: World) -> None:
    number = world.numbers["B"]
    assert letters(world, f"/workspace/inbox?number={number}") == ["B"]
    assert letters(world, f"/workspace/cases?number={number}") == ["B"]
    # the start of a number finds every case it begins
    assert set(letters(world, f"/workspace/inbox?number={number[:4]}")) == {"A", "B", "C", "E"}
    none = world.desk.get("intake", "/workspace/cases?number=99999999")
    assert "No case with that number in your view." in none.text and not rows(none.text)
    # not digits: ignored, never an error or an echo
    odd = world.desk.get("intake", "/workspace/cases?number=%27%20OR%201%3D1")
    assert odd.status_code == 200 and "OR 1=1" not in odd.text


def test_pages(world: World) -> None:
    run(world.desk.client, lambda: add_plain_cases(world.desk.services, world, 27, "P"))
    first = world.desk.get("intake", "/workspace/inbox?per_page=25&sort=number")
    assert count_on(first.text) == 31
    one = list(rows(first.text))
    assert len(one) == 25 and 'rel="next"' in first.text and 'rel="prev"' not in first.text
    assert "Page 1 of 2" in first.text
    assert 'href="/workspace/inbox?sort=number&amp;per_page=25&amp;page=2"' in first.text
    second = world.desk.get("intake", "/workspace/inbox?per_page=25&sort=number&page=2")
    two = list(rows(second.text))
    assert len(two) == 6 and 'rel="prev"' in second.text and 'rel="next"' not in second.text
    assert not set(one) & set(two) and sorted(one + two) == one + two
    # a page past the end is empty, with the way back
    past = world.desk.get("intake", "/workspace/inbox?per_page=25&page=9")
    assert not rows(past.text) and 'rel="prev"' in past.text
    # the default page holds 50
    assert len(rows(world.desk.get("intake", "/workspace/inbox").text)) == 31


def test_an_excluded_person_never_sees_the_case_in_a_list_count_or_filter(world: World) -> None:
    e, f = world.numbers["E"], world.numbers["F"]
    # intake2 declared a conflict on E: no row, not counted, not found by any filter or search
    for path in (
        "/workspace/inbox",
        "/workspace/cases",
        "/workspace/inbox?overdue=1",
        "/workspace/inbox?channel=web",
        "/workspace/inbox?stage=received",
        "/workspace/inbox?sort=due",
        f"/workspace/inbox?number={e}",
        f"/workspace/cases?number={e[:6]}",
    ):
        mine = world.desk.get("intake", path).text
        theirs = world.desk.get("intake2", path).text
        assert e in mine and world.ids["E"] in case_ids_on(mine), path
        assert world.ids["E"] not in case_ids_on(theirs), path
        assert e not in rows(theirs), path
        if rows(theirs):
            assert count_on(theirs) == count_on(mine) - 1, path
    assert count_on(world.desk.get("intake2", "/workspace/inbox?overdue=1").text) == 1
    # inv is named as F's subject: a team member, yet F is in none of their lists
    for path in (
        "/workspace/cases",
        "/workspace/cases?stage=investigating",
        f"/workspace/cases?number={f}",
    ):
        assert f in world.desk.get("lead", path).text, path
        assert f not in rows(world.desk.get("inv", path).text), path
    assert count_on(world.desk.get("inv", "/workspace/cases").text) == 1


def _statements(services: Services) -> list[str]:
    seen: list[str] = []
    engines = {services.db.engine.sync_engine, services.db.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_a_page_costs_the_same_queries_whatever_its_length(world: World) -> None:
    client = world.desk.use("intake")
    client.get("/workspace/inbox")  # warm
    seen = _statements(world.desk.services)
    client.get("/workspace/inbox?sort=due")
    few = len(seen)
    run(world.desk.client, lambda: add_plain_cases(world.desk.services, world, 30, "Q"))
    seen.clear()
    page = client.get("/workspace/inbox?sort=due")
    assert len(rows(page.text)) == 34
    assert len(seen) == few, seen
    deadline_reads = [q for q in seen if "FROM case_deadlines" in q and "min(" not in q]
    assert len(deadline_reads) == 1, deadline_reads


def test_a_deadline_in_a_year_the_calendar_lacks_is_counted_monday_to_friday(world: World) -> None:
    """2027 is not in the working-day calendar yet: the deadline is still shown, its days
    counted Monday to Friday and marked provisional, never left out."""

    async def due_in_2027() -> None:
        async with world.desk.services.db.write() as s:
            case = await s.get(Case, world.ids["C"])
            assert case is not None
            s.add(deadline(case, "initial_review", dt.date(2026, 12, 28), dt.date(2027, 1, 5)))

    run(world.desk.client, due_in_2027)
    page = world.desk.get("intake", "/workspace/inbox")
    c = rows(page.text)[world.numbers["C"]]
    assert "2027-01-05" in c and "(provisional)" in c and 'class="badge badge-ok"' in c
    # 2026-11-03 .. 2026-12-31 on the calendar (43), then 2027-01-01 .. 01-05 Monday to Friday (3)
    assert re.search(r'class="days-left">46\b', c), c
    a = rows(page.text)[world.numbers["A"]]
    assert "(provisional)" not in a
