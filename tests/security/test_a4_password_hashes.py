"""A4: staff password hashes are peppered Argon2id, and only Argon2id hashes let anyone sign in.

The stored string is ``$pepper1$<suite>`` followed by an Argon2id PHC string of
HMAC(keyring hash key, password) (crypto.passwords): the bare password does not verify against
it, so the database alone cannot test a guess. argon2-cffi's ``PasswordHasher.verify`` picks
the variant from the hash prefix, so an ``$argon2i$`` hash of the right password would verify
too; ``crypto.passwords.verify_password`` refuses every hash that is not Argon2id. Through the
real sign-in form.
"""

from __future__ import annotations

import hashlib
import hmac

import pytest
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import VerifyMismatchError
from argon2.low_level import Type as LowType
from litestar import Litestar
from litestar.testing import TestClient
from sqlalchemy import select, update

from crypto.suites import Suite
from portal.kernel.db.models import User
from portal.kernel.services import Services
from tests.investigator.conftest import Browser, create_staff
from tests.investigator.ws_helpers import run


def _stored_hash(client: TestClient[Litestar], services: Services, user_id: str) -> str:
    async def go() -> str:
        async with services.db.read() as s:
            return str(
                (await s.execute(select(User.password_hash).where(User.id == user_id))).scalar_one()
            )

    return str(run(client, go))


def _set_hash(client: TestClient[Litestar], services: Services, user_id: str, value: str) -> None:
    async def go() -> None:
        async with services.db.write() as s:
            await s.execute(update(User).where(User.id == user_id).values(password_hash=value))

    run(client, go)


def test_A4_staff_password_hash_is_argon2id_and_no_other_scheme_signs_in(
    client: TestClient[Litestar], services: Services
) -> None:
    client.headers["accept-language"] = "en"
    staff = run(client, lambda: create_staff(services, "hanna", "investigator"))
    stored = _stored_hash(client, services, staff.user_id)

    assert stored.startswith("$pepper1$aes256gcm$argon2id$v=19$"), stored[:40]
    inner = stored.removeprefix("$pepper1$aes256gcm")
    params = extract_parameters(inner)
    assert params.type is LowType.ID
    assert (params.time_cost, params.memory_cost, params.parallelism) == (
        services.argon2.iterations,
        services.argon2.memory_kib,
        services.argon2.lanes,
    )
    # the inner hash is of HMAC-SHA256(keyring hash key, password), never of the password
    hash_key = services.keyring.password_pepper.hash_key(Suite.AES256GCM)
    peppered = hmac.new(hash_key, staff.password.encode(), hashlib.sha256).digest()
    assert PasswordHasher().verify(inner, peppered)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(inner, staff.password)
    with pytest.raises(VerifyMismatchError):
        PasswordHasher().verify(
            inner, hmac.new(hash_key, b"x" + staff.password.encode(), hashlib.sha256).digest()
        )
    assert staff.password not in stored

    browser = Browser(client)
    # the right password with hashes of other schemes in the column: refused like a wrong one
    other_schemes = {
        "argon2i": PasswordHasher(type=Type.I, memory_cost=64, time_cost=1, parallelism=1).hash(
            staff.password
        ),
        "sha256": hashlib.sha256(staff.password.encode()).hexdigest(),
        "plaintext": staff.password,
        # the pepper marker over an Argon2i hash of the right peppered input
        "pepper-argon2i": "$pepper1$aes256gcm"
        + PasswordHasher(type=Type.I, memory_cost=64, time_cost=1, parallelism=1).hash(peppered),
        # the unpeppered Argon2id hash of a wrong password
        "argon2id-wrong": PasswordHasher(memory_cost=64, time_cost=1, parallelism=1).hash(
            staff.password + "x"
        ),
    }
    assert PasswordHasher().verify(other_schemes["argon2i"], staff.password)  # the library would
    for scheme, value in other_schemes.items():
        _set_hash(client, services, staff.user_id, value)
        refused = browser.password_step(staff.username, staff.password)
        assert refused.status_code == 200, (scheme, refused.status_code)
        assert "The user name or password is not correct." in refused.text, scheme
        assert "location" not in refused.headers, scheme

    # the peppered Argon2id hash back in place: the same password signs in (to TOTP enrolment)
    _set_hash(client, services, staff.user_id, stored)
    accepted = browser.password_step(staff.username, staff.password)
    assert accepted.status_code == 303, accepted.text
    assert accepted.headers["location"] == "/workspace/totp/enrol"
