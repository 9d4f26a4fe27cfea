"""A reporter's optional "notify me at this address" (issue 7). Framework-free.

The address is sealed under a key derived from the installation's server key (HMAC-SHA256 of
``server_key`` with the label ``reporter-contact``; on a 国密 installation HKDF-SM3 with the
info ``whistle-portal/v1/server/reporter-contact``, and SM4-GCM), bound to the receipt row,
NOT under a case
key: the scheduled notifier has no case key and must still be able to send. The trade-off
(docs/security.md): whoever holds both the database and the keyring can read these addresses,
which they could not do for anything else the reporter wrote. The reporter is told so on the
follow-up page, and only ever receives "there is news, sign in with your code" (no case
number, no content, no code), at most once a day.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from crypto.envelope import bind_aad, open_sealed, seal
from crypto.errors import DecryptionError
from crypto.suites import Suite, hkdf
from portal.kernel import clock
from portal.kernel.db.models import ReporterContact
from portal.kernel.services import Services

MAX_ADDRESS = 254
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


class BadAddress(ValueError):
    pass


def _legacy_contact_key(services: Services) -> bytes:
    return hmac.new(services.keyring.server_key, b"reporter-contact", hashlib.sha256).digest()


def contact_key(services: Services) -> bytes:
    """The key new addresses are sealed under, in the installation's suite's KDF."""
    suite = services.keyring.suite
    if suite is Suite.AES256GCM:
        return _legacy_contact_key(services)
    return hkdf(
        suite,
        services.keyring.server_key,
        salt=None,
        info=b"whistle-portal/v1/server/reporter-contact",
    )


def _aad(receipt_id: str) -> bytes:
    return bind_aad("reporter-contact", receipt_id)


def clean_address(raw: str) -> str:
    address = raw.strip()
    if len(address) > MAX_ADDRESS or not _ADDRESS.match(address):
        raise BadAddress(address)
    return address


def seal_address(services: Services, receipt_id: str, address: str) -> bytes:
    return seal(
        contact_key(services),
        address.encode("utf-8"),
        _aad(receipt_id),
        suite=services.keyring.suite,
    )


def open_address(services: Services, contact: ReporterContact) -> str:
    """The address; on a 国密 installation also one sealed before issue 13 (HMAC-SHA256 key)."""
    aad = _aad(contact.receipt_id)
    try:
        return open_sealed(contact_key(services), contact.sealed_address, aad).decode("utf-8")
    except DecryptionError:
        if services.keyring.suite is Suite.AES256GCM:
            raise
        legacy = _legacy_contact_key(services)
        return open_sealed(legacy, contact.sealed_address, aad).decode("utf-8")


async def set_address(services: Services, receipt_id: str, raw: str) -> None:
    """Store (or replace) the address; ``BadAddress`` when it does not look like one."""
    address = clean_address(raw)
    async with services.db.write() as s:
        row = await s.get(ReporterContact, receipt_id)
        sealed = seal_address(services, receipt_id, address)
        if row is None:
            s.add(
                ReporterContact(
                    receipt_id=receipt_id, sealed_address=sealed, added_on=clock.today()
                )
            )
        else:
            row.sealed_address = sealed
            row.added_on = clock.today()


async def remove_address(services: Services, receipt_id: str) -> None:
    async with services.db.write() as s:
        row = await s.get(ReporterContact, receipt_id)
        if row is not None:
            await s.delete(row)


async def has_address(services: Services, receipt_id: str) -> bool:
    async with services.db.read() as s:
        return (await s.get(ReporterContact, receipt_id)) is not None
