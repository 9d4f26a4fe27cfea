"""C6: on a 国密 (sm4gcm) installation every seal and wrap is SM4-GCM, every KDF HKDF-SM3.

Through the real app on an installation whose keyring names SM4GCM: a real-name report with
its receipt, staff sign-in with TOTP enrolment, team formation, a password change. Then every
wrap and seal written names suite 2 in its header: the staff wraps of case and identity keys
(``R``), the receipt wrap (``C``), both sealed private keys (``P``, the password seal in the
peppered version 2), the TOTP secret, the receipt copy of the submission and every field
(``E``); the password hash is peppered with HMAC-SM3. And everything still opens over HTTP.

A receipt issued before the profile covered HKDF (its lookup token and wrap key from
HKDF-SHA256, its wrap AES-GCM) still opens the follow-up page: readers follow the blob.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select

from crypto.errors import SuiteUnavailableError
from crypto.receipts import (
    derive_receipt_secrets,
    normalize_receipt,
    unwrap_with_receipt,
    wrap_with_receipt,
)
from crypto.recipients import unlock_with_password, unlock_with_recovery
from crypto.suites import Suite, self_test
from portal.case.reporter_contact import open_address
from portal.case.sealing import wrap_aad
from portal.kernel.db.models import (
    Case,
    Identity,
    KeyWrap,
    Receipt,
    ReporterContact,
    Subject,
    SubmissionNonce,
    User,
)
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.conftest import _prepare_database, _run
from tests.investigator.conftest import Browser
from tests.investigator.ws_helpers import Desk
from tests.portal.test_reporter_journeys import (
    case_page,
    receipt_of,
    report_fields,
    run_db,
    sign_in,
    submit,
)

WHAT = "The stock manager books phantom deliveries every quarter."
ADDRESS = "news@example.net"
NEW_PASSWORD = "lantern orchard 93 copper"


@pytest.fixture
def services(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Services]:
    """The shared fixture, with the keyring created for the 国密 suite."""
    from crypto.keyring import create_keyring
    from portal.app.wiring import build_services

    try:
        self_test(Suite.SM4GCM)
    except SuiteUnavailableError as exc:
        pytest.skip(f"this cryptography build lacks SM4: {exc}")
    create_keyring(settings.keyring_dir, Suite.SM4GCM)
    _prepare_database(settings, request)
    built = build_services(settings)
    yield built
    _run(built.close())


def _all(client: TestClient[Litestar], model: type) -> list:  # type: ignore[type-arg]
    async def q(s: object) -> list:  # type: ignore[type-arg]
        return list((await s.execute(select(model))).scalars())  # type: ignore[attr-defined]

    return run_db(client, q)  # type: ignore[no-any-return]


def test_C6_every_wrap_and_seal_of_an_sm4gcm_installation_is_sm4(
    client: TestClient[Litestar], services: Services
) -> None:
    assert services.keyring.suite is Suite.SM4GCM
    client.headers["accept-language"] = "en"
    desk = Desk(client, services)
    desk.add("intake", "intake_officer")
    desk.add("custodian", "identity_custodian")
    lead = desk.add("lead", "team_lead,investigator")
    desk.anonymous()

    fields = report_fields(
        what=WHAT, identity_mode="real_name", id_name="Li Lei", id_phone="13800000000"
    )
    response = submit(client, fields, [])
    assert response.status_code == 200, response.text
    code = receipt_of(response)
    assert sign_in(client, code).status_code == 303
    _page, csrf, ids = case_page(client)
    case_id = ids[0]
    saved = client.post(
        "/follow-up/notify-address",
        data={"_csrf_token": csrf, "address": ADDRESS},
        follow_redirects=True,
    )
    assert "An address is saved" in saved.text

    # staff: sign in (TOTP enrolment seals a secret), read, form the team, change a password
    page = desk.get("intake", f"/workspace/cases/{case_id}")
    assert page.status_code == 200 and WHAT in page.text
    added = desk.post(
        "intake",
        f"/workspace/cases/{case_id}/team/add",
        {"user_id": desk.user_id("lead"), "function": "lead", "declared_no_conflict": "yes"},
    )
    assert added.status_code == 303, added.text
    assert WHAT in desk.get("lead", f"/workspace/cases/{case_id}").text
    assert desk.get("custodian", "/workspace/").status_code == 200
    changed = desk.post(
        "lead",
        "/workspace/password",
        {
            "current_password": lead.password,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
        },
    )
    assert changed.status_code == 200, changed.text
    lead.password = NEW_PASSWORD

    # every wrap and seal written names the SM4 suite (id 2)
    wraps = _all(client, KeyWrap)
    staff_wraps = [w for w in wraps if w.user_id is not None]
    receipt_wraps = [w for w in wraps if w.receipt_id is not None]
    assert {w.scope for w in staff_wraps} >= {"case", "identity"}
    assert len({w.user_id for w in staff_wraps}) == 3  # intake, custodian, lead
    assert all(w.wrapped[:3] == b"R\x01\x02" for w in staff_wraps)
    assert receipt_wraps and all(w.wrapped[:3] == b"C\x01\x02" for w in receipt_wraps)
    users = _all(client, User)
    assert len(users) == 3
    for user in users:
        assert user.password_hash.startswith("$pepper1$sm4gcm$argon2id$"), user.username
        assert user.sealed_private_by_password[:4] == b"P\x02\x01\x02", user.username
        assert user.sealed_private_by_recovery[:4] == b"P\x01\x02\x02", user.username
        assert user.totp_secret_sealed is not None
        assert user.totp_secret_sealed[:3] == b"E\x01\x02", user.username
    nonces = [n for n in _all(client, SubmissionNonce) if n.sealed_receipt is not None]
    assert nonces and all(n.sealed_receipt[:3] == b"E\x01\x02" for n in nonces)
    cases = _all(client, Case)
    assert [c.suite for c in cases] == [2] and cases[0].content[:3] == b"E\x01\x02"
    assert all(s.sealed[:3] == b"E\x01\x02" for s in _all(client, Subject))
    identities = _all(client, Identity)
    assert identities and all(i.sealed[:3] == b"E\x01\x02" for i in identities)
    contacts = _all(client, ReporterContact)
    assert len(contacts) == 1 and contacts[0].sealed_address[:3] == b"E\x01\x02"
    assert open_address(services, contacts[0]) == ADDRESS  # what the notifier does
    # its key is the HKDF-SM3 one, not the HMAC-SHA256 key of aes256gcm installations
    import hashlib
    import hmac

    from crypto.envelope import bind_aad, open_sealed
    from crypto.errors import DecryptionError

    sha_key = hmac.new(services.keyring.server_key, b"reporter-contact", hashlib.sha256).digest()
    with pytest.raises(DecryptionError):
        open_sealed(
            sha_key,
            contacts[0].sealed_address,
            bind_aad("reporter-contact", contacts[0].receipt_id),
        )

    # and everything opens: the lead signs in again with the new password and reads the case
    desk.anonymous()
    browser = Browser(client)
    assert browser.sign_in(lead).status_code == 303
    assert WHAT in client.get(f"/workspace/cases/{case_id}").text
    # the recovery seal shown at the change opens the same key as the peppered password seal
    row = next(u for u in _all(client, User) if u.username == "lead")
    private = unlock_with_password(
        row.sealed_private_by_password, NEW_PASSWORD, services.keyring.password_pepper
    )
    shown = re.search(r"<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){6})</code>", changed.text)
    assert shown, changed.text
    assert unlock_with_recovery(row.sealed_private_by_recovery, shown.group(1)) == private
    # the reporter's receipt still opens the follow-up page and the case
    browser.sign_out()
    assert sign_in(client, code).status_code == 303
    page, _csrf, ids = case_page(client)
    assert ids == [case_id]


def test_C6_a_receipt_from_before_hkdf_sm3_still_opens(
    client: TestClient[Litestar], services: Services
) -> None:
    """Receipts of an sm4gcm installation issued before issue 13 had HKDF-SHA256 tokens and
    an AES-GCM receipt wrap: the follow-up page still finds and opens them."""
    client.headers["accept-language"] = "en"
    response = submit(client, report_fields(what=WHAT), [])
    assert response.status_code == 200, response.text
    code = receipt_of(response)
    assert sign_in(client, code).status_code == 303
    _page, _csrf, ids = case_page(client)
    case_id = ids[0]

    secrets_ = derive_receipt_secrets(
        normalize_receipt(code),
        services.keyring.pepper,
        services.receipt_argon2,
        suite=Suite.SM4GCM,
    )
    legacy = derive_receipt_secrets(
        normalize_receipt(code), services.keyring.pepper, services.receipt_argon2
    )
    assert legacy.lookup_token != secrets_.lookup_token  # SM3 and SHA-256 derivations differ
    assert legacy.lookup_token == secrets_.legacy_lookup_token

    async def rewrite() -> None:
        async with services.db.write() as s:
            receipt = (
                await s.execute(
                    select(Receipt).where(Receipt.lookup_token == secrets_.lookup_token)
                )
            ).scalar_one()
            wrap = (
                await s.execute(select(KeyWrap).where(KeyWrap.receipt_id == receipt.id))
            ).scalar_one()
            aad = wrap_aad(case_id, "case", receipt.id)
            case_key = unwrap_with_receipt(secrets_, wrap.wrapped, aad)
            receipt.lookup_token = legacy.lookup_token
            wrap.wrapped = wrap_with_receipt(legacy, case_key, aad)  # suite 1, as before

    client.blocking_portal.call(rewrite)
    assert sign_in(client, code).status_code == 303
    _page, _csrf, ids = case_page(client)
    assert ids == [case_id]

    # a notification address sealed before (HMAC-SHA256 key, AES-GCM) still opens
    import hashlib
    import hmac

    from crypto.envelope import bind_aad, seal

    async def receipt_id() -> str:
        async with services.db.read() as s:
            return str(
                (
                    await s.execute(
                        select(Receipt.id).where(Receipt.lookup_token == legacy.lookup_token)
                    )
                ).scalar_one()
            )

    rid = client.blocking_portal.call(receipt_id)
    old_key = hmac.new(services.keyring.server_key, b"reporter-contact", hashlib.sha256).digest()
    old = ReporterContact(
        receipt_id=rid,
        sealed_address=seal(old_key, ADDRESS.encode(), bind_aad("reporter-contact", rid)),
    )
    assert old.sealed_address[:3] == b"E\x01\x01"
    assert open_address(services, old) == ADDRESS
    # a wrong code is still refused
    wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
    assert sign_in(client, wrong).status_code != 303
