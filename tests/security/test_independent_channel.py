"""The independent channel (issue 18, item 1): a report about the 法审风控中心 itself.

A reporter ticks "my report concerns the 法审风控中心 or its staff"; such a report (and one whose
accused names every intake officer) is encrypted to the independent reviewers only, never to an
intake officer, is absent from the center's lists and counts (statistics: totals only), answers
404 to the center, and is refused like a report without a reader (C7) when no independent
reviewer exists. The role is the installation owner's: the workspace administrator can neither
grant it nor manage such an account. Everything through the real app.
"""

from __future__ import annotations

import datetime as dt
import html

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import func, select, update

from crypto.errors import CryptoError
from crypto.recipients import unlock_with_password, unwrap_for_recipient
from investigator.domain import statistics
from investigator.policy import Principal
from investigator.roles import roles_of
from portal.case.sealing import open_json, wrap_aad
from portal.kernel import clock
from portal.kernel.db.models import AuditEntry, Case, KeyWrap, TeamMember, User
from portal.kernel.services import Services
from tests.investigator.ws_helpers import Desk, case_ids_on, run
from tests.portal.test_reporter_journeys import TOKEN_RE, receipt_of, report_fields, submit

CANARY = "CANARY-independent-7f3e91 the head of the center takes kickbacks"
OPTION = "My report concerns the 法审风控中心 or its staff"
NO_REVIEWER = "No independent reviewer (audit committee or supervisory board) has been appointed"


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    d = Desk(client, services)
    d.add("intake", "intake_officer")
    d.add("custodian", "identity_custodian")
    d.add("approver", "approver")
    d.add("outsider", "investigator")
    d.add("auditor", "auditor")
    d.add("admin", "administrator")
    return d


def _reviewer(desk: Desk, name: str = "board") -> None:
    desk.add(name, "independent_reviewer")


def _send(desk: Desk, *, real_name: bool = False, **overrides: str | list[str]) -> str:
    """A report through the public form; returns the new case's id (after a receipt)."""
    fields = {"what": CANARY, "about_centre": "yes", **overrides}
    if real_name:
        fields |= {"identity_mode": "real_name", "id_name": "举报人乙", "id_phone": "13900000000"}
    desk.anonymous()
    page = submit(desk.client, report_fields(**fields))
    assert page.status_code == 200, page.text
    receipt_of(page)

    async def newest() -> str:
        async with desk.services.db.read() as s:
            row = await s.execute(select(Case.id).order_by(Case.number.desc()).limit(1))
            return str(row.scalar_one())

    return str(run(desk.client, newest))


def _wraps(desk: Desk, case_id: str) -> list[KeyWrap]:
    async def go() -> list[KeyWrap]:
        async with desk.services.db.read() as s:
            rows = await s.execute(select(KeyWrap).where(KeyWrap.case_id == case_id))
            return list(rows.scalars())

    result: list[KeyWrap] = run(desk.client, go)
    return result


def _staff_wraps(desk: Desk, case_id: str, scope: str = "case") -> set[str]:
    return {w.user_id for w in _wraps(desk, case_id) if w.scope == scope and w.user_id}


def _team(desk: Desk, case_id: str) -> set[str]:
    async def go() -> set[str]:
        async with desk.services.db.read() as s:
            rows = await s.execute(select(TeamMember.user_id).where(TeamMember.case_id == case_id))
            return set(rows.scalars())

    return set(run(desk.client, go))


def _cases(desk: Desk) -> int:
    async def go() -> int:
        async with desk.services.db.read() as s:
            return int((await s.execute(select(func.count()).select_from(Case))).scalar_one())

    return int(run(desk.client, go))


def _seen(desk: Desk, who: str) -> tuple[set[str], str]:
    """The case ids on a person's lists, and the pages' text."""
    ids: set[str] = set()
    text = ""
    for path in ("/workspace/", "/workspace/inbox", "/workspace/cases"):
        page = desk.get(who, path)
        if page.status_code == 200:
            ids |= case_ids_on(page.text)
            text += html.unescape(page.text)
    return ids, text


