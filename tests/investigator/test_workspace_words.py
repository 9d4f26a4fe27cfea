"""No internal code and no untranslated msgid in the workspace's visible text (issue 16, item 1).

A small world is built through the real app (cases received, classified, rejected, in approval
with a team, concluded with a reward proposed, transferred; an identity request), then every
workspace page is rendered for every role in zh_CN, zh_TW and en: every GET route without a
path parameter, and every case route for every case in the role's lists. The visible text (tags,
attributes, scripts, form values and ``translate="no"`` data removed: ``tests.visible``) must
not contain

* a known internal code: the codes are collected from the code's own constants (roles,
  kinds, relations, severities, risks, team functions, channels, stages, outcomes, reward
  statuses, notice kinds, pause reasons) and from the rows the world wrote (channels, kinds,
  stages, categories, timeline events, audit actions, deadline stages), never a hand list.
  A text node equal to a code fails in every language; in Chinese any word equal to a code
  fails, and so does a dotted or underscored code anywhere;
* in Chinese, a msgid shown untranslated (a text node equal to a catalogue msgid whose
  translation differs), or an English sentence at all (the world's own data is Chinese).

A second group of tests checks that every code the code base defines has a word in
``portal.kernel.labels`` (events and audit actions are read from the source with ``ast``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient
from sqlalchemy import select

from investigator.domain import casework, deadline_rules, handling, notify_kinds, rewards
from investigator.roles import ROLES
from investigator.web.register_routes import CHANNELS
from portal.case.stage import PUBLIC_STAGES, REPORTER, TRANSITIONS, Stage
from portal.kernel import labels
from portal.kernel.db.models import AuditEntry, Case, CaseDeadline, CaseEvent, Category
from portal.kernel.services import Services
from portal.reporter import intake
from tests.investigator.ws_helpers import Desk, case_ids_on, run, submit_case
from tests.visible import visible_texts

ROOT = Path(__file__).resolve().parents[2]
LOCALES = {"zh_CN": "zh-CN", "zh_TW": "zh-TW", "en": "en"}
HTML_LANG = {"zh_CN": "zh-Hans-CN", "zh_TW": "zh-Hant-TW", "en": "en"}
DEPARTMENT = "采购部"
# one person per role; their names are not codes (they are shown on many pages)
PEOPLE = {
    "administrator": "zhang",
    "intake_officer": "wang",
    "investigator": "li",
    "team_lead": "zhao",
    "approver": "chen",
    "identity_custodian": "liu",
    "reward_officer": "yang",
    "department_liaison": "huang",
    "auditor": "zhou",
}
WHAT = "采购部负责人每月向供应商收取现金。"
PLAN = {
    "analysis": "两家供应商被收取现金。",
    "person_name": ["采购部负责人"],
    "person_responsibility": ["direct"],
    "person_0_measure": ["dismissal"],
    "person_detail": [""],
    "timeline": "三十日内。",
}
_PARAM = re.compile(r"\{(\w+):\w+\}")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.]*[A-Za-z0-9]|[A-Za-z]")
_ENGLISH_SENTENCE = re.compile(r"^[A-Za-z][A-Za-z'’,;:()-]*(?: [A-Za-z'’,;:()-]+){2,}[.:?!]?$")


# --- the world ---------------------------------------------------------------------------------


def _post(desk: Desk, who: str, path: str, data: dict[str, Any]) -> None:
    r = desk.post(who, path, data)
    assert r.status_code == 303, f"{path}: {r.status_code} {r.text[:300]}"


def _conclude(services: Services, desk: Desk, case_id: str) -> None:
    from tests.investigator.test_rewards import conclude_as

    run(
        desk.client,
        lambda: conclude_as(services, desk.user_id("wang"), desk.user_id("zhao"), case_id),
    )


def build_world(desk: Desk) -> dict[str, str]:
    services = desk.services
    for role, name in PEOPLE.items():
        desk.add(name, role, department=DEPARTMENT if role == "department_liaison" else None)

    def new_case(n: int) -> str:
        cid, _code = run(
            desk.client,
            lambda: submit_case(services, token=f"words-token-{n:04d}-abcdefgh", what=WHAT),
        )
        return str(cid)

    cases = {name: new_case(n) for n, name in enumerate(("fresh", "triaged", "rejected", "team"))}
    cases["reward"] = new_case(10)
    cases["transfer"] = new_case(11)
    base = "/workspace/cases/{}".format
    _post(
        desk,
        "wang",
        base(cases["triaged"]) + "/classify",
        {"category": "bribery", "severity": "critical", "risk": "high", "urgent": "yes"},
    )
    _post(
        desk,
        "wang",
        base(cases["rejected"]) + "/reject",
        {"reason": "insufficient", "expected_stage": "received"},
    )
    # a team, a plan in approval, an identity request
    team = cases["team"]
    _post(desk, "wang", base(team) + "/accept", {"expected_stage": "received"})
    for actor, name, function in (("wang", "zhao", "lead"), ("zhao", "li", "member")):
        _post(
            desk,
            actor,
            base(team) + "/team/add",
            {"user_id": desk.user_id(name), "function": function, "declared_no_conflict": "yes"},
        )
    _post(desk, "li", base(team) + "/note", {"text": "已调取账本。"})
    _post(desk, "li", base(team) + "/identity/request", {"reason": "需要向举报人核实细节。"})
    _post(desk, "zhao", base(team) + "/handling/plan", PLAN)
    _post(desk, "zhao", base(team) + "/handling/submit", {})
    # concluded and substantiated, a reward proposed
    _conclude(services, desk, cases["reward"])
    _post(
        desk,
        "zhao",
        base(cases["reward"]) + "/reward/propose",
        {"amount": "8000", "recovered_amount": "90000", "basis": "关键账本。"},
    )
    # transferred to the liaison's department
    dept_id = run(desk.client, lambda: _department_id(services))
    _post(
        desk,
        "wang",
        base(cases["transfer"]) + "/transfer",
        {"department_id": dept_id, "summary": "请核查。", "due_on": "2999-01-01"},
    )
    return cases


async def _department_id(services: Services) -> str:
    from portal.kernel.db.models import Department

    async with services.db.read() as s:
        return str(
            (
                await s.execute(select(Department.id).where(Department.name == DEPARTMENT))
            ).scalar_one()
        )


# --- the codes ----------------------------------------------------------------------------------


def constant_codes() -> set[str]:
    codes: set[str] = set(ROLES) | set(CHANNELS) | {"web"}
    codes |= set(intake.KINDS) | set(intake.RELATIONS) | set(intake.IDENTITY_MODES)
    codes |= set(casework.SEVERITIES) | set(casework.RISKS) | set(casework.FUNCTIONS)
    codes |= set(PUBLIC_STAGES) | {str(s) for s in Stage}
    codes |= set(handling.OUTCOMES) | set(rewards.STATUSES)
    codes |= set(notify_kinds.KINDS) | {notify_kinds.URGENT} | set(deadline_rules.PAUSE_REASONS)
    for table in labels.GROUPS.values():
        codes |= set(table)
    return codes


async def data_codes(services: Services) -> set[str]:
    codes: set[str] = set()
    async with services.db.read() as s:
        for column in (Case.channel, Case.kind, Case.stage, Case.category, Case.severity):
            codes |= {v for v in (await s.execute(select(column).distinct())).scalars() if v}
        codes |= set((await s.execute(select(Category.code))).scalars())
        for kind in (await s.execute(select(CaseEvent.kind).distinct())).scalars():
            codes |= {kind, *kind.split(":")}
        codes |= set((await s.execute(select(AuditEntry.action).distinct())).scalars())
        codes |= set((await s.execute(select(CaseDeadline.stage).distinct())).scalars())
    return codes


def untranslated_msgids(locale: str) -> set[str]:
    """Catalogue msgids whose translation differs from them (so showing them is a miss)."""
    path = ROOT / "portal" / "locale" / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh)
    out = set()
    for m in catalog:
        if not isinstance(m.id, str) or "%(" in m.id or not m.string or m.string == m.id:
            continue
        if re.search(r"[A-Za-z]{3}", m.id):
            out.add(m.id)
    return out


def problems_in(html: str, locale: str, codes: set[str], msgids: set[str]) -> list[str]:
    found = []
    for text in visible_texts(html):
        if text in codes:
            found.append(f"code {text!r}")
            continue
        for word in _WORD.findall(text):
            if word in codes and (locale != "en" or "_" in word or "." in word):
                found.append(f"code {word!r} in {text[:80]!r}")
        if locale == "en":
            continue
        if text in msgids:
            found.append(f"untranslated {text!r}")
        elif _ENGLISH_SENTENCE.match(text):
            found.append(f"English {text[:80]!r}")
    return found


# --- the pages ----------------------------------------------------------------------------------


def page_paths(app: Litestar) -> tuple[list[str], list[str]]:
    """(paths without parameters, case path templates with only ``case_id``) of every workspace
    GET route."""
    plain, per_case = [], []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/workspace"):
            continue
        if not any("GET" in h.http_methods for h in route.route_handlers):
            continue
        params = _PARAM.findall(route.path)
        if not params:
            plain.append(route.path)
        elif params == ["case_id"]:
            per_case.append(route.path)
    return sorted(set(plain)), sorted(set(per_case))


def _html(response: Any) -> str | None:
    if response.status_code != 200:
        return None
    if not response.headers.get("content-type", "").startswith("text/html"):
        return None
    return str(response.text)


def visit_all(
    desk: Desk, who: str, plain: Iterable[str], per_case: Iterable[str]
) -> dict[str, str]:
    """path -> HTML of every page ``who`` may open."""
    pages: dict[str, str] = {}
    for path in plain:
        html = _html(desk.get(who, path))
        if html is not None:
            pages[path] = html
    seen = set()
    for html in list(pages.values()):
        seen |= case_ids_on(html)
    for case_id in sorted(seen):
        for template in per_case:
            path = template.replace("{case_id:str}", case_id)
            html = _html(desk.get(who, path))
            if html is not None:
                pages[path] = html
    for user_id in set(
        re.findall(r'href="/workspace/users/([0-9a-f]{32})"', "".join(pages.values()))
    ):
        html = _html(desk.get(who, f"/workspace/users/{user_id}"))
        if html is not None:
            pages[f"/workspace/users/{user_id}"] = html
    return pages


@pytest.fixture
def desk(client: TestClient[Litestar], services: Services) -> Desk:
    return Desk(client, services)


def test_no_code_or_untranslated_text_on_any_workspace_page(desk: Desk) -> None:
    cases = build_world(desk)
    app: Litestar = desk.client.app  # type: ignore[assignment]
    plain, per_case = page_paths(app)
    codes = constant_codes()
    failures: list[str] = []
    visited = 0
    case_pages_seen: set[str] = set()
    for locale, header in LOCALES.items():
        desk.client.headers["accept-language"] = header
        msgids = untranslated_msgids(locale) if locale != "en" else set()
        for name in PEOPLE.values():
            pages = visit_all(desk, name, plain, per_case)
            visited += len(pages)
            case_pages_seen |= {p for p in pages if p.startswith("/workspace/cases/")}
            codes_now = codes | run(desk.client, lambda: data_codes(desk.services))
            for path, html in pages.items():
                # the workspace layout's pages: in the page's language and with the
                # navigation (a standalone page such as the always-Chinese poster is neither;
                # its text is still checked below)
                if '<body class="workspace">' in html:
                    assert f'<html lang="{HTML_LANG[locale]}">' in html, (locale, path)
                    signed_out_page = path == "/workspace/recover"  # account recovery
                    if not signed_out_page and 'action="/workspace/signout"' not in html:
                        failures.append(f"{locale} {name} {path}: no workspace navigation")
                for problem in problems_in(html, locale, codes_now, msgids):
                    failures.append(f"{locale} {name} {path}: {problem}")
    desk.client.headers["accept-language"] = "en"
    # the world was seen: the page of every case still in someone's view, many pages in all
    # (a rejected or transferred case leaves every view but the archive's and the liaison's)
    for name in ("fresh", "triaged", "team", "reward"):
        assert f"/workspace/cases/{cases[name]}" in case_pages_seen, name
    assert visited > 150, visited
    assert not failures, "\n".join(sorted(set(failures))[:80])


def test_the_check_catches_a_code_and_an_untranslated_msgid() -> None:
    """The detector itself: it would fail on the page texts of issue 16."""
    codes = constant_codes()
    msgids = untranslated_msgids("zh_CN")
    assert problems_in("<td>intake_officer</td>", "en", codes, msgids)
    assert problems_in("<td>web</td>", "zh_CN", codes, msgids)
    assert problems_in("<li>2026-12-03 <code>triage_started</code></li>", "zh_TW", codes, msgids)
    assert problems_in("<p>操作：case.archive</p>", "zh_CN", codes, msgids)
    assert problems_in("<p>Workspace home</p>", "zh_CN", codes, msgids)
    assert problems_in("<p>This text was never marked for translation.</p>", "zh_CN", codes, set())
    # values, attributes and translate="no" data are not visible text
    assert not problems_in(
        '<input name="x" value="web"><option value="low">低</option>', "zh_CN", codes, msgids
    )
    assert not problems_in(
        '<code translate="no">stage=investigation</code>', "zh_CN", codes, msgids
    )
    # English words that happen to be codes are fine inside English sentences
    assert not problems_in("<p>Reports received by phone.</p>", "en", codes, msgids)


# --- every code has a word ----------------------------------------------------------------------


def _source_files() -> list[Path]:
    return [p for d in ("portal", "investigator") for p in (ROOT / d).rglob("*.py")]


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def source_events_and_actions() -> tuple[set[str], set[str]]:
    """Event kinds given to ``add_event`` and actions given to ``audit.record`` as constants
    (f-strings: their constant head, e.g. ``concluded:`` or ``deadline_warning_``)."""
    events: set[str] = set()
    actions: set[str] = set()
    for path in _source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
            if name == "add_event" and len(node.args) >= 3:
                arg = node.args[2]
                if isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                    events.add(str(arg.values[0].value).rstrip(":_") + "*")
                events |= set(_strings(arg))
            if name == "record":
                for kw in node.keywords:
                    if kw.arg == "action":
                        actions |= set(_strings(kw.value))
    return events, actions


def test_every_event_and_audit_action_in_the_source_has_a_word() -> None:
    events, actions = source_events_and_actions()
    assert len(events) > 20 and len(actions) > 40  # the scan found the calls
    missing = []
    for kind in events:
        if kind.endswith("*"):
            head = kind[:-1]
            if not any(k == head or k.startswith(head) for k in labels.EVENTS):
                missing.append(f"event {kind}")
        elif labels.event_msgid(kind) is None:
            missing.append(f"event {kind}")
    missing += [f"action {a}" for a in actions if labels.audit_action_msgid(a) is None]
    # the stage transitions write their own events and audit actions (portal.case.stage.move)
    for t in TRANSITIONS:
        if labels.event_msgid(t.event) is None:
            missing.append(f"event {t.event} ({t.source} -> {t.target})")
        if t.action != REPORTER and labels.audit_action_msgid(t.action) is None:
            missing.append(f"action {t.action} ({t.source} -> {t.target})")
    assert not missing, missing


@pytest.mark.parametrize(
    ("group", "codes"),
    [
        ("role", ROLES),
        ("channel", (*CHANNELS, "web")),
        ("kind", intake.KINDS),
        ("relation", intake.RELATIONS),
        ("identity_mode", intake.IDENTITY_MODES),
        ("severity", casework.SEVERITIES),
        ("risk", casework.RISKS),
        ("function", casework.FUNCTIONS),
        ("stage", (*PUBLIC_STAGES, *Stage)),
        ("outcome", tuple(handling.OUTCOMES)),
        ("reward_status", rewards.STATUSES),
        ("notice_kind", (*notify_kinds.KINDS, notify_kinds.URGENT)),
        ("deadline_stage", tuple({s for rules in deadline_rules.PROFILES.values() for s in rules})),
        ("deadline_pause", deadline_rules.PAUSE_REASONS),
    ],
)
def test_every_code_of_the_code_base_has_a_word(group: str, codes: Iterable[str]) -> None:
    missing = [c for c in codes if labels.msgid_for(group, c) is None]
    assert not missing, f"{group}: {missing}"


def test_labels_are_translated_in_every_language() -> None:
    from portal.kernel.i18n import translations

    for locale in ("zh_CN", "zh_TW"):
        t = translations(locale).gettext
        for group, table in labels.GROUPS.items():
            for code, msgid in table.items():
                assert t(msgid) != msgid or not re.search("[A-Za-z]{3}", msgid), (
                    locale,
                    group,
                    code,
                )
