"""A2 at arrival (issue 13, point 5): an intake officer named as the accused gets no key.

The accused person's name in the report is compared, normalised as subject fingerprints are
(white space removed, case folded), with every enabled staff account's display name and user
name. A match gets no key wrap, the case is excluded for that account at once (404 on the case,
absent from every list, no key shared later), and intake sees the flag and the proposed link,
which one action confirms.
"""

from __future__ import annotations

import html

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select, update

from portal.kernel.db.models import Case, Conflict, KeyWrap, Subject, User
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, case_ids_on, run
from tests.portal.test_reporter_journeys import (
    case_page,
    receipt_of,
    report_fields,
    sign_in,
    submit,
)

ACCUSED_NAME = "张 伟"  # the account's display name
REPORTED_AS = "张伟"  # as the reporter typed it: the same name once normalised
FLAG = {
    "en": "Possible conflict found when the report arrived",
    "zh-CN": "举报到达时发现可能的利益冲突",
    "zh-TW": "舉報到達時發現可能的利益衝突",
}


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("accused", "intake_officer")
    d.add("intake", "intake_officer")
    d.add("custodian", "identity_custodian")

    async def rename() -> None:
        async with services.db.write() as s:
            await s.execute(
                update(User)
                .where(User.id == d.user_id("accused"))
                .values(display_name=ACCUSED_NAME)
            )

    run(client, rename)
    return d


def _report_about(desk: Desk, name: str) -> tuple[str, str]:
    desk.anonymous()
    page = submit(
        desk.client,
        report_fields(subject_name=[name, "", ""], subject_department=["Purchasing", "", ""]),
    )
    assert page.status_code == 200, page.text
    code = receipt_of(page)

    async def newest() -> str:
        async with desk.services.db.read() as s:
            row = await s.execute(select(Case.id).order_by(Case.number.desc()).limit(1))
            return str(row.scalar_one())

    return str(run(desk.client, newest)), code


def _facts(desk: Desk, case_id: str) -> tuple[set[str | None], list[tuple[str, str | None]]]:
    async def go() -> tuple[set[str | None], list[tuple[str, str | None]]]:
        async with desk.services.db.read() as s:
            wraps = set(
                (
                    await s.execute(
                        select(KeyWrap.user_id).where(
                            KeyWrap.case_id == case_id, KeyWrap.user_id.is_not(None)
                        )
                    )
                ).scalars()
            )
            conflicts = [
                (str(u), sid)
                for u, sid in (
                    await s.execute(
                        select(Conflict.user_id, Conflict.subject_id).where(
                            Conflict.case_id == case_id
                        )
                    )
                ).all()
            ]
            return wraps, conflicts

    result: tuple[set[str | None], list[tuple[str, str | None]]] = run(desk.client, go)
    return result


def _lists(desk: Desk, who: str) -> set[str]:
    seen: set[str] = set()
    for path in ("/workspace/inbox", "/workspace/cases", "/workspace/"):
        page = desk.get(who, path)
        assert page.status_code == 200, (who, path, page.status_code)
        seen |= case_ids_on(page.text)
    return seen


def test_A2_an_accused_intake_officer_gets_no_key_and_never_sees_the_case(desk: Desk) -> None:
    case_id, _code = _report_about(desk, REPORTED_AS)
    accused, other = desk.user_id("accused"), desk.user_id("intake")

    wraps, conflicts = _facts(desk, case_id)
    assert accused not in wraps and other in wraps  # no key at arrival; the colleague has one
    assert len(conflicts) == 1 and conflicts[0][0] == accused and conflicts[0][1] is not None

    # excluded at once: 404 on the case, in no list, not in number search
    assert desk.get("accused", f"/workspace/cases/{case_id}").status_code == 404
    assert case_id not in _lists(desk, "accused")
    # the colleague sees it, with the flag and the proposal in words
    assert case_id in _lists(desk, "intake")
    for lang, words in FLAG.items():
        page = desk.use("intake").get(
            f"/workspace/cases/{case_id}", headers={"accept-language": lang}
        )
        assert page.status_code == 200 and words in page.text, lang
    page = desk.get("intake", f"/workspace/cases/{case_id}")
    text = html.unescape(page.text)
    assert ACCUSED_NAME in text and "Confirm: this account is the person named" in text
    assert f'name="user_id" value="{accused}"' in page.text
    # the colleague opened the case: intake key sharing never reaches the accused
    assert accused not in _facts(desk, case_id)[0]

    # one action confirms the link: the account is now the subject itself
    sid = conflicts[0][1]
    confirmed = desk.post(
        "intake", f"/workspace/cases/{case_id}/subjects/{sid}/link", {"user_id": accused}
    )
    assert confirmed.status_code == 303, confirmed.text

    async def linked() -> tuple[str | None, list[str | None]]:
        async with desk.services.db.read() as s:
            subject = await s.get(Subject, sid)
            assert subject is not None
            rest = (
                await s.execute(select(Conflict.subject_id).where(Conflict.case_id == case_id))
            ).scalars()
            return subject.user_id, list(rest)

    user_id, proposals = run(desk.client, linked)
    assert user_id == accused and proposals == [None]
    after = desk.get("intake", f"/workspace/cases/{case_id}")
    assert FLAG["en"] not in after.text and "(linked to a staff account)" in after.text
    assert desk.get("accused", f"/workspace/cases/{case_id}").status_code == 404
    assert case_id not in _lists(desk, "accused")