def test_independent_report_is_wrapped_for_reviewers_only_and_hidden_from_the_center(
    desk: Desk,
) -> None:
    _reviewer(desk)
    case_id = _send(desk, real_name=True)
    board, intake = desk.user_id("board"), desk.user_id("intake")
    custodian = desk.user_id("custodian")

    # both keys: the independent reviewer only; the reporter's receipt wrap besides
    assert _staff_wraps(desk, case_id, "case") == {board}
    assert _staff_wraps(desk, case_id, "identity") == {board}
    assert intake not in {w.user_id for w in _wraps(desk, case_id)}
    assert custodian not in {w.user_id for w in _wraps(desk, case_id)}

    # the center: 404 on the case, on its files and number search, absent from every list
    assert desk.get("intake", f"/workspace/cases/{case_id}").status_code == 404
    for who in ("intake", "custodian", "approver", "outsider"):
        ids, text = _seen(desk, who)
        assert case_id not in ids and CANARY not in text, who

    async def number() -> str:
        async with desk.services.db.read() as s:
            case = await s.get(Case, case_id)
            assert case is not None and case.independent
            return case.number

    found = desk.get("intake", f"/workspace/cases?number={run(desk.client, number)}")
    assert case_id not in case_ids_on(found.text)

    # the independent reviewer triages it with the same screens
    ids, _text = _seen(desk, "board")
    assert case_id in ids
    page = desk.get("board", f"/workspace/cases/{case_id}")
    assert page.status_code == 200 and CANARY in html.unescape(page.text)
    # opening it shares no key with the center, whoever arrived since
    desk.add("intake2", "intake_officer")
    _reviewer(desk, "board2")
    assert desk.get("board", f"/workspace/cases/{case_id}").status_code == 200
    assert _staff_wraps(desk, case_id) == {board, desk.user_id("board2")}
    assert desk.get("intake2", f"/workspace/cases/{case_id}").status_code == 404


def test_canary_an_intake_officers_key_cannot_read_an_independent_report(desk: Desk) -> None:
    """Not a policy answer but the cryptography: no wrap of the case opens with the intake
    officer's private key, while the reviewer's opens the content with the canary in it."""
    _reviewer(desk)
    case_id = _send(desk)
    services = desk.services
    pepper = services.keyring.password_pepper

    async def users() -> dict[str, User]:
        async with services.db.read() as s:
            return {u.username: u for u in (await s.execute(select(User))).scalars()}

    accounts: dict[str, User] = run(desk.client, users)

    def private(name: str) -> bytes:
        return unlock_with_password(
            accounts[name].sealed_private_by_password, desk.staff[name].password, pepper
        )

    intake_key = private("intake")
    wraps = [w for w in _wraps(desk, case_id) if w.user_id]
    assert wraps, "the reviewer holds a wrap"
    for w in wraps:
        with pytest.raises(CryptoError):
            unwrap_for_recipient(intake_key, w.wrapped, wrap_aad(case_id, w.scope, w.user_id))
        # nor as if the wrap were addressed to the intake officer
        with pytest.raises(CryptoError):
            unwrap_for_recipient(
                intake_key, w.wrapped, wrap_aad(case_id, w.scope, accounts["intake"].id)
            )

    async def content() -> bytes:
        async with services.db.read() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            return case.content

    from crypto.envelope import field_aad

    board = accounts["board"]
    mine = next(w for w in wraps if w.user_id == board.id and w.scope == "case")
    key = unwrap_for_recipient(private("board"), mine.wrapped, wrap_aad(case_id, "case", board.id))
    assert open_json(key, run(desk.client, content), field_aad(case_id, "content"))["what"] == (
        CANARY
    )


