"""Staff sign-in through the real app (A4, C4) and the throttle."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select, update

from crypto.recipients import unlock_with_password, unlock_with_recovery
from portal.http.sessions import SESSION_COOKIE
from portal.kernel import audit
from portal.kernel.db.models import AuditEntry, User
from portal.kernel.services import Services
from portal.kernel.throttle_policy import MemorySigninThrottle, ThrottlePolicy

from .conftest import STRONG_PASSWORD, Browser, code_for, form_token, in_app_loop

_RECOVERY = re.compile(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){6})</code>")


def _user(client: TestClient[Litestar], services: Services, user_id: str) -> User:
    async def load() -> User:
        async with services.db.read() as s:
            return (await s.execute(select(User).where(User.id == user_id))).scalar_one()

    return in_app_loop(client, load)  # type: ignore[no-any-return]


def _actions(client: TestClient[Litestar], services: Services) -> list[tuple[str | None, str, str]]:
    async def load() -> list[tuple[str | None, str, str]]:
        async with services.db.read() as s:
            rows = (await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
            return [(r.actor_user_id, r.action, r.detail) for r in rows]

    return in_app_loop(client, load)  # type: ignore[no-any-return]


def _set(client: TestClient[Litestar], services: Services, user_id: str, **values: object) -> None:
    async def run() -> None:
        async with services.db.write() as s:
            await s.execute(update(User).where(User.id == user_id).values(**values))

    in_app_loop(client, run)


# --- the happy path ---------------------------------------------------------------------


def test_signin_page(client: TestClient[Litestar]) -> None:
    response = client.get("/workspace/")
    assert response.status_code == 200
    assert 'action="/workspace/signin"' in response.text
    assert 'name="_csrf_token"' in response.text
    assert response.headers["cache-control"] == "no-store"
    assert SESSION_COOKIE not in response.cookies  # no session for visitors


def test_enrolment_then_signin_with_totp(
    staff_client: Browser, make_staff, services: Services, client: TestClient[Litestar]
) -> None:
    staff = make_staff("alice", "intake_officer,auditor")
    response = staff_client.enrol(staff)
    assert response.status_code == 303 and response.headers["location"] == "/workspace/"
    home = client.get("/workspace/")
    assert home.status_code == 200
    assert "alice" in home.text
    assert 'href="/workspace/inbox"' in home.text  # intake officer
    assert 'href="/workspace/audit"' in home.text  # auditor
    assert 'href="/workspace/users"' not in home.text  # not an administrator
    assert home.headers["cache-control"] == "no-store"
    user = _user(client, services, staff.user_id)
    assert user.totp_secret_sealed is not None
    assert staff.totp_secret and staff.totp_secret.encode() not in user.totp_secret_sealed
    assert user.totp_last_step > 0

    assert staff_client.sign_out().status_code == 303
    assert 'action="/workspace/signin"' in client.get("/workspace/").text

    response = staff_client.sign_in(staff)
    assert response.status_code == 303 and response.headers["location"] == "/workspace/"
    assert "alice" in client.get("/workspace/").text

    actions = [a for _, a, _ in _actions(client, services)]
    assert actions == [
        "signin.password_ok",
        "totp.enrol",
        "signin.success",
        "signout",
        "signin.password_ok",
        "signin.success",
    ]


def test_private_key_is_in_the_server_side_session_only(
    staff_client: Browser, make_staff, services: Services, client: TestClient[Litestar]
) -> None:
    staff = make_staff()
    staff_client.enrol(staff)
    user = _user(client, services, staff.user_id)
    private = unlock_with_password(
        user.sealed_private_by_password, staff.password, services.keyring.password_pepper
    )
    cookie = client.cookies.get(SESSION_COOKIE)
    assert cookie and private.hex() not in cookie and len(cookie) == 64


# --- failures look alike ------------------------------------------------------------------


def test_unknown_user_and_wrong_password_get_identical_answers(
    staff_client: Browser, make_staff, services: Services, client: TestClient[Litestar]
) -> None:
    staff = make_staff("bob")
    wrong = staff_client.password_step("bob", "not the right password")
    unknown = staff_client.password_step("nobody", "not the right password")
    disabled_staff = make_staff("carol")
    _set(client, services, disabled_staff.user_id, disabled=True)
    disabled = staff_client.password_step("carol", disabled_staff.password)
    for response in (wrong, unknown, disabled):
        assert response.status_code == 200
        assert "The user name or password is not correct." in response.text
    assert wrong.text == unknown.text == disabled.text
    assert dict(wrong.headers).keys() == dict(unknown.headers).keys()
    entries = _actions(client, services)
    assert entries == [
        (staff.user_id, "signin.failure", "step=password"),
        (None, "signin.failure", "step=password unknown_account"),
        (disabled_staff.user_id, "signin.failure", "step=password disabled"),
    ]
    assert all("not the right password" not in d for _, _, d in entries)
    assert _user(client, services, staff.user_id).failed_signins == 1


def test_oversized_input_is_refused_alike(staff_client: Browser, make_staff) -> None:
    make_staff("dave")
    long_password = staff_client.password_step("dave", "x" * 5000)
    long_name = staff_client.password_step("d" * 500, "whatever password")
    assert long_password.status_code == long_name.status_code == 200
    assert long_password.text == long_name.text


def test_wrong_code_and_replayed_code_are_refused(
    staff_client: Browser, make_staff, services: Services, client: TestClient[Litestar]
) -> None:
    staff = make_staff()
    staff_client.enrol(staff)
    staff_client.sign_out()
    assert staff.totp_secret
    used = code_for(staff.totp_secret, 1)
    assert staff_client.sign_in(staff, 1).headers["location"] == "/workspace/"
    staff_client.sign_out()

    # the same code again: refused, even though it is still within its time window
    assert staff_client.password_step(staff.username, staff.password).status_code == 303
    replay = staff_client.code_step(used)
    assert replay.status_code == 200
    assert "That code was not accepted." in replay.text
    wrong = staff_client.code_step("000000" if used != "000000" else "111111")
    assert "That code was not accepted." in wrong.text
    # not signed in: the home page redirects back to the code page
    assert client.get("/workspace/", follow_redirects=False).headers["location"] == (
        "/workspace/totp"
    )
    failures = [d for _, a, d in _actions(client, services) if a == "signin.failure"]
    assert failures == ["step=totp", "step=totp"]


def test_too_many_wrong_codes_restart_the_signin(staff_client: Browser, make_staff) -> None:
    staff = make_staff()
    staff_client.enrol(staff)
    staff_client.sign_out()
    staff_client.password_step(staff.username, staff.password)
    for _ in range(4):
        assert "That code was not accepted." in staff_client.code_step("000000").text
    last = staff_client.code_step("000000")
    assert "Your sign-in took too long" in last.text
    assert staff_client.client.get("/workspace/totp", follow_redirects=False).status_code == 303


def test_pending_session_is_not_signed_in(staff_client: Browser, make_staff) -> None:
    staff = make_staff()
    staff_client.password_step(staff.username, staff.password)
    # between the password and the code, nothing behind the guard is reachable
    assert (
        staff_client.client.get("/workspace/password", follow_redirects=False).headers["location"]
        == "/workspace/"
    )


# --- sessions -----------------------------------------------------------------------------


def test_session_id_is_rotated_at_signin(
    staff_client: Browser, make_staff, client: TestClient[Litestar]
) -> None:
    staff = make_staff()
    planted = "ab" * 32
    client.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
    staff_client.password_step(staff.username, staff.password)
    pending = client.cookies.get(SESSION_COOKIE)
    assert pending and pending != planted
    page = client.get("/workspace/totp/enrol")
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page.text)
    assert secret
    client.post(
        "/workspace/totp/enrol",
        data={
            "_csrf_token": form_token(page.text),
            "code": code_for(secret.group(1).replace(" ", "")),
        },
    )
    signed_in = client.cookies.get(SESSION_COOKIE)
    assert signed_in and signed_in not in (planted, pending)
    assert "alice" in client.get("/workspace/").text


def test_signout_is_post_only_and_needs_csrf(
    staff_client: Browser, make_staff, client: TestClient[Litestar]
) -> None:
    staff = make_staff()
    staff_client.enrol(staff)
    assert client.get("/workspace/signout").status_code == 405
    assert client.post("/workspace/signout", data={}).status_code == 403
    assert client.post("/workspace/signout", data={"_csrf_token": "x" * 128}).status_code == 403
    assert "alice" in client.get("/workspace/").text  # still signed in
    response = staff_client.sign_out()
    assert response.status_code == 303
    assert 'action="/workspace/signin"' in client.get("/workspace/").text


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/workspace/signin", {"username": "alice", "password": STRONG_PASSWORD}),
        ("/workspace/totp", {"code": "123456"}),
        ("/workspace/totp/enrol", {"code": "123456"}),
        ("/workspace/password", {"new_password": "x", "new_password_again": "x"}),
        ("/workspace/signout", {}),
    ],
)
def test_every_post_needs_csrf(
    client: TestClient[Litestar], make_staff, path: str, data: dict
) -> None:
    make_staff()
    client.get("/workspace/")  # the CSRF cookie is set, but the form field is missing
    assert client.post(path, data=data).status_code == 403


def test_disabled_user_is_signed_out(
    staff_client: Browser, make_staff, services: Services, client: TestClient[Litestar]
) -> None:
    staff = make_staff()
    staff_client.enrol(staff)
    assert "alice" in client.get("/workspace/").text
    _set(client, services, staff.user_id, disabled=True)
    page = client.get("/workspace/")
    assert 'action="/workspace/signin"' in page.text
    assert not client.cookies.get(SESSION_COOKIE)


def test_idle_timeout_ends_the_session(
    staff_client: Browser, make_staff, client: TestClient[Litestar], monkeypatch, settings
) -> None:
    import portal.http.sessions as sessions

    staff = make_staff()
    staff_client.enrol(staff)
    now = sessions._now()
    monkeypatch.setattr(sessions, "_now", lambda: now + settings.staff_idle_timeout_s + 5)
    assert 'action="/workspace/signin"' in client.get("/workspace/").text


# --- first sign-in: forced password change ----------------------------------------------


def test_first_signin_forces_a_password_change(
    staff_client: Browser, make_staff, services: Services, client: TestClient[Litestar]
) -> None:
    staff = make_staff("erin", "investigator", must_change_password=True)
    staff_client.enrol(staff)
    home = client.get("/workspace/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/workspace/password"
    page = client.get("/workspace/password")
    assert page.status_code == 200 and 'name="current_password"' not in page.text
    token = form_token(page.text)

    weak = client.post(
        "/workspace/password",
        data={"_csrf_token": token, "new_password": "short", "new_password_again": "short"},
    )
    assert weak.status_code == 400 and "Use at least 12 characters." in weak.text
    with_name = "erin-" + "9f3Kq!x7Lm"
    named = client.post(
        "/workspace/password",
        data={"_csrf_token": token, "new_password": with_name, "new_password_again": with_name},
    )
    assert named.status_code == 400 and "must not contain the user name" in named.text
    mismatch = client.post(
        "/workspace/password",
        data={
            "_csrf_token": token,
            "new_password": "a long enough passphrase",
            "new_password_again": "another long passphrase",
        },
    )
    assert mismatch.status_code == 400 and "not the same" in mismatch.text
    same = client.post(
        "/workspace/password",
        data={
            "_csrf_token": token,
            "new_password": staff.password,
            "new_password_again": staff.password,
        },
    )
    assert same.status_code == 400 and "different from the current one" in same.text
    assert client.get("/workspace/", follow_redirects=False).status_code == 303  # still forced

    new_password = "a very different passphrase 7"
    done = client.post(
        "/workspace/password",
        data={
            "_csrf_token": token,
            "new_password": new_password,
            "new_password_again": new_password,
        },
    )
    assert done.status_code == 200
    assert done.headers["cache-control"] == "no-store"
    match = _RECOVERY.search(done.text)
    assert match, done.text
    recovery_key = match.group(1)

    user = _user(client, services, staff.user_id)
    assert user.must_change_password is False
    by_password = unlock_with_password(
        user.sealed_private_by_password, new_password, services.keyring.password_pepper
    )
    by_recovery = unlock_with_recovery(user.sealed_private_by_recovery, recovery_key)
    assert by_password == by_recovery
    home = client.get("/workspace/")
    assert home.status_code == 200 and "erin" in home.text
    assert recovery_key not in home.text
    assert "password.change" in [a for _, a, _ in _actions(client, services)]

    # the old password no longer works, the new one does
    staff_client.sign_out()
    assert "not correct" in staff_client.password_step("erin", staff.password).text
    assert staff_client.password_step("erin", new_password).status_code == 303


def test_voluntary_change_needs_the_current_password(
    staff_client: Browser, make_staff, client: TestClient[Litestar]
) -> None:
    staff = make_staff()
    staff_client.enrol(staff)
    page = client.get("/workspace/password")
    assert 'name="current_password"' in page.text
    new = "another good passphrase 8"
    refused = client.post(
        "/workspace/password",
        data={
            "_csrf_token": form_token(page.text),
            "current_password": "wrong",
            "new_password": new,
            "new_password_again": new,
        },
    )
    assert refused.status_code == 400 and "current password is not correct" in refused.text
    ok = client.post(
        "/workspace/password",
        data={
            "_csrf_token": form_token(page.text),
            "current_password": staff.password,
            "new_password": new,
            "new_password_again": new,
        },
    )
    assert ok.status_code == 200 and _RECOVERY.search(ok.text)


def test_audit_chain_stays_intact(
    staff_client: Browser, make_staff, services: Services, client: TestClient[Litestar]
) -> None:
    staff = make_staff()
    staff_client.password_step("alice", "wrong password here")
    staff_client.enrol(staff)
    staff_client.sign_out()
    result = in_app_loop(client, lambda: audit.verify(services.db))
    assert result.ok and result.checked == 5


# --- the throttle ---------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_throttle_delay_grows_to_a_cap_and_never_refuses() -> None:
    clock = _Clock()
    policy = ThrottlePolicy(free_failures=3, base_delay=1.0, max_delay=8.0, global_budget=10**6)
    throttle = MemorySigninThrottle(policy, clock=clock)
    delays = []
    for _ in range(10):
        delays.append(await throttle.delay_for("alice"))
        await throttle.record_failure("alice")
    assert delays == [0, 0, 0, 1, 2, 4, 8, 8, 8, 8]
    assert await throttle.delay_for("bob") == 0  # other accounts are unaffected
    await throttle.record_success("alice")
    assert await throttle.delay_for("alice") == 0


async def test_throttle_forgets_after_a_quiet_period() -> None:
    clock = _Clock()
    throttle = MemorySigninThrottle(ThrottlePolicy(forget_after_s=60), clock=clock)
    for _ in range(6):
        await throttle.record_failure("alice")
    assert await throttle.delay_for("alice") > 0
    clock.now += 61
    assert await throttle.delay_for("alice") == 0


async def test_throttle_global_budget_slows_everyone() -> None:
    clock = _Clock()
    policy = ThrottlePolicy(global_budget=5, global_window_s=60, global_delay=2.0)
    throttle = MemorySigninThrottle(policy, clock=clock)
    for i in range(6):
        await throttle.record_failure(f"name{i}")
    assert await throttle.delay_for("fresh") == 2.0
    clock.now += 61
    assert await throttle.delay_for("fresh") == 0


async def test_throttle_memory_is_bounded() -> None:
    throttle = MemorySigninThrottle(ThrottlePolicy(max_tracked_keys=100), clock=_Clock())
    for i in range(1000):
        await throttle.record_failure(f"name{i}")
    assert len(throttle._accounts) == 100
    assert throttle.failures("name999") == 1 and throttle.failures("name0") == 0


async def test_delays_apply_and_the_right_password_still_works(services: Services) -> None:
    """A stranger's failures slow the account down but never lock it."""
    from investigator.domain.auth import SigninFailed, StaffAuth

    from .conftest import create_staff

    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    auth = StaffAuth(
        services.argon2,
        throttle=MemorySigninThrottle(ThrottlePolicy(free_failures=1, max_delay=4.0)),
        sleep=fake_sleep,
    )
    staff = await create_staff(services, "frank")
    for _ in range(6):
        with pytest.raises(SigninFailed):
            await auth.check_password(
                services.db, "frank", "guess guess guess", pepper=services.keyring.password_pepper
            )
    step = await auth.check_password(
        services.db, "FRANK ", staff.password, pepper=services.keyring.password_pepper
    )
    assert step.username == "frank" and len(step.private_key) == 32
    assert slept == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