def test_A2_the_user_name_matches_too_and_an_unrelated_name_matches_nobody(desk: Desk) -> None:
    by_username, _code = _report_about(desk, " ACCUSED ")  # the account's user name, spaced, upper
    wraps, conflicts = _facts(desk, by_username)
    assert desk.user_id("accused") not in wraps
    assert [u for u, _sid in conflicts] == [desk.user_id("accused")]

    unrelated, _code = _report_about(desk, "张伟伟")
    wraps, conflicts = _facts(desk, unrelated)
    assert {desk.user_id("accused"), desk.user_id("intake")} <= wraps and conflicts == []
    assert desk.get("accused", f"/workspace/cases/{unrelated}").status_code == 200


def test_A2_a_retaliation_report_keeps_the_accused_out_from_its_first_moment(desk: Desk) -> None:
    """The urgent retaliation case (W12) made from the reporter's follow-up page inherits the
    original's exclusions: the accused officer gets no key and a 404 there too."""
    case_id, code = _report_about(desk, REPORTED_AS)
    client = desk.anonymous()
    assert sign_in(client, code).status_code == 303
    _page, csrf, ids = case_page(client)
    assert ids == [case_id]
    sent = client.post(
        "/follow-up/retaliation",
        data={"_csrf_token": csrf, "case_id": case_id, "text": "I was moved to night shifts."},
        follow_redirects=False,
    )
    assert sent.status_code == 303 and sent.headers["location"].endswith("done=retaliation")

    async def retaliation_case() -> str:
        async with desk.services.db.read() as s:
            row = await s.execute(select(Case.id).where(Case.retaliation_of == case_id))
            return str(row.scalar_one())

    new_id = str(run(desk.client, retaliation_case))
    wraps, _conflicts = _facts(desk, new_id)
    assert desk.user_id("accused") not in wraps and desk.user_id("intake") in wraps
    assert desk.get("accused", f"/workspace/cases/{new_id}").status_code == 404
    assert new_id not in _lists(desk, "accused")
    assert desk.get("intake", f"/workspace/cases/{new_id}").status_code == 200


def test_A2_a_namesake_found_to_be_another_person_gets_the_case_back(desk: Desk) -> None:
    """ "Not the same person": intake ends the automatic exclusion of a namesake, who (an
    intake officer) receives the case key at once and sees the case; audited. A declared
    conflict is not undone this way, and the answer needs the right to manage the subjects."""
    case_id, _code = _report_about(desk, REPORTED_AS)
    namesake = desk.user_id("accused")
    _wraps, conflicts = _facts(desk, case_id)
    sid = conflicts[0][1]
    page = html.unescape(desk.get("intake", f"/workspace/cases/{case_id}").text)
    assert "Not the same person: end this exclusion" in page
    assert f"/subjects/{sid}/not-linked" in page
    # the namesake cannot answer for themself (the case is not theirs to see)
    refused = desk.post(
        "accused", f"/workspace/cases/{case_id}/subjects/{sid}/not-linked", {"user_id": namesake}
    )
    assert refused.status_code == 404
    assert namesake not in _facts(desk, case_id)[0]

    done = desk.post(
        "intake", f"/workspace/cases/{case_id}/subjects/{sid}/not-linked", {"user_id": namesake}
    )
    assert done.status_code == 303, done.text
    wraps, conflicts = _facts(desk, case_id)
    assert namesake in wraps and conflicts == []
    assert desk.get("accused", f"/workspace/cases/{case_id}").status_code == 200
    assert case_id in _lists(desk, "accused")
    after = desk.get("intake", f"/workspace/cases/{case_id}").text
    assert FLAG["en"] not in after

    async def audited() -> list[str | None]:
        from portal.kernel.db.models import AuditEntry

        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(AuditEntry.detail).where(
                    AuditEntry.case_id == case_id,
                    AuditEntry.action == "case.conflict_dismissed",
                )
            )
            return list(rows.scalars())

    assert run(desk.client, audited) == [f"user={namesake} key_given=True"]
    # the audit log says it in words
    desk.add("auditor", "auditor")
    log = html.unescape(desk.get("auditor", "/workspace/audit").text)
    assert "Found a name match at arrival to be another person" in log
    # once answered there is nothing left to dismiss
    again = desk.post(
        "intake", f"/workspace/cases/{case_id}/subjects/{sid}/not-linked", {"user_id": namesake}
    )
    assert again.status_code == 400
    assert "There is no such possible conflict on this case." in html.unescape(again.text)


def test_A2_a_declared_conflict_is_not_dismissed_as_a_namesake(desk: Desk) -> None:
    case_id, _code = _report_about(desk, "someone else entirely")
    declared = desk.post("intake", f"/workspace/cases/{case_id}/conflict", {"confirm": "yes"})
    assert declared.status_code == 303, declared.text

    async def subject_id() -> str:
        async with desk.services.db.read() as s:
            row = await s.execute(select(Subject.id).where(Subject.case_id == case_id))
            return str(row.scalars().first())

    sid = run(desk.client, subject_id)
    answer = desk.post(  # a colleague tries to end it
        "accused",
        f"/workspace/cases/{case_id}/subjects/{sid}/not-linked",
        {"user_id": desk.user_id("intake")},
    )
    assert answer.status_code == 400
    _wraps, conflicts = _facts(desk, case_id)
    assert conflicts == [(desk.user_id("intake"), None)]