def test_without_a_reviewer_the_option_says_so_and_such_a_report_is_refused(desk: Desk) -> None:
    client = desk.anonymous()
    form = client.get("/report/new")
    assert form.status_code == 200
    text = html.unescape(form.text)
    assert NO_REVIEWER in text and 'name="about_centre" value="yes" disabled' in form.text
    before = _cases(desk)
    refused = submit(client, report_fields(what=CANARY, about_centre="yes"))
    assert refused.status_code == 503
    assert _cases(desk) == before  # nothing stored, no receipt

    _reviewer(desk)
    form = desk.anonymous().get("/report/new")
    assert NO_REVIEWER not in html.unescape(form.text) and OPTION in html.unescape(form.text)
    assert 'name="about_centre" value="yes" disabled' not in form.text


@pytest.mark.parametrize("with_reviewer", [True, False])
def test_a_report_naming_every_intake_officer_takes_the_independent_channel(
    desk: Desk, with_reviewer: bool
) -> None:
    async def rename() -> None:
        async with desk.services.db.write() as s:
            await s.execute(
                update(User).where(User.id == desk.user_id("intake")).values(display_name="李 四")
            )

    run(desk.client, rename)
    if with_reviewer:
        _reviewer(desk)
        case_id = _send(desk, about_centre="", subject_name=["李四", "", ""])
        assert _staff_wraps(desk, case_id) == {desk.user_id("board")}
        assert desk.get("intake", f"/workspace/cases/{case_id}").status_code == 404
        assert desk.get("board", f"/workspace/cases/{case_id}").status_code == 200
    else:
        before = _cases(desk)
        desk.anonymous()
        page = submit(desk.client, report_fields(what=CANARY, subject_name=["李四", "", ""]))
        assert page.status_code == 503 and _cases(desk) == before