# --- forgotten password: the recovery key ---------------------------------------------------


def _recover(client: TestClient[Litestar], username: str, key: str, new: str) -> object:
    page = client.get("/workspace/recover")
    assert page.status_code == 200
    return client.post(
        "/workspace/recover",
        data={
            "_csrf_token": form_token(page.text),
            "username": username,
            "recovery_key": key,
            "new_password": new,
            "new_password_again": new,
        },
    )


def test_recovery_key_sets_a_new_password_and_keeps_the_private_key(
    staff_client: Browser, make_staff, services: Services, client: TestClient[Litestar]
) -> None:
    staff = make_staff("gina", must_change_password=True)
    staff_client.enrol(staff)
    page = client.get("/workspace/password")
    first = "first chosen passphrase 1"
    done = client.post(
        "/workspace/password",
        data={
            "_csrf_token": form_token(page.text),
            "new_password": first,
            "new_password_again": first,
        },
    )
    match = _RECOVERY.search(done.text)
    assert match
    private = unlock_with_password(
        _user(client, services, staff.user_id).sealed_private_by_password,
        first,
        services.keyring.password_pepper,
    )
    staff_client.sign_out()

    assert 'href="/workspace/recover"' in client.get("/workspace/").text
    wrong_key = _recover(
        client, "gina", "0000-0000-0000-0000-0000-0000-0000", "new passphrase two 2"
    )
    unknown = _recover(client, "nobody", match.group(1), "new passphrase two 2")
    malformed = _recover(client, "gina", "not a key", "new passphrase two 2")
    for response in (wrong_key, unknown, malformed):
        assert response.status_code == 400
        assert "The user name or recovery key is not correct." in response.text
    assert wrong_key.text == unknown.text == malformed.text

    weak = _recover(client, "gina", match.group(1), "weak")
    assert weak.status_code == 400 and "Use at least 12 characters." in weak.text

    second = "second chosen passphrase 2"
    recovered = _recover(client, "gina", match.group(1).lower(), second)
    assert recovered.status_code == 200
    next_key = _RECOVERY.search(recovered.text)
    assert next_key and next_key.group(1) != match.group(1)
    user = _user(client, services, staff.user_id)
    assert (
        unlock_with_password(
            user.sealed_private_by_password, second, services.keyring.password_pepper
        )
        == private
    )
    assert unlock_with_recovery(user.sealed_private_by_recovery, next_key.group(1)) == private
    # the used recovery key is spent
    again = _recover(client, "gina", match.group(1), "third chosen passphrase 3")
    assert again.status_code == 400
    # TOTP is still needed to sign in
    staff.password = second
    assert staff_client.password_step("gina", second).headers["location"] == "/workspace/totp"
    assert staff_client.code_step(code_for(staff.totp_secret or "", 1)).headers["location"] == (
        "/workspace/"
    )
    actions = [a for _, a, _ in _actions(client, services)]
    assert "password.recover" in actions
    assert actions.count("signin.failure") == 4  # wrong, unknown, malformed, spent


def test_pages_are_translated(client: TestClient[Litestar], make_staff) -> None:
    make_staff()
    client.headers["accept-language"] = "zh-CN"
    token = form_token(client.get("/workspace/").text)
    failed = client.post(
        "/workspace/signin", data={"_csrf_token": token, "username": "x", "password": "y"}
    )
    assert "用户名或密码不正确。" in failed.text
    client.headers["accept-language"] = "zh-TW"
    assert "工作台登入" in client.get("/workspace/").text
