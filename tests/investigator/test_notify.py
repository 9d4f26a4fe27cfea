"""Notifications (issue 7) against a REAL SMTP server: aiosmtpd on a free loopback port.

What is asserted on the wire: one mail per person with counts only; no canary string from the
report, no case number, no clock time; subjects and conflicted staff are never told about the
case; new-case counts wait for the next batch slot; urgent cases reach the person on duty at
once; preferences are honoured; a reporter who left an address gets "there is news" only,
and a reporter who did not gets nothing. STARTTLS + AUTH is exercised with a self-signed
certificate the test trusts.
"""

from __future__ import annotations

import datetime as dt
import email
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select, update

import portal.case.events as case_events
import portal.reporter.followup as reporter_followup
from investigator.domain import casework, duty_roster, notify, notify_kinds
from investigator.policy import Principal
from portal.case import reporter_contact
from portal.kernel import clock
from portal.kernel.db.models import Case, PendingNotice, User
from portal.kernel.mailer import Mail, Mailer, MailError
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.investigator.conftest import create_staff
from tests.investigator.ws_helpers import submit_case

CANARY = "CANARY-7f3a-report-text-never-in-mail"
TIME = re.compile(r"\b\d{1,2}:\d{2}\b")


@dataclass
class Inbox:
    messages: list[tuple[list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [email.message_from_bytes(raw) for rcpt, raw in self.messages if address in rcpt]

    def raw(self) -> bytes:
        return b"\n".join(raw for _, raw in self.messages)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def settings(settings: Settings, inbox: tuple[Inbox, int]) -> Settings:
    return settings.with_overrides(
        smtp_host="127.0.0.1", smtp_port=inbox[1], smtp_starttls=False, smtp_sender="ws@example.org"
    )


def body(msg: Message) -> str:
    part = msg.get_payload(decode=True)
    assert isinstance(part, bytes)
    return part.decode("utf-8")


def count_line(text: str, english: str) -> int:
    match = re.search(re.escape(english) + r": (\d+)", text)
    assert match, text
    return int(match.group(1))


async def staff(services: Services, name: str, roles: str, *, mail: bool = True) -> str:
    made = await create_staff(services, name, roles)
    if mail:
        async with services.db.write() as s:
            await s.execute(
                update(User).where(User.id == made.user_id).values(email=f"{name}@example.org")
            )
    return made.user_id


async def case_key(services: Services, code: str, case_id: str) -> bytes:
    access = await reporter_followup.sign_in_with_receipt(services, code)
    assert access is not None
    async with services.db.read() as s:
        return (await reporter_followup.reporter_case_keys(s, access))[case_id]


async def make_subject(services: Services, case_id: str, code: str, user_id: str) -> None:
    key = await case_key(services, code, case_id)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await casework.add_subject(
            s, services, case, key, user_id, name="Sub", department="", position="", user_id=user_id
        )


@pytest.fixture
def fixed_clock() -> Iterator[list[dt.datetime]]:
    now = [dt.datetime(2026, 3, 10, 9, 5, tzinfo=clock.SHANGHAI)]
    clock.set_clock(lambda: now[0])
    yield now
    clock.set_clock(None)


def no_leaks(inbox: Inbox, *numbers: str) -> None:
    raw = inbox.raw()
    assert CANARY.encode() not in raw
    for number in numbers:
        assert number.encode() not in raw
    for _, msg_raw in inbox.messages:
        msg = email.message_from_bytes(msg_raw)
        assert msg["Date"] is None  # the relay adds its own; ours would only add a precise time
        assert not TIME.search(body(msg)), body(msg)
        assert not TIME.search(str(msg["Subject"]))


async def numbers_of(services: Services, *case_ids: str) -> list[str]:
    async with services.db.read() as s:
        return [(await s.get(Case, cid)).number for cid in case_ids]  # type: ignore[union-attr]


async def test_new_cases_are_batched_counts_only_and_subjects_are_left_out(
    services: Services, inbox: tuple[Inbox, int], fixed_clock: list[dt.datetime]
) -> None:
    box = inbox[0]
    await staff(services, "ina", "intake_officer")
    sub = await staff(services, "sub", "intake_officer")
    await staff(services, "nomail", "intake_officer", mail=False)
    made = [await submit_case(services, token=f"t{i}", what=CANARY) for i in range(3)]
    await make_subject(services, made[0][0], made[0][1], sub)

    first = await notify.run(services)
    assert first.notices == 3 + 2 + 3  # ina 3, sub 2 (not the case naming them), nomail 3
    assert first.staff_mails == 0 and first.held >= 5
    assert box.messages == []  # same batch slot: nothing tells when the reports came in

    fixed_clock[0] += dt.timedelta(hours=4)
    second = await notify.run(services)
    assert second.staff_mails == 2, second
    ina_mail = box.to("ina@example.org")
    sub_mail = box.to("sub@example.org")
    assert len(ina_mail) == 1 and len(sub_mail) == 1
    assert count_line(body(ina_mail[0]), "New reports received") == 3
    assert count_line(body(sub_mail[0]), "New reports received") == 2
    assert box.to("nomail@example.org") == []
    no_leaks(box, *await numbers_of(services, *(c for c, _ in made)))

    third = await notify.run(services)  # nothing new: nothing sent twice
    assert third.staff_mails == 0 and len(box.messages) == 2
    async with services.db.read() as s:
        statuses = {
            n.status for n in (await s.execute(select(PendingNotice))).scalars() if n.user_id
        }
    assert statuses == {"sent", "skipped"}


async def test_an_independent_report_is_announced_to_the_reviewers_never_to_intake(
    services: Services, inbox: tuple[Inbox, int], fixed_clock: list[dt.datetime]
) -> None:
    """Issue 18: the center does not even count a report about itself; the independent
    reviewer is told of it (counts only)."""
    box = inbox[0]
    await staff(services, "ina", "intake_officer")
    await staff(services, "board", "independent_reviewer")
    await submit_case(services, token="t-ordinary", what=CANARY)
    await submit_case(services, token="t-independent", what=CANARY, independent=True)
    await notify.run(services)
    fixed_clock[0] += dt.timedelta(hours=4)
    await notify.run(services)
    ina, board = box.to("ina@example.org"), box.to("board@example.org")
    assert len(ina) == 1 and len(board) == 1
    assert count_line(body(ina[0]), "New reports received") == 1
    assert count_line(body(board[0]), "New reports received") == 1


async def test_a_subject_added_after_queuing_is_still_never_told(
    services: Services, inbox: tuple[Inbox, int], fixed_clock: list[dt.datetime]
) -> None:
    box = inbox[0]
    late = await staff(services, "late", "intake_officer")
    case_id, code = await submit_case(services, token="t-late", what=CANARY)
    assert (await notify.run(services)).notices == 1  # queued for "late" ...
    await make_subject(services, case_id, code, late)  # ... who is then named as accused
    fixed_clock[0] += dt.timedelta(hours=5)
    report = await notify.run(services)
    assert report.staff_mails == 0 and report.skipped == 1
    assert box.to("late@example.org") == []


async def test_urgent_goes_to_the_person_on_duty_at_once(
    services: Services, inbox: tuple[Inbox, int], fixed_clock: list[dt.datetime]
) -> None:
    box = inbox[0]
    admin = await staff(services, "root", "administrator")
    intake = await staff(services, "ina", "intake_officer")
    duty = await staff(services, "duty", "investigator")
    duty_sub = await staff(services, "dutysub", "investigator")
    await staff(services, "offduty", "investigator")
    case_id, code = await submit_case(services, token="t-urgent", what=CANARY)
    await make_subject(services, case_id, code, duty_sub)
    async with services.db.write() as s:
        assert await duty_roster.set_on_duty(s, admin, [duty, duty_sub]) == sorted([duty, duty_sub])
    await notify.run(services)  # the new-case count is held for the batch
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await casework.classify(
            s,
            case,
            intake,
            category="bribery",
            severity="high",
            urgent=True,
            risk="high",
            department_id=None,
        )
    report = await notify.run(services)  # the same slot: urgent does not wait
    assert report.staff_mails == 1
    mails = box.to("duty@example.org")
    assert len(mails) == 1
    assert "Urgent" in str(mails[0]["Subject"])
    assert count_line(body(mails[0]), "Urgent cases waiting") == 1
    assert box.to("dutysub@example.org") == []  # named in the case: never told
    assert box.to("offduty@example.org") == []
    assert box.to("ina@example.org") == []  # her new-case count waits for the batch
    # classifying it urgent again does not ring twice
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await casework.classify(
            s,
            case,
            intake,
            category="bribery",
            severity="high",
            urgent=True,
            risk="high",
            department_id=None,
        )
    await notify.run(services)
    assert len(box.to("duty@example.org")) == 1
    no_leaks(box, *await numbers_of(services, case_id))


async def test_assignment_reporter_messages_identity_requests_and_preferences(
    services: Services, inbox: tuple[Inbox, int], fixed_clock: list[dt.datetime]
) -> None:
    box = inbox[0]
    intake = await staff(services, "ina", "intake_officer")
    lead = await staff(services, "lead", "team_lead,investigator")
    quiet = await staff(services, "quiet", "investigator")
    await staff(services, "cust", "identity_custodian")
    case_id, code = await submit_case(services, token="t-team", what=CANARY)
    key = await case_key(services, code, case_id)
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await casework.accept(s, case, intake)
        for uid, fn in ((lead, "lead"), (quiet, "member")):
            user = await s.get(User, uid)
            assert user is not None
            await casework.add_member(s, case, key, intake, user, fn, declared_no_conflict=True)
        quiet_user = await s.get(User, quiet)
        assert quiet_user is not None
        assert await notify_kinds.set_prefs(s, quiet_user, []) == "none"
    access = await reporter_followup.sign_in_with_receipt(services, code)
    assert access is not None
    await reporter_followup.reporter_reply(services, access, case_id, CANARY + " a reply")
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        await casework.request_identity(s, services, case, key, lead, "needed to interview")
    report = await notify.run(services)
    assert report.staff_mails == 2, report  # lead and the custodian; quiet chose none
    lead_text = body(box.to("lead@example.org")[0])
    assert count_line(lead_text, "Investigation teams you were added to") == 1
    assert count_line(lead_text, "New messages from reporters") == 1
    cust_text = body(box.to("cust@example.org")[0])
    assert count_line(cust_text, "Identity requests waiting") == 1
    assert box.to("quiet@example.org") == []
    assert box.to("ina@example.org") == []  # accepted: the case is the team's now
    no_leaks(box, *await numbers_of(services, case_id))


def test_preferences_parse_and_offer_by_role() -> None:
    assert notify_kinds.offered_kinds({"approver"}) == [
        "assigned",
        "deadline",
        "approval",
        "rights_request",
    ]
    assert notify_kinds.parse_prefs("", {"identity_custodian"}) == {
        "identity_request",
        "rights_request",
    }
    assert notify_kinds.parse_prefs("none", {"intake_officer"}) == frozenset()
    assert notify_kinds.parse_prefs("approval,bogus", {"intake_officer"}) == frozenset()
    assert notify_kinds.format_prefs(["approval", "x"], {"approver"}) == "approval"
    assert notify_kinds.format_prefs([], {"approver"}) == "none"
    assert Principal("u", frozenset()).user_id == "u"


async def test_reporter_with_an_address_gets_news_only_and_others_nothing(
    services: Services, inbox: tuple[Inbox, int], fixed_clock: list[dt.datetime]
) -> None:
    box = inbox[0]
    intake = await staff(services, "ina", "intake_officer", mail=False)
    with_addr, code1 = await submit_case(services, token="t-r1", what=CANARY)
    without, _code2 = await submit_case(services, token="t-r2", what=CANARY)
    access = await reporter_followup.sign_in_with_receipt(services, code1)
    assert access is not None
    await reporter_contact.set_address(services, access.receipt_id, "whistle@example.net")
    await notify.run(services)  # "received" is the reporter's own doing: no news
    assert box.messages == []
    async with services.db.write() as s:
        for cid in (with_addr, without):
            case = await s.get(Case, cid)
            assert case is not None
            await casework.accept(s, case, intake)
    report = await notify.run(services)
    assert report.reporter_mails == 1
    mails = box.to("whistle@example.net")
    assert len(mails) == 1
    text = body(mails[0])
    assert "There is news about your report" in text
    raw = box.raw()
    assert code1.encode() not in raw and code1.replace("-", "").encode() not in raw
    no_leaks(box, *await numbers_of(services, with_addr, without))
    assert len(box.messages) == 1  # the reporter without an address: nothing
    # more news the same day: no second mail until tomorrow
    async with services.db.write() as s:
        case = await s.get(Case, with_addr)
        assert case is not None
        case_events.add_event(s, with_addr, "staff_message", public=True, actor=intake)
    await notify.run(services)
    assert len(box.messages) == 1
    fixed_clock[0] += dt.timedelta(days=1)
    await notify.run(services)
    assert len(box.to("whistle@example.net")) == 2
    # the address is sealed: not in the database in plaintext
    async with services.db.read() as s:
        from portal.kernel.db.models import ReporterContact

        row = await s.get(ReporterContact, access.receipt_id)
        assert row is not None and b"whistle" not in row.sealed_address


async def test_mail_server_down_keeps_the_queue(
    services: Services, inbox: tuple[Inbox, int], fixed_clock: list[dt.datetime]
) -> None:
    await staff(services, "ina", "intake_officer")
    await submit_case(services, token="t-down", what=CANARY)
    await notify.collect(services)
    fixed_clock[0] += dt.timedelta(hours=8)
    down = Mailer(services.settings.with_overrides(smtp_port=free_port()))
    report = notify.RunReport()
    await notify.send_pending(services, down, report)
    assert report.error and report.staff_mails == 0
    report = notify.RunReport()
    await notify.send_pending(services, Mailer(services.settings), report)
    assert report.staff_mails == 1
    assert len(inbox[0].to("ina@example.org")) == 1


# --- STARTTLS and authentication ---------------------------------------------------------------


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_starttls_and_login_before_any_message(settings: Settings, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    seen: list[str] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret" and data.login == b"ws"
        seen.append(f"{mechanism}:{ok}:{session.ssl is not None}")
        return AuthResult(success=ok)

    handler = Inbox()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_required=True,
    )
    controller.start()
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        good = settings.with_overrides(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_starttls=True,
            smtp_user="ws",
            smtp_password="s3cret",
        )
        await Mailer(good, tls_context=trust).send([Mail("a@example.org", "s", "hello")])
        assert len(handler.messages) == 1
        assert seen and all(entry.endswith(":True") for entry in seen)
        with pytest.raises(MailError):  # wrong password: refused, nothing sent
            await Mailer(good.with_overrides(smtp_password="nope"), tls_context=trust).send(
                [Mail("a@example.org", "s", "hello")]
            )
        with pytest.raises(MailError):  # an untrusted certificate is refused before login
            await Mailer(good).send([Mail("a@example.org", "s", "hello")])
        assert len(handler.messages) == 1
    finally:
        controller.stop()


# --- through the real app: the settings page and the reporter's address form ------------------


def test_settings_page_saves_preferences_and_the_duty_roster(
    services: Services, client: Any, inbox: tuple[Inbox, int]
) -> None:
    from tests.investigator.ws_helpers import Desk, run

    desk = Desk(client, services)
    desk.add("root", "administrator")
    appr = desk.add("appr", "approver")
    page = desk.get("appr", "/workspace/notifications")
    assert page.status_code == 200
    assert 'value="approval" checked' in page.text and "new_cases" not in page.text
    assert "/workspace/notifications/duty" not in page.text  # not an administrator
    saved = desk.post("appr", "/workspace/notifications", {"kind": ["deadline", "new_cases"]})
    assert saved.status_code == 303

    async def prefs() -> str:
        async with services.db.read() as s:
            user = await s.get(User, appr.user_id)
            assert user is not None
            return user.notify_prefs

    assert run(client, prefs) == "deadline"  # new_cases is not offered to an approver
    assert (
        desk.post("appr", "/workspace/notifications/duty", {"on_duty": [appr.user_id]}).status_code
        == 404
    )
    admin_page = desk.get("root", "/workspace/notifications")
    assert "/workspace/notifications/duty" in admin_page.text
    assert (
        desk.post("root", "/workspace/notifications/duty", {"on_duty": [appr.user_id]}).status_code
        == 303
    )

    async def duty() -> list[str]:
        async with services.db.read() as s:
            return [u.id for u in await duty_roster.on_duty(s)]

    assert run(client, duty) == [appr.user_id]
    assert "You are on duty" in desk.get("appr", "/workspace/notifications").text


def test_reporter_sets_and_removes_the_address_on_the_follow_up_page(
    services: Services, client: Any, inbox: tuple[Inbox, int]
) -> None:
    from tests.investigator.ws_helpers import run
    from tests.portal.test_reporter_journeys import case_page, sign_in

    client.headers["accept-language"] = "en"
    _case_id, code = run(client, lambda: submit_case(services, token="t-http", what=CANARY))
    assert sign_in(client, code).status_code == 303
    page, token, _ids = case_page(client)
    assert "Notify me at this address" in page.text
    bad = client.post(
        "/follow-up/notify-address",
        data={"_csrf_token": token, "address": "not an address"},
        follow_redirects=True,
    )
    assert "does not look like an e-mail address" in bad.text
    ok = client.post(
        "/follow-up/notify-address",
        data={"_csrf_token": token, "address": "me@example.net"},
        follow_redirects=True,
    )
    assert "An address is saved" in ok.text and "me@example.net" not in ok.text
    access = run(client, lambda: reporter_followup.sign_in_with_receipt(services, code))
    assert run(client, lambda: reporter_contact.has_address(services, access.receipt_id))
    gone = client.post(
        "/follow-up/notify-address",
        data={"_csrf_token": token, "remove": "yes"},
        follow_redirects=True,
    )
    assert "The address was removed" in gone.text
    assert not run(client, lambda: reporter_contact.has_address(services, access.receipt_id))


async def test_deadline_warnings_reach_the_handler_and_superior_unless_excluded(
    services: Services, inbox: tuple[Inbox, int]
) -> None:
    from investigator.domain import deadlines as dl

    box = inbox[0]
    now = [dt.datetime(2025, 9, 29, 10, 0, tzinfo=clock.SHANGHAI)]
    clock.set_clock(lambda: now[0])
    try:
        lead = await staff(services, "lead", "team_lead,investigator")
        boss = await staff(services, "boss", "team_lead")
        other_lead = await staff(services, "lead2", "team_lead,investigator")
        async with services.db.write() as s:
            await s.execute(
                update(User).where(User.id.in_([lead, other_lead])).values(superior_id=boss)
            )
        case_a, _code_a = await submit_case(services, token="t-dl-a", what=CANARY)
        case_b, code_b = await submit_case(services, token="t-dl-b", what=CANARY)
        await make_subject(services, case_b, code_b, boss)  # boss is accused in case B
        async with services.db.write() as s:
            for cid, handler in ((case_a, lead), (case_b, other_lead)):
                case = await s.get(Case, cid)
                assert case is not None
                await dl.open_deadline(s, case, "handling", handler)
        await notify.run(services)  # flush the new-case notices (nobody is intake here)
        box.messages.clear()
        now[0] = dt.datetime(2025, 10, 14, 10, 0, tzinfo=clock.SHANGHAI)  # 15/30: 50%
        report = await notify.run(services)
        assert report.deadline_notices >= 2  # (+ intake clocks without a handler)
        assert (
            count_line(body(box.to("lead@example.org")[0]), "Deadline warnings and overdue notices")
            == 1
        )
        assert (
            count_line(
                body(box.to("lead2@example.org")[0]), "Deadline warnings and overdue notices"
            )
            == 1
        )
        # the superior hears about case A only: case B names them
        assert (
            count_line(body(box.to("boss@example.org")[0]), "Deadline warnings and overdue notices")
            == 1
        )
        no_leaks(box, *await numbers_of(services, case_a, case_b))
    finally:
        clock.set_clock(None)


def test_portal_notify_run_command(services: Services, inbox: tuple[Inbox, int]) -> None:
    """The scheduler's command, as a subprocess on the same installation."""
    import asyncio
    import os
    import subprocess
    import sys

    settings = services.settings

    async def setup() -> None:
        await staff(services, "ina", "intake_officer")
        await submit_case(services, token="t-cli", what=CANARY)
        await notify.collect(services, clock.now() - dt.timedelta(hours=12))  # an earlier slot
        await services.db.dispose()

    asyncio.run(setup())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DATABASE_URL"))}
    env.update(
        PORTAL_DATA_DIR=str(settings.data_dir),
        PORTAL_MODE="test",
        PORTAL_ARGON2_PROFILE="test",
        DATABASE_URL=settings.database_url,
        PORTAL_SMTP_HOST="127.0.0.1",
        PORTAL_SMTP_PORT=str(free_port()),  # nobody listens: the mail cannot go
        PORTAL_SMTP_STARTTLS="0",
    )

    def cli() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "portal.app.cli", "notify", "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    down = cli()
    assert down.returncode == 1, down.stderr
    assert "mail not sent" in down.stderr and "ina@" not in down.stderr
    env["PORTAL_SMTP_PORT"] = str(inbox[1])
    up = cli()
    assert up.returncode == 0, up.stderr
    assert "1 staff mail(s)" in up.stdout
    assert len(inbox[0].to("ina@example.org")) == 1


async def test_an_extension_request_tells_the_approvers_outside_the_team(
    services: Services, inbox: tuple[Inbox, int]
) -> None:
    from investigator.domain import deadline_extension as extension
    from investigator.domain import deadlines as dl

    box = inbox[0]
    now = [dt.datetime(2025, 9, 29, 10, 0, tzinfo=clock.SHANGHAI)]
    clock.set_clock(lambda: now[0])
    try:
        intake = await staff(services, "ina", "intake_officer", mail=False)
        lead = await staff(services, "lead", "team_lead,investigator", mail=False)
        await staff(services, "appr", "approver")
        conflicted = await staff(services, "appr2", "approver")
        case_id, code = await submit_case(services, token="t-ext", what=CANARY)
        key = await case_key(services, code, case_id)
        async with services.db.write() as s:
            case = await s.get(Case, case_id)
            assert case is not None
            await casework.accept(s, case, intake)
            user = await s.get(User, lead)
            assert user is not None
            await casework.add_member(s, case, key, intake, user, "lead", declared_no_conflict=True)
            await casework.declare_conflict(s, case_id, conflicted)
            d = await dl.open_deadline(s, case, "handling", lead)
            await extension.request_extension(
                s, services, case, key, d, lead, 20, "awaiting an external audit report"
            )
        report = await notify.run(services)
        assert report.staff_mails == 1, report
        assert count_line(body(box.to("appr@example.org")[0]), "Approvals waiting for you") == 1
        assert box.to("appr2@example.org") == []  # declared a conflict: never told
        no_leaks(box, *await numbers_of(services, case_id))
    finally:
        clock.set_clock(None)