def test_the_team_of_an_independent_case_is_formed_outside_the_center(desk: Desk) -> None:
    _reviewer(desk)
    case_id = _send(desk)
    board = "board"
    for form in ({"severity": "high", "risk": "low", "category": "bribery", "department_id": ""},):
        assert desk.post(board, f"/workspace/cases/{case_id}/classify", form).status_code == 303
    accepted = desk.post(board, f"/workspace/cases/{case_id}/accept", {"expected_stage": "triage"})
    assert accepted.status_code == 303, accepted.text
    # an intake officer who investigates too: a team candidate on the center's cases, never
    # on this one (not offered, refused, no key); the domain refuses it as well
    desk.add("intake-inv", "intake_officer,investigator")
    page = desk.get(board, f"/workspace/cases/{case_id}").text
    picker = page[page.index('id="f-member"') :].split("</select>", 1)[0]
    assert f'value="{desk.user_id("outsider")}"' in picker
    assert f'value="{desk.user_id("intake-inv")}"' not in picker
    refused = desk.post(
        board,
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": desk.user_id("intake-inv"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert refused.status_code == 400
    assert desk.user_id("intake-inv") not in _staff_wraps(desk, case_id)

    async def domain_refuses() -> str:
        from investigator.domain import casework
        from portal.case.errors import WorkflowError

        async with desk.services.db.write() as s:
            case = await s.get(Case, case_id)
            user = await s.get(User, desk.user_id("intake-inv"))
            assert case is not None and user is not None
            try:
                await casework.add_member(
                    s, case, b"k" * 32, desk.user_id("board"), user, "member",
                    declared_no_conflict=True,
                )  # fmt: skip
            except WorkflowError as exc:
                return str(exc)
            return ""

    assert "an intake officer cannot join it" in run(desk.client, domain_refuses)
    added = desk.post(
        board,
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": desk.user_id("outsider"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert added.status_code == 303, added.text
    assert desk.user_id("outsider") in _staff_wraps(desk, case_id)
    assert desk.get("outsider", f"/workspace/cases/{case_id}").status_code == 200
    assert case_id in _seen(desk, "outsider")[0]
    assert case_id not in _seen(desk, "intake")[0]


def test_statistics_count_an_independent_case_in_the_total_only(desk: Desk) -> None:
    _reviewer(desk)
    normal = desk.anonymous()
    sent = submit(normal, report_fields(what="An ordinary report about purchasing."))
    assert sent.status_code == 200, sent.text
    _send(desk)
    assert _cases(desk) == 2

    async def figures(name: str) -> statistics.Report:
        async with desk.services.db.read() as s:
            user = (await s.execute(select(User).where(User.username == name))).scalar_one()
            viewer = Principal(user.id, roles_of(user.roles), user.department_id)
            today = clock.today()  # the portal's day (Asia/Shanghai), as cases are dated
            period = statistics.Period("custom", today - dt.timedelta(days=3), today)
            return await statistics.compute(s, viewer, period, today)

    center: statistics.Report = run(desk.client, lambda: figures("auditor"))
    assert center.total == 2  # the total holds it
    for dim, rows in center.breakdowns.items():  # no breakdown does
        assert sum(c.value for c in rows) == 1, dim
    assert sum(n for _b, n in center.trend) == 1
    board: statistics.Report = run(desk.client, lambda: figures("board"))
    assert board.total == 2 and sum(c.value for c in board.breakdowns["kind"]) == 2


def test_the_administrator_can_neither_grant_the_role_nor_manage_a_reviewer(desk: Desk) -> None:
    _reviewer(desk)
    board = desk.user_id("board")
    users = desk.get("admin", "/workspace/users")
    assert users.status_code == 200
    assert 'value="independent_reviewer"' not in users.text
    text = html.unescape(users.text)
    assert "Independent reviewer (audit committee or supervisory board)" in text
    assert "independent_reviewer" not in text.replace('"independent_reviewer"', "")
    made = desk.post(
        "admin",
        "/workspace/users",
        {"username": "sneaky", "display_name": "Sneaky", "roles": "independent_reviewer"},
    )
    assert made.status_code == 400
    for method, path, form in (
        ("GET", f"/workspace/users/{board}", {}),
        ("POST", f"/workspace/users/{board}", {"roles": "intake_officer"}),
        ("POST", f"/workspace/users/{board}/disable", {}),
        ("POST", f"/workspace/users/{board}/enable", {}),
        ("POST", f"/workspace/users/{board}/reset-two-step", {}),
    ):
        got = (
            desk.get("admin", path) if method == "GET" else desk.post("admin", path, form)
        ).status_code
        assert got == 404, (method, path, got)

    async def account() -> tuple[str, bool, int]:
        async with desk.services.db.read() as s:
            user = await s.get(User, board)
            assert user is not None
            sneaky = (
                await s.execute(select(func.count()).where(User.username == "sneaky"))
            ).scalar_one()
            return user.roles, user.disabled, int(sneaky)

    assert run(desk.client, account) == ("independent_reviewer", False, 0)

    # the owner's appointment is in the audit log, with no acting user
    async def appointed() -> list[str]:
        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(AuditEntry.detail).where(
                    AuditEntry.action == "user.appoint_independent",
                    AuditEntry.actor_user_id.is_(None),
                )
            )
            return list(rows.scalars())

    assert any(f"user={board}" in d for d in run(desk.client, appointed))


def test_an_independent_reviewer_is_never_an_intake_officer() -> None:
    from investigator.roles import RoleError, parse_roles

    with pytest.raises(RoleError):
        parse_roles("independent_reviewer,intake_officer", owner=True)
    with pytest.raises(RoleError):
        parse_roles("independent_reviewer")  # the workspace's parsing: not the owner's


def test_an_independent_reviewer_approves_the_plan_and_the_centers_approver_never_sees_it(
    desk: Desk,
) -> None:
    """The whole way to approval: the plan of an independent case is wrapped at submission for
    the independent reviewers off the team, never for the center's approver (404 throughout),
    and a reviewer approves it."""
    _reviewer(desk)
    case_id = _send(desk)
    base = f"/workspace/cases/{case_id}"
    form = {"severity": "high", "risk": "low", "category": "bribery", "department_id": ""}
    assert desk.post("board", f"{base}/classify", form).status_code == 303
    assert desk.post("board", f"{base}/accept", {"expected_stage": "triage"}).status_code == 303
    lead = {"user_id": desk.user_id("outsider"), "function": "lead", "declared_no_conflict": "yes"}
    assert desk.post("board", f"{base}/team/add", lead).status_code == 303
    plan = {
        "analysis": "The head of the center took kickbacks.",
        "person_name": ["中心负责人"],
        "person_responsibility": ["direct"],
        "person_0_measure": ["dismissal"],
        "person_detail": [""],
        "timeline": "Within 30 days.",
        "not_heard_reason": "On leave abroad; written questions were not answered.",
    }
    assert desk.post("outsider", f"{base}/handling/plan", plan).status_code == 303
    assert desk.post("outsider", f"{base}/handling/submit").status_code == 303
    assert desk.user_id("approver") not in _staff_wraps(desk, case_id)
    assert desk.get("approver", f"{base}/handling").status_code == 404
    assert desk.post(
        "approver", f"{base}/handling/decide", {"decision": "approve"}
    ).status_code == (404)
    page = desk.get("board", f"{base}/handling")
    assert page.status_code == 200 and "Approve the plan" in page.text
    decided = desk.post("board", f"{base}/handling/decide", {"decision": "approve"})
    assert decided.status_code == 303, decided.text
    assert desk.user_id("intake") not in _staff_wraps(desk, case_id)
    assert desk.user_id("approver") not in _staff_wraps(desk, case_id)


def test_the_archive_of_independent_cases_is_the_reviewers_not_the_centers(desk: Desk) -> None:
    """Legal holds and destruction approvals of an independent case are the independent
    reviewers' (two of them, as for the center's approvers); the center's archive list never
    shows it, and the reviewer's shows nothing of the center's."""
    from portal.kernel.db.models import ArchiveRecord

    _reviewer(desk)
    ordinary = _send(desk, about_centre="", what="An ordinary report, archived.")
    independent = _send(desk)

    async def archive() -> dict[str, str]:
        numbers = {}
        async with desk.services.db.write() as s:
            for cid in (ordinary, independent):
                case = await s.get(Case, cid)
                assert case is not None
                case.stage = "archived"  # test set-up: straight to the archive
                numbers[cid] = case.number
                s.add(
                    ArchiveRecord(
                        case_id=cid,
                        archived_on=dt.date(2020, 1, 1),
                        record_class="unsubstantiated",
                        retain_until=dt.date(2021, 1, 1),
                    )
                )
        return numbers

    numbers = run(desk.client, archive)
    center = desk.get("approver", "/workspace/archive")
    board = desk.get("board", "/workspace/archive")
    assert center.status_code == 200 and board.status_code == 200
    assert numbers[ordinary] in center.text and numbers[independent] not in center.text
    assert numbers[independent] in board.text and numbers[ordinary] not in board.text
    hold = desk.post("approver", f"/workspace/archive/{independent}/hold", {"hold": "on"})
    assert hold.status_code == 404
    assert desk.post(
        "board", f"/workspace/archive/{independent}/hold", {"hold": "on"}
    ).status_code == (303)
    assert desk.post(
        "board", f"/workspace/archive/{ordinary}/hold", {"hold": "on"}
    ).status_code == (404)


def test_a_team_member_given_a_centre_role_later_loses_the_independent_case(desk: Desk) -> None:
    """Membership of an independent case's team holds only while its member is outside the
    centre: once the administrator makes them an intake officer (or any role of the centre),
    the case answers 404 to them, leaves their lists, and they are off its team with their
    keys removed (audited)."""
    _reviewer(desk)
    case_id = _send(desk)
    board = "board"
    form = {"severity": "high", "risk": "low", "category": "bribery", "department_id": ""}
    assert desk.post(board, f"/workspace/cases/{case_id}/classify", form).status_code == 303
    accepted = desk.post(board, f"/workspace/cases/{case_id}/accept", {"expected_stage": "triage"})
    assert accepted.status_code == 303, accepted.text
    outsider = desk.user_id("outsider")
    added = desk.post(
        board,
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": outsider, "function": "member", "declared_no_conflict": "yes"},
    )
    assert added.status_code == 303, added.text
    assert desk.get("outsider", f"/workspace/cases/{case_id}").status_code == 200
    assert outsider in _staff_wraps(desk, case_id)
    assert _team(desk, case_id) == {outsider}

    changed = desk.post(
        "admin", f"/workspace/users/{outsider}", {"roles": ["investigator", "intake_officer"]}
    )
    assert changed.status_code == 303, changed.text
    assert desk.get("outsider", f"/workspace/cases/{case_id}").status_code == 404
    assert case_id not in _seen(desk, "outsider")[0]
    assert outsider not in _staff_wraps(desk, case_id)
    assert outsider not in _staff_wraps(desk, case_id, "identity")
    # they are off the team; the departure is audited
    assert _team(desk, case_id) == set()

    async def audited() -> list[str]:
        async with desk.services.db.read() as s:
            rows = await s.execute(
                select(AuditEntry.detail).where(
                    AuditEntry.case_id == case_id, AuditEntry.action == "team.remove"
                )
            )
            return [str(d) for d in rows.scalars()]

    assert run(desk.client, audited) == [f"user={outsider} reason=roles"]


def test_a_reviewer_whose_role_is_revoked_gives_up_the_independent_cases_keys(
    desk: Desk,
) -> None:
    desk.add("board", "independent_reviewer,investigator")  # stays an investigator
    case_id = _send(desk)
    board = desk.user_id("board")
    assert board in _staff_wraps(desk, case_id)
    assert desk.get("board", f"/workspace/cases/{case_id}").status_code == 200

    async def revoke() -> None:
        from investigator.domain.staff import set_independent_reviewer

        await set_independent_reviewer(desk.services.db, "board", appointed=False)

    run(desk.client, revoke)
    assert board not in _staff_wraps(desk, case_id)
    assert desk.get("board", f"/workspace/cases/{case_id}").status_code == 404


def _register_about_centre(desk: Desk) -> object:
    form = desk.get("intake", "/workspace/register")
    assert form.status_code == 200
    token = TOKEN_RE.search(form.text)
    assert token
    fields = {
        "submission_token": token.group(1),
        "channel": "phone",
        "kind": "report",
        "identity_mode": "anonymous",
        "category": "bribery",
        "relation": "employee",
        "what": CANARY + " (by phone)",
        "declaration": "yes",
        "about_centre": "yes",
    }
    return form, desk.post("intake", "/workspace/register", fields)


def test_a_report_about_the_centre_registered_by_phone_goes_to_the_reviewers(
    desk: Desk,
) -> None:
    """W2: the intake officer who takes such a call ticks "about the centre"; the case is the
    independent reviewers' alone, and the officer who registered it cannot open it."""
    _reviewer(desk)
    form, done = _register_about_centre(desk)
    assert "The report concerns the 法审风控中心 or its staff" in html.unescape(form.text)
    assert done.status_code == 200, done.text

    async def newest() -> tuple[str, bool]:
        async with desk.services.db.read() as s:
            row = (
                await s.execute(
                    select(Case.id, Case.independent).order_by(Case.number.desc()).limit(1)
                )
            ).one()
            return str(row[0]), bool(row[1])

    case_id, independent = run(desk.client, newest)
    assert independent
    assert _staff_wraps(desk, case_id) == {desk.user_id("board")}
    assert desk.get("intake", f"/workspace/cases/{case_id}").status_code == 404
    assert case_id not in _seen(desk, "intake")[0]
    assert desk.get("board", f"/workspace/cases/{case_id}").status_code == 200


def test_without_a_reviewer_registration_cannot_take_the_independent_channel(
    desk: Desk,
) -> None:
    form, refused = _register_about_centre(desk)
    text = html.unescape(form.text)
    assert 'name="about_centre"' not in form.text
    assert "No independent reviewer (audit committee or supervisory board) has been" in text
    assert refused.status_code == 400
    assert "no independent reviewer has been appointed" in html.unescape(refused.text)
    assert _cases(desk) == 0
