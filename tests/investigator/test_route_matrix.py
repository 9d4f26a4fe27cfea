"""THE role x route x relation matrix for the workspace, through the real app (A1, A2, A3).

For every /workspace route of the case screens and the sign-in (the test fails when the app has
one of theirs this table does not list; see TABLE_MODULES for the other modules' routes), for
each role, and for each relation to the case (unassigned, team member, subject of the case),
the expected status code is written below. Case routes are probed with a request that passes
policy but fails form validation (400/409), so nothing changes and an allowed request is told
apart from a refusal (404, the same as a missing case). The subject column is 404 everywhere.

Relations: ``unassigned`` cases are in the intake stage ``received``; ``independent`` cases
likewise, but arrived through the independent channel (issue 18: the report concerns the
法审风控中心 itself), so that only the independent reviewer holds their keys and acts where an
intake officer, identity custodian, approver or reward officer would (their expectations are
the ``unassigned`` ones with those roles replaced by the independent reviewer: every other
role, the intake officer first, gets 404); the ``member`` case has
every role's user on its team (function ``member``, not lead); the ``subject`` case names every
role's user as an accused person. Each relation also has a transferred case with a transfer
package (department 采购部, whose liaison is the department_liaison user) written by a
separate investigator, and a pending identity request by that investigator.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from sqlalchemy import select

from investigator.domain import casework
from portal.case.evidence import EvidenceSink, Target
from portal.kernel.db.models import Case, Department, EvidenceFile, User
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.conftest import BASE_URL, _database_url, _prepare_database, _run
from tests.investigator.ws_helpers import Desk, run, submit_case

ROLES = (
    "administrator",
    "intake_officer",
    "investigator",
    "team_lead",
    "approver",
    "identity_custodian",
    "reward_officer",
    "department_liaison",
    "auditor",
    "independent_reviewer",
)
RELATIONS = ("unassigned", "member", "subject", "independent")
# the roles of the center that the independent reviewer holds instead on an independent case
CENTRE_ROLES = ("intake_officer", "identity_custodian", "approver", "reward_officer")
DEPARTMENT = "采购部"

# Expected status by relation; an int applies to every role, a dict names the roles that
# differ from its "*" entry.
Expect = int | dict[str, int]
NONE = 404


def only(**codes: int) -> dict[str, int]:
    return {"*": NONE, **codes}


# (method, route path as the app declares it, concrete URL, form probe, {relation: Expect})
CASE_TABLE: list[tuple[str, str, str, dict[str, str], dict[str, Expect]]] = [
    ("GET", "/workspace/cases/{case_id:str}", "/workspace/cases/{case}", {},
     {"unassigned": only(intake_officer=200), "member": 200, "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/classify", "/workspace/cases/{case}/classify",
     {"severity": "?"},
     {"unassigned": only(intake_officer=400), "member": only(intake_officer=400),
      "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/accept", "/workspace/cases/{case}/accept",
     {"expected_stage": "?"},
     {"unassigned": only(intake_officer=409), "member": only(intake_officer=409),
      "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/reject", "/workspace/cases/{case}/reject",
     {"reason": "?"},
     {"unassigned": only(intake_officer=400), "member": only(intake_officer=400),
      "subject": NONE}),
    # a manual split at triage (W3): intake officers while the case is under review
    ("POST", "/workspace/cases/{case_id:str}/split", "/workspace/cases/{case}/split",
     {"category": "?"},
     {"unassigned": only(intake_officer=400), "member": only(intake_officer=400),
      "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/team/add", "/workspace/cases/{case}/team/add",
     {"function": "?"},
     {"unassigned": only(intake_officer=400), "member": only(intake_officer=400),
      "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/team/remove",
     "/workspace/cases/{case}/team/remove", {"user_id": ""},
     {"unassigned": only(intake_officer=400), "member": only(intake_officer=400),
      "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/conflict", "/workspace/cases/{case}/conflict", {},
     {"unassigned": only(intake_officer=400), "member": 400, "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/subjects/add",
     "/workspace/cases/{case}/subjects/add", {"name": ""},
     {"unassigned": only(intake_officer=400), "member": only(intake_officer=400),
      "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/subjects/{subject_id:str}/link",
     "/workspace/cases/{case}/subjects/{subject}/link", {"user_id": ""},
     {"unassigned": only(intake_officer=400), "member": only(intake_officer=400),
      "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/subjects/{subject_id:str}/not-linked",
     "/workspace/cases/{case}/subjects/{subject}/not-linked", {"user_id": ""},
     {"unassigned": only(intake_officer=400), "member": only(intake_officer=400),
      "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/message", "/workspace/cases/{case}/message",
     {"text": ""},
     {"unassigned": only(intake_officer=400), "member": 400, "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/note", "/workspace/cases/{case}/note",
     {"text": ""},
     {"unassigned": only(intake_officer=400), "member": 400, "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/identity/request",
     "/workspace/cases/{case}/identity/request", {"reason": "?"},
     {"unassigned": NONE, "member": 400, "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/transfer", "/workspace/cases/{case}/transfer",
     {"summary": ""},
     {"unassigned": only(intake_officer=400), "member": only(intake_officer=400),
      "subject": NONE}),
    # the package page and its upload belong to the investigator who wrote the package
    ("GET", "/workspace/cases/{case_id:str}/transfer/{package_id:str}",
     "/workspace/cases/{tcase}/transfer/{package}", {},
     {"unassigned": NONE, "member": NONE, "subject": NONE}),
    ("POST", "/workspace/cases/{case_id:str}/transfer/{package_id:str}/files",
     "/workspace/cases/{tcase}/transfer/{package}/files", {},
     {"unassigned": NONE, "member": NONE, "subject": NONE}),
    ("GET", "/workspace/files/{file_id:str}", "/workspace/files/{working}", {},
     {"unassigned": only(intake_officer=200), "member": 200, "subject": NONE}),
    # originals: team members only (A2); the liaison gets redacted copies of their packages only
    ("GET", "/workspace/files/{file_id:str}#original", "/workspace/files/{original}", {},
     {"unassigned": NONE, "member": 200, "subject": NONE}),
    ("GET", "/workspace/files/{file_id:str}#redacted", "/workspace/files/{redacted}", {},
     {"unassigned": only(department_liaison=200), "member": only(department_liaison=200),
      "subject": NONE}),
    ("POST", "/workspace/transfers/{package_id:str}/report-back",
     "/workspace/transfers/{package}/report-back", {"text": ""},
     {"unassigned": only(department_liaison=400), "member": only(department_liaison=400),
      "subject": NONE}),
    # four eyes: a custodian on the team does not decide; a subject never sees the request
    ("POST", "/workspace/identity-requests/{request_id:str}/decide",
     "/workspace/identity-requests/{request}/decide", {"decision": "?"},
     {"unassigned": only(identity_custodian=400), "member": NONE, "subject": NONE}),
    # a reporter's withdrawal request (issue 18): the report's by an approver, the identity's by
    # an identity custodian, neither on the team (four eyes) nor named in the case
    ("POST", "/workspace/rights-requests/{request_id:str}/decide",
     "/workspace/rights-requests/{rights_report}/decide", {"decision": "?"},
     {"unassigned": only(approver=400), "member": NONE, "subject": NONE}),
    ("POST", "/workspace/rights-requests/{request_id:str}/decide#identity",
     "/workspace/rights-requests/{rights_identity}/decide", {"decision": "?"},
     {"unassigned": only(identity_custodian=400), "member": NONE, "subject": NONE}),
]  # fmt: skip


def _independent(spec: Expect) -> Expect:
    """An ``unassigned`` expectation on an independent case: what a role of the center was
    allowed goes to the independent reviewer; the center itself gets 404."""
    if isinstance(spec, int):
        return spec
    out = {k: v for k, v in spec.items() if k not in CENTRE_ROLES}
    for role in CENTRE_ROLES:
        if role in spec:
            out["independent_reviewer"] = spec[role]
    return out


for _row in CASE_TABLE:
    _row[4].setdefault("independent", _independent(_row[4]["unassigned"]))

# Routes that concern no case: (method, route path, URL, form probe, {role: status})
ROLE_TABLE: list[tuple[str, str, str, dict[str, str], dict[str, int]]] = [
    ("GET", "/workspace", "/workspace/", {}, {"*": 200}),
    ("GET", "/workspace/password", "/workspace/password", {}, {"*": 200}),
    ("GET", "/workspace/totp", "/workspace/totp", {}, {"*": 303}),
    ("GET", "/workspace/totp/enrol", "/workspace/totp/enrol", {}, {"*": 303}),
    ("GET", "/workspace/recover", "/workspace/recover", {}, {"*": 200}),
    ("GET", "/workspace/cases", "/workspace/cases", {},
     only(intake_officer=200, investigator=200, team_lead=200, approver=200,
          independent_reviewer=200)),
    ("GET", "/workspace/inbox", "/workspace/inbox", {},
     only(intake_officer=200, independent_reviewer=200)),
    ("GET", "/workspace/waiting", "/workspace/waiting", {}, {"*": 200}),
    ("GET", "/workspace/register", "/workspace/register", {}, only(intake_officer=200)),
    ("GET", "/workspace/cases/new", "/workspace/cases/new", {}, only(intake_officer=200)),
    ("POST", "/workspace/register", "/workspace/register", {}, only(intake_officer=400)),
    ("GET", "/workspace/transfers", "/workspace/transfers", {}, only(department_liaison=200)),
    ("GET", "/workspace/identity-requests", "/workspace/identity-requests", {},
     only(identity_custodian=200, independent_reviewer=200)),
    # cases closed without a team, waiting to be archived (W13): intake officers; on the
    # independent channel, the independent reviewers
    ("GET", "/workspace/closed", "/workspace/closed", {},
     only(intake_officer=200, independent_reviewer=200)),
    ("GET", "/workspace/rights-requests", "/workspace/rights-requests", {},
     only(approver=200, identity_custodian=200, independent_reviewer=200)),
    ("GET", "/workspace/identity-corrections", "/workspace/identity-corrections", {},
     only(identity_custodian=200, independent_reviewer=200)),
    ("GET", "/workspace/privacy", "/workspace/privacy", {}, only(administrator=200)),
    # an empty form fails validation: nothing is saved
    ("POST", "/workspace/privacy", "/workspace/privacy", {}, only(administrator=400)),
    ("GET", "/workspace/poster", "/workspace/poster", {}, only(administrator=200)),
    ("GET", "/workspace/audit", "/workspace/audit", {}, only(auditor=200)),
    ("GET", "/workspace/audit/export", "/workspace/audit/export", {}, only(auditor=200)),
    # every notice of one's own, mail or no mail; reading them is one's own business
    ("GET", "/workspace/notices", "/workspace/notices", {}, {"*": 200}),
    ("POST", "/workspace/notices/read", "/workspace/notices/read", {}, {"*": 303}),
    # a year's complete schedule: the administrator only (the probe names no year: the
    # current one, which the holiday data already covers, so nothing is stored)
    ("POST", "/workspace/calendar/year", "/workspace/calendar/year", {},
     only(administrator=400)),
]  # fmt: skip

# The sign-in flow, checked without a session (tests/investigator/test_auth.py covers it in
# depth); posting to it while signed in would end the session.
AUTH_TABLE: list[tuple[str, str, dict[str, str], int]] = [
    ("POST", "/workspace/signin", {"username": "nobody", "password": "wrong password"}, 200),
    ("POST", "/workspace/totp", {"code": "000000"}, 200),
    ("POST", "/workspace/totp/enrol", {"code": "000000"}, 200),
    ("POST", "/workspace/password", {}, 303),
    ("POST", "/workspace/signout", {}, 303),
    ("POST", "/workspace/recover", {"username": "nobody", "new_password": "x"}, 400),
]
# The table covers every route of these modules; a route of theirs missing from it fails the
# build. Routes of the other workspace modules (written concurrently by other engineers, who add
# their own rows) are found by walking the app and held to the originals rule and the sign-in
# rule: as a subject of the case every role gets 404, and without a session the sign-in page.
TABLE_MODULES = frozenset(
    {
        "investigator.web.auth_routes",
        "investigator.web.case_routes",
        "investigator.web.case_actions",
        "investigator.web.transfer_routes",
        "investigator.web.identity_routes",
        "investigator.web.register_routes",
        "investigator.web.waiting_routes",
        "investigator.web.rights_routes",
        "investigator.web.privacy_routes",
        "investigator.web.notice_routes",
    }
)
PUBLIC = {
    ("GET", "/workspace"),
    ("GET", "/workspace/recover"),
    ("POST", "/workspace/signin"),
    ("POST", "/workspace/totp"),
    ("POST", "/workspace/totp/enrol"),
    ("POST", "/workspace/signout"),
    ("POST", "/workspace/recover"),
}


@dataclass
class World:
    desk: Desk
    ids: dict[str, dict[str, str]] = field(default_factory=dict)  # relation -> placeholders


def user_name(role: str) -> str:
    return role.replace("_", "-")


async def _package_file(services: Services, case_id: str, package_id: str, pkey: bytes) -> str:
    sink = await EvidenceSink(
        services.files,
        [Target(case_id, pkey)],
        name="redacted.txt",
        content_type="text/plain",
        suite=services.keyring.suite,
        uploaded_by="staff",
    ).open()
    await sink.write(b"redacted copy")
    stored = (await sink.close())[0]
    async with services.db.write() as s:
        s.add(
            EvidenceFile(
                id=stored.file_id,
                case_id=case_id,
                kind="redacted",
                package_id=package_id,
                storage_key=stored.storage_key,
                uploaded_by="staff",
                created_on=dt.date.today(),
            )
        )
    return stored.file_id


async def _case_key(services: Services, case_id: str, user: User, password: str) -> bytes:
    from crypto.recipients import unlock_with_password
    from investigator.domain.casefile import staff_key

    private = unlock_with_password(
        user.sealed_private_by_password, password, services.keyring.password_pepper
    )
    async with services.db.read() as s:
        return await staff_key(s, case_id, user.id, private)


async def _build(services: Services, desk: Desk, relation: str, n: int) -> dict[str, str]:
    users = {}
    async with services.db.read() as s:
        for u in (await s.execute(select(User))).scalars():
            users[u.username] = u
    creator = users["creator"]
    role_users = [users[user_name(r)] for r in ROLES]
    independent = relation == "independent"
    case_id, code = await submit_case(
        services, token=f"matrix-token-{relation}-case-{n}", independent=independent
    )
    tcase_id, _ = await submit_case(
        services, token=f"matrix-token-{relation}-tcase-{n}", independent=independent
    )
    # the case key holder at arrival: intake, or the independent reviewer only
    holder = user_name("independent_reviewer" if independent else "intake_officer")
    intake = users[holder]
    pw = desk.staff[holder].password
    key = await _case_key(services, case_id, intake, pw)
    tkey = await _case_key(services, tcase_id, intake, pw)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        tcase = await s.get(Case, tcase_id)
        assert case is not None and tcase is not None
        subject = await casework.add_subject(
            s, services, case, key, creator.id, name="某人", department="", position=""
        )
        for c, k in ((case, key), (tcase, tkey)):
            await casework.add_member(
                s, c, k, creator.id, creator, "lead", declared_no_conflict=True
            )
            c.stage = "received"  # the matrix's cases stay in the intake stage
        dept = (
            await s.execute(select(Department).where(Department.name == DEPARTMENT))
        ).scalar_one()
        package, pkey = await casework.transfer(
            s,
            services,
            tcase,
            creator.id,
            department_id=dept.id,
            summary="summary",
            due_on=dt.date(2999, 1, 1),
        )
        request = await casework.request_identity(
            s, services, case, key, creator.id, "We must interview the reporter."
        )
        for user in role_users:
            if relation == "member":
                for c, k in ((case, key), (tcase, tkey)):
                    await casework.add_member(
                        s, c, k, creator.id, user, "member", declared_no_conflict=True
                    )
            elif relation == "subject":
                for c, k in ((case, key), (tcase, tkey)):
                    await casework.add_subject(
                        s, services, c, k, creator.id, name=user.display_name,
                        department="", position="", user_id=user.id,
                    )  # fmt: skip
        case.stage = "received"
        ids = {
            "case": case_id,
            "tcase": tcase_id,
            "subject": subject.id,
            "package": package.id,
            "request": request.id,
        }
        for kind in ("original", "working"):
            ids[kind] = (
                await s.execute(
                    select(EvidenceFile.id).where(
                        EvidenceFile.case_id == case_id, EvidenceFile.kind == kind
                    )
                )
            ).scalars().first() or ""
    ids["redacted"] = await _package_file(services, tcase_id, package.id, pkey)
    # the reporter of the case asks to withdraw the report and the identity (issue 18)
    from portal.reporter import rights as reporter_rights
    from portal.reporter.followup import sign_in_with_receipt

    access = await sign_in_with_receipt(services, code)
    assert access is not None
    for kind in ("withdraw_report", "withdraw_identity"):
        ids[f"rights_{kind[9:]}"] = await reporter_rights.ask(services, access, case_id, kind)
    return ids


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[World]:
    from crypto.keyring import create_keyring
    from portal.app import create_app
    from portal.app.wiring import build_services

    tmp: Path = tmp_path_factory.mktemp("matrix")
    settings = Settings(
        mode="test", argon2_profile="test", data_dir=tmp, database_url=_database_url(tmp)
    )
    settings.validate()
    create_keyring(settings.keyring_dir)
    _prepare_database(settings, request)
    services = build_services(settings)
    app = create_app(settings, services)
    with TestClient(app, base_url=BASE_URL) as client:
        desk = Desk(client, services)
        desk.add("creator", "investigator")
        for role in ROLES:
            desk.add(
                user_name(role),
                role,
                department=DEPARTMENT if role == "department_liaison" else None,
            )
        w = World(desk)
        for n, relation in enumerate(RELATIONS):
            w.ids[relation] = run(client, lambda r=relation, i=n: _build(services, desk, r, i))
        for role in ROLES:
            desk.use(user_name(role))  # sign each in once
        yield w
    _run(services.close())


def expected(spec: Expect, role: str) -> int:
    if isinstance(spec, int):
        return spec
    return spec.get(role, spec["*"])


def _call(desk: Desk, role: str, method: str, url: str, probe: dict[str, str]) -> int:
    name = user_name(role)
    if method == "GET":
        return desk.get(name, url).status_code
    return desk.post(name, url, probe).status_code


def test_every_workspace_route_is_in_the_table(world: World) -> None:
    app: Litestar = world.desk.client.app  # type: ignore[assignment]
    listed = {(m, p.split("#")[0]) for m, p, *_ in CASE_TABLE}
    listed |= {(m, p) for m, p, *_ in ROLE_TABLE}
    listed |= {(m, p) for m, p, *_ in AUTH_TABLE}
    missing = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/workspace"):
            continue
        for handler in route.route_handlers:
            module = handler.fn.__module__
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                if (method, route.path) in listed:
                    continue
                if module not in TABLE_MODULES:
                    continue
                missing.append(f"{method} {route.path} ({module})")
    assert not missing, f"routes missing from the matrix: {missing}"


def other_routes(app: Litestar) -> list[tuple[str, str]]:
    """(method, path) of every /workspace route outside TABLE_MODULES."""
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/workspace"):
            continue
        for handler in route.route_handlers:
            if handler.fn.__module__ not in TABLE_MODULES:
                out += [(m, route.path) for m in handler.http_methods - {"OPTIONS", "HEAD"}]
    return sorted(out)


def _concrete(path: str, case_id: str) -> str:
    return re.sub(r"\{(\w+):\w+\}", lambda m: case_id if m[1] == "case_id" else "0" * 32, path)


@pytest.mark.parametrize("role", ROLES)
def test_other_case_routes_refuse_subjects(world: World, role: str) -> None:
    app: Litestar = world.desk.client.app  # type: ignore[assignment]
    failures = []
    for method, path in other_routes(app):
        if "{case_id" not in path:
            continue
        got = _call(world.desk, role, method, _concrete(path, world.ids["subject"]["case"]), {})
        if got != NONE:
            failures.append(f"{role} subject {method} {path}: expected 404, got {got}")
    assert not failures, "\n".join(failures)


def test_subject_column_is_404_for_every_case_route() -> None:
    for _m, path, _u, _p, specs in CASE_TABLE:
        assert specs["subject"] == NONE, path


@pytest.mark.parametrize("role", ROLES)
def test_matrix(world: World, role: str) -> None:
    failures = []
    for method, path, url_template, probe, specs in CASE_TABLE:
        for relation in RELATIONS:
            url = url_template.format(**world.ids[relation])
            want = expected(specs[relation], role)
            got = _call(world.desk, role, method, url, probe)
            if got != want:
                failures.append(f"{role} {relation} {method} {path}: expected {want}, got {got}")
    for method, path, url, probe, spec in ROLE_TABLE:
        want = expected(spec, role)
        got = _call(world.desk, role, method, url, probe)
        if got != want:
            failures.append(f"{role} {method} {path}: expected {want}, got {got}")
    assert not failures, "\n".join(failures)


def test_nothing_changed_state(world: World) -> None:
    """The probes were refused before doing anything: the cases are where they were."""

    async def stages() -> set[str]:
        async with world.desk.services.db.read() as s:
            ids = [world.ids[r]["case"] for r in RELATIONS]
            return set((await s.execute(select(Case.stage).where(Case.id.in_(ids)))).scalars())

    assert run(world.desk.client, stages) == {"received"}


def test_post_only_routes_answer_405_to_get(world: World) -> None:
    get_paths = {p.split("#")[0] for m, p, *_ in CASE_TABLE if m == "GET"}
    for method, _path, url_template, _probe, _specs in CASE_TABLE:
        if method == "POST" and _path not in get_paths:
            url = url_template.format(**world.ids["member"])
            assert world.desk.get("intake-officer", url).status_code == 405, url


def test_anonymous_gets_the_signin_page_or_the_auth_answer(world: World) -> None:
    desk = world.desk
    client = desk.anonymous()
    page = client.get("/workspace/")
    assert page.status_code == 200
    from tests.investigator.conftest import form_token

    token = form_token(page.text)
    for method, path, url_template, probe, _spec in [*CASE_TABLE, *ROLE_TABLE]:
        base = path.split("#")[0]
        if (method, base) in PUBLIC:
            continue
        url = url_template.format(**world.ids["unassigned"])
        if method == "GET":
            r = client.get(url, follow_redirects=False)
        else:
            r = client.post(url, data={"_csrf_token": token, **probe}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/workspace/", (method, url)
    app: Litestar = desk.client.app  # type: ignore[assignment]
    for method, path in other_routes(app):
        url = _concrete(path, world.ids["unassigned"]["case"])
        if method == "GET":
            r = client.get(url, follow_redirects=False)
        else:
            r = client.post(url, data={"_csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/workspace/", (method, url)
    for method, path, probe, want in AUTH_TABLE:
        client.cookies.clear()
        token = form_token(client.get("/workspace/").text)
        r = client.post(path, data={"_csrf_token": token, **probe}, follow_redirects=False)
        assert r.status_code == want, (method, path, r.status_code)


def test_independent_cases_never_wrap_a_key_for_the_center(world: World) -> None:
    """Issue 18: every key of an independent case (case, identity, package) is wrapped for the
    independent reviewer and the team they formed, never for an intake officer or another
    role of the center, even after every role's user signed in and was probed."""
    from portal.kernel.db.models import KeyWrap

    ids = world.ids["independent"]
    center = {world.desk.user_id(user_name(r)) for r in CENTRE_ROLES}
    reviewer = world.desk.user_id(user_name("independent_reviewer"))

    async def holders() -> set[str]:
        async with world.desk.services.db.read() as s:
            rows = await s.execute(
                select(KeyWrap.user_id).where(
                    KeyWrap.case_id.in_([ids["case"], ids["tcase"]]), KeyWrap.user_id.is_not(None)
                )
            )
            return {str(u) for u in rows.scalars()}

    got = run(world.desk.client, holders)
    assert reviewer in got and not got & center, got


@pytest.mark.parametrize("role", CENTRE_ROLES)
def test_the_center_gets_404_on_every_route_of_an_independent_case(world: World, role: str) -> None:
    """The routes of the other workspace modules too (investigation, handling, deadlines,
    protection, rewards, exports...), and the case is in none of the center's lists."""
    app: Litestar = world.desk.client.app  # type: ignore[assignment]
    case_id = world.ids["independent"]["case"]
    failures = []
    for method, path in other_routes(app):
        if "{case_id" not in path:
            continue
        got = _call(world.desk, role, method, _concrete(path, case_id), {})
        if got != NONE:
            failures.append(f"{role} independent {method} {path}: expected 404, got {got}")
    assert not failures, "\n".join(failures)
    from tests.investigator.ws_helpers import case_ids_on

    for path in ("/workspace/", "/workspace/inbox", "/workspace/cases", "/workspace/overdue"):
        page = world.desk.get(user_name(role), path)
        assert case_id not in case_ids_on(page.text), (role, path)
    reviewer_inbox = world.desk.get(user_name("independent_reviewer"), "/workspace/inbox")
    assert case_id in case_ids_on(reviewer_inbox.text)
