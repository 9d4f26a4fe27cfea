"""C4/A4: a copy of the database cannot test a staff password guess; weak passwords are refused.

* The stored password hash and the password seal of the private key both depend on the
  keyring's pepper (crypto.pepper): with the row and the right password but without the
  keyring, neither verifies nor opens; with it, both do.
* An account still in the older, unpeppered form moves over at its next successful sign-in
  over HTTP: re-hashed and re-sealed (the same private key, which still opens its cases).
* The password form refuses guessable passwords with the reason in the page's language.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from crypto.errors import WrongPasswordError
from crypto.keyring import create_keyring
from crypto.passwords import generate_password, verify_password
from crypto.recipients import reseal_private_key, unlock_with_password
from crypto.suites import Suite
from investigator.domain.staff import add_user
from portal.kernel.db.models import AuditEntry, User
from portal.kernel.services import Services
from tests.investigator.conftest import Browser, Staff, create_staff, form_token
from tests.investigator.ws_helpers import REPORT_TEXT, Desk, run, submit_case


def _user(client: TestClient[Litestar], services: Services, user_id: str) -> User:
    async def load() -> User:
        async with services.db.read() as s:
            return (await s.execute(select(User).where(User.id == user_id))).scalar_one()

    return run(client, load)  # type: ignore[no-any-return]


def _actions(client: TestClient[Litestar], services: Services, user_id: str) -> list[str]:
    async def load() -> list[str]:
        async with services.db.read() as s:
            rows = (
                await s.execute(
                    select(AuditEntry.action)
                    .where(AuditEntry.actor_user_id == user_id)
                    .order_by(AuditEntry.id)
                )
            ).scalars()
            return list(rows)

    return run(client, load)  # type: ignore[no-any-return]


def _make_legacy(client: TestClient[Litestar], services: Services, staff: Staff) -> bytes:
    """Rewrite the account as it was stored before issue 13: a bare Argon2id hash of the
    password and a version 1 seal (Argon2id of the password alone). Returns the private key."""
    user = _user(client, services, staff.user_id)
    pepper = services.keyring.password_pepper
    private = unlock_with_password(user.sealed_private_by_password, staff.password, pepper)
    p = services.argon2
    legacy_hash = PasswordHasher(
        time_cost=p.iterations, memory_cost=p.memory_kib, parallelism=p.lanes
    ).hash(staff.password)
    legacy_seal = reseal_private_key(private, staff.password, p)

    async def write() -> None:
        async with services.db.write() as s:
            row = await s.get(User, staff.user_id)
            assert row is not None
            row.password_hash = legacy_hash
            row.sealed_private_by_password = legacy_seal

    run(client, write)
    # what a database thief could do with the old form: test a guess with no keyring at all
    assert PasswordHasher().verify(legacy_hash, staff.password)
    assert unlock_with_password(legacy_seal, staff.password) == private
    return private


def test_C4_a_database_copy_alone_cannot_test_a_password_guess(
    client: TestClient[Litestar], services: Services, tmp_path: Path
) -> None:
    staff = run(client, lambda: create_staff(services, "quinn", "intake_officer"))
    row = _user(client, services, staff.user_id)
    stored, sealed = row.password_hash, row.sealed_private_by_password
    assert stored.startswith("$pepper1$aes256gcm$argon2id$")
    assert sealed[:4] == b"P\x02\x01\x01"  # v2 (peppered), password kind, AES-256-GCM

    # the row and the right password, without the keyring: no verification, no unlock
    assert not verify_password(stored, staff.password, services.argon2, None)
    with pytest.raises(WrongPasswordError):
        unlock_with_password(sealed, staff.password)
    # nor with the secrets of another installation (a thief making up their own keyring)
    other = create_keyring(tmp_path / "other-secrets").password_pepper
    assert not verify_password(stored, staff.password, services.argon2, other)
    with pytest.raises(WrongPasswordError):
        unlock_with_password(sealed, staff.password, other)

    # with this installation's keyring: both work, and the key is the account's
    pepper = services.keyring.password_pepper
    assert verify_password(stored, staff.password, services.argon2, pepper)
    assert not verify_password(stored, staff.password + "x", services.argon2, pepper)
    private = unlock_with_password(sealed, staff.password, pepper)
    from crypto.recipients import public_key_of

    assert public_key_of(private) == row.public_key


def test_C4_an_old_format_account_moves_over_at_its_next_sign_in(
    client: TestClient[Litestar], services: Services
) -> None:
    desk = Desk(client, services)
    staff = desk.add("ruth", "intake_officer")
    # a report wrapped for the officer, before the account is rewritten to the old format
    case_id, _code = run(client, lambda: submit_case(services, token="pepper-upgrade-token-1"))
    private = _make_legacy(client, services, staff)

    # a wrong password changes nothing
    browser = Browser(client)
    refused = browser.password_step(staff.username, staff.password + "!")
    assert refused.status_code == 200 and "location" not in refused.headers
    assert _user(client, services, staff.user_id).sealed_private_by_password[:2] == b"P\x01"

    # the right password over HTTP: signed in, and the row is in the peppered form now
    page = desk.get("ruth", f"/workspace/cases/{case_id}")
    assert page.status_code == 200 and REPORT_TEXT in page.text  # the key still opens the case
    row = _user(client, services, staff.user_id)
    assert row.password_hash.startswith("$pepper1$aes256gcm$argon2id$")
    assert row.sealed_private_by_password[:4] == b"P\x02\x01\x01"
    pepper = services.keyring.password_pepper
    assert unlock_with_password(row.sealed_private_by_password, staff.password, pepper) == private
    with pytest.raises(WrongPasswordError):
        unlock_with_password(row.sealed_private_by_password, staff.password)
    assert not verify_password(row.password_hash, staff.password, services.argon2, None)
    with pytest.raises(Exception):  # any argon2 failure: not a bare hash of the password
        PasswordHasher().verify(row.password_hash, staff.password)
    actions = _actions(client, services, staff.user_id)
    assert actions.count("password.upgrade") == 1
    assert actions.index("password.upgrade") < actions.index("signin.password_ok")

    # the next sign-in finds it current: nothing is rewritten again
    desk.anonymous()
    again = Browser(client).password_step(staff.username, staff.password)
    assert again.status_code == 303 and again.headers["location"] == "/workspace/totp"
    assert _user(client, services, staff.user_id).password_hash == row.password_hash
    assert _actions(client, services, staff.user_id).count("password.upgrade") == 1


# --- the strength check on the password form ------------------------------------------------

REASONS = {
    "zh-CN": {
        "easy": "此密码太容易被猜到。",
        "walk": "请不要使用键盘上相邻按键的组合，例如 qwerty 或 1qaz2wsx。",
        "word": "请不要只用一个姓名或单词加上数字或符号，例如姓名加年份。",
        "name": "密码中不能包含您的姓名。",
    },
    "zh-TW": {
        "easy": "此密碼太容易被猜到。",
        "walk": "請不要使用鍵盤上相鄰按鍵的組合，例如 qwerty 或 1qaz2wsx。",
        "word": "請不要只用一個姓名或單詞加上數字或符號，例如姓名加年份。",
        "name": "密碼中不能包含您的姓名。",
    },
    "en": {
        "easy": "This password is too easy to guess.",
        "walk": "Avoid keyboard patterns such as qwerty or 1qaz2wsx.",
        "word": "Avoid a single name or word with only digits or symbols added, "
        "such as a name and a year.",
        "name": "The password must not contain your name.",
    },
}
WEAK = [
    ("Zhang123456789", "word"),
    ("Qwerty123456!", "walk"),
    ("1qaz2wsx3edc4rfv", "walk"),
    ("Password12345", "word"),
    ("Xiaohong19920611!", "name"),  # the display name plus digits
    ("P@ssw0rd2024!", "easy"),
]


@pytest.mark.parametrize("language", ["zh-CN", "zh-TW", "en"])
def test_A4_the_password_form_refuses_guessable_passwords_with_the_reason(
    client: TestClient[Litestar], services: Services, language: str
) -> None:
    async def make() -> Staff:
        new = await add_user(
            services.db,
            services.argon2,
            pepper=services.keyring.password_pepper,
            username="xhchen",
            display_name="Chen Xiaohong",
            roles="investigator",
        )
        return Staff(new.user.id, new.user.username, new.one_time_password)

    staff = run(client, make)  # must change the one-time password at first sign-in
    client.headers["accept-language"] = language
    browser = Browser(client)
    assert browser.enrol(staff).status_code == 303
    page = client.get("/workspace/password")
    assert page.status_code == 200
    token = form_token(page.text)
    before = _user(client, services, staff.user_id).password_hash
    for weak, reason in WEAK:
        refused = client.post(
            "/workspace/password",
            data={"_csrf_token": token, "new_password": weak, "new_password_again": weak},
        )
        assert refused.status_code == 400, weak
        assert REASONS[language][reason] in refused.text, (weak, reason)
        # no internal code and never the typed password on the page
        assert weak not in refused.text
    assert _user(client, services, staff.user_id).password_hash == before

    generated = generate_password()
    done = client.post(
        "/workspace/password",
        data={"_csrf_token": token, "new_password": generated, "new_password_again": generated},
    )
    assert done.status_code == 200
    row = _user(client, services, staff.user_id)
    assert row.password_hash != before and row.must_change_password is False
    assert verify_password(
        row.password_hash, generated, services.argon2, services.keyring.password_pepper
    )
    assert Suite.AES256GCM.label in row.password_hash
