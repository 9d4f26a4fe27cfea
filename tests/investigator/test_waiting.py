"""The "waiting for me" page per role over HTTP, and ``policy.case_action_clause`` agreeing
with ``policy.may_act_on_case`` on every case of the world (the page's one source of truth).
The world is in ``tests/investigator/list_world.py``."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from investigator.policy import (
    CLAUSE_ACTIONS,
    Principal,
    case_action_clause,
    may_act_on_case,
)
from investigator.roles import roles_of
from portal.kernel.db.models import Case, User
from portal.kernel.services import Services
from tests.investigator.list_world import World, build, fix_clock
from tests.investigator.ws_helpers import Desk, run

_SECTION = re.compile(r'<section id="w-([a-z_]+)"(.*?)</section>', re.S)
_NUMBER = re.compile(r'<td><a href="[^"]+">(\d+)</a></td>')


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    yield from fix_clock()


@pytest.fixture
def world(client: TestClient[Litestar], services: Services) -> World:
    return build(Desk(client, services))


def waiting(world: World, who: str) -> dict[str, set[str]]:
    """section -> the letters of the cases listed in it."""
    page = world.desk.get(who, "/workspace/waiting")
    assert page.status_code == 200
    return {
        name: {world.letter_of(n) for n in _NUMBER.findall(body)}
        for name, body in _SECTION.findall(page.text)
    }


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        # G2: the approver declared a conflict; D: an extension asked by the lead
        ("approver", {"approvals": {"G", "D"}, "rewards": {"H"}, "overdue": set(),
                      "messages": set()}),
        # inv asked for the identity on D: the custodian decides, never inv
        ("custodian", {"identity": {"D"}, "overdue": set(), "messages": set()}),
        # H awaits the officer's decision, I its payment
        ("rewards", {"rewards": {"H", "I"}, "overdue": set(), "messages": set()}),
        ("liaison", {"report_backs": {"J"}, "overdue": set(), "messages": set()}),
        ("intake", {"overdue": {"B", "E"}, "messages": set()}),
        # intake2 declared a conflict on E
        ("intake2", {"overdue": {"B"}, "messages": set()}),
        # the reporter wrote last on D and F; inv is F's subject and never sees it
        ("lead", {"overdue": set(), "messages": {"D", "F"}}),
        ("inv", {"overdue": set(), "messages": {"D"}}),
        ("admin", {}),
        # the independent channel: K's plan waits for the reviewer, never the centre's approver
        ("reviewer", {"approvals": {"K"}, "identity": set(), "rewards": set(),
                      "overdue": set(), "messages": set()}),
    ],
)  # fmt: skip
def test_waiting_for_me_per_role(world: World, who: str, expected: dict[str, set[str]]) -> None:
    assert waiting(world, who) == expected


def test_waiting_page_links_and_words(world: World) -> None:
    client = world.desk.use("rewards")
    page = client.get("/workspace/waiting").text
    assert f'href="/workspace/cases/{world.ids["I"]}/reward"' in page
    assert "Approved reward to pay" in page and "Reward proposal to decide" in page
    assert "reward_payment" not in page.replace('id="w-', "")  # no code as text
    admin = world.desk.get("admin", "/workspace/waiting").text
    assert "Your roles have no cases to act on." in admin
    # linked from the workspace navigation, for everyone
    assert 'href="/workspace/waiting"' in world.desk.get("admin", "/workspace/").text
    client = world.desk.use("rewards")
    for language, title, what in (
        ("zh-CN", "待我处理", "待支付的已批准奖励"),
        ("zh-TW", "待我處理", "待支付的已核准獎勵"),
        ("en", "Waiting for me", "Approved reward to pay"),
    ):
        client.headers["accept-language"] = language
        page = client.get("/workspace/waiting").text
        assert title in page and what in page, language
    client.headers["accept-language"] = "en"


def test_waiting_needs_a_session(world: World) -> None:
    r = world.desk.anonymous().get("/workspace/waiting", follow_redirects=False)
    assert r.status_code in (302, 303) and "/workspace" in r.headers["location"]


def test_the_clauses_agree_with_may_act_on_case(world: World) -> None:
    """Every clause action, every person, every case of the world: the SQL clause selects a
    case exactly when ``may_act_on_case`` allows the action (subjects and conflicts included)."""

    async def check() -> int:
        compared = 0
        async with world.desk.services.db.read() as s:
            users = list((await s.execute(select(User))).scalars())
            case_ids = list((await s.execute(select(Case.id))).scalars())
            for user in users:
                p = Principal(user.id, roles_of(user.roles), user.department_id)
                for action in sorted(CLAUSE_ACTIONS):
                    clause = await case_action_clause(p, action)
                    selected = set((await s.execute(select(Case.id).where(clause))).scalars())
                    allowed = {c for c in case_ids if await may_act_on_case(s, p, c, action)}
                    assert selected == allowed, (user.username, action)
                    compared += len(case_ids)
        return compared

    assert run(world.desk.client, check) > 500
