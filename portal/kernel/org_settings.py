"""The organisation's own values for the privacy notice, the poster and retention (issue 18).

Framework-free. An administrator keeps them on /workspace/privacy; the reporter's privacy
notice (/privacy), the poster and the archive step (``investigator.domain.retention.archive``) read
them. A value never saved falls back to the installation's settings (the ``PORTAL_RETENTION_*``
environment variables) or to empty text, which the notice shows as "not yet set".

Legal floors (docs/compliance/retention-schedule.md): records of a report and of its handling
are kept at least 3 years after closure, network and security logs at least 6 months; the
form refuses anything shorter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields, replace
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.kernel import clock
from portal.kernel.db.models import OrgSetting
from portal.kernel.msgid import _
from portal.kernel.settings import Settings
from portal.kernel.text import clean_text

TEXT_LIMITS = {"handler_name": 200, "contact": 500, "portal_address": 300}
# (smallest, largest) of each period; the smallest is the legal floor
YEAR_RANGES = {
    "retention_substantiated_years": (3, 100),
    "retention_unsubstantiated_years": (3, 100),
    "retention_identity_years": (1, 100),
}
MONTH_RANGES = {"log_retention_months": (6, 240)}

REQUIRED = _("This is required.")
BAD_ADDRESS = _(
    "Enter the portal's address as reporters type it, starting with https:// or http://."
)
NOT_A_NUMBER = _("Enter a whole number.")
TOO_SHORT_YEARS = _("At least %(min)d years: the law requires keeping these records that long.")
TOO_SHORT_MONTHS = _("At least %(min)d months: the law requires keeping network logs that long.")
TOO_LONG = _("At most %(max)d.")
IDENTITY_LONGER = _("The identity cannot be kept longer than the report it belongs to.")


@dataclass(frozen=True)
class OrgValues:
    handler_name: str
    contact: str
    portal_address: str
    retention_substantiated_years: int
    retention_unsubstantiated_years: int
    retention_identity_years: int
    log_retention_months: int

    @property
    def complete(self) -> bool:
        """The notice names a handler and a contact (the administrator has filled them in)."""
        return bool(self.handler_name and self.contact)


def defaults(settings: Settings) -> OrgValues:
    return OrgValues(
        handler_name="",
        contact="",
        portal_address="",
        retention_substantiated_years=settings.retention_substantiated_years,
        retention_unsubstantiated_years=settings.retention_unsubstantiated_years,
        retention_identity_years=settings.retention_identity_years,
        log_retention_months=6,
    )


def _names() -> list[str]:
    return [f.name for f in fields(OrgValues)]


async def load(session: AsyncSession, settings: Settings) -> OrgValues:
    values = defaults(settings)
    rows = (await session.execute(select(OrgSetting))).scalars()
    stored = {r.key: r.value for r in rows if r.key in _names()}
    out: dict[str, str | int] = {}
    for name, raw in stored.items():
        if name in TEXT_LIMITS:
            out[name] = raw
        else:
            try:
                out[name] = int(raw)
            except ValueError:
                continue
    return replace(values, **out)  # type: ignore[arg-type]


def _check_address(raw: str) -> bool:
    parts = urlsplit(raw)
    return parts.scheme in ("https", "http") and bool(parts.hostname) and " " not in raw


def validate(form: dict[str, str], current: OrgValues) -> tuple[OrgValues | None, dict[str, str]]:
    """The submitted values, checked; (None, {field: message}) when any is refused. Messages
    are msgids with their numbers already in the dict as ``(msgid, {"min": 3})`` text."""
    errors: dict[str, str] = {}
    out: dict[str, str | int] = {}
    for name, limit in TEXT_LIMITS.items():
        value = clean_text(form.get(name, ""), limit, multiline=name == "contact")
        if not value:
            errors[name] = REQUIRED
        elif name == "portal_address" and not _check_address(value):
            errors[name] = BAD_ADDRESS
        out[name] = value
    for name, (low, high) in {**YEAR_RANGES, **MONTH_RANGES}.items():
        raw = form.get(name, "").strip()
        if not raw.isdigit() or len(raw) > 4:
            errors[name] = NOT_A_NUMBER
            continue
        number = int(raw)
        if number < low:
            errors[name] = TOO_SHORT_MONTHS if name in MONTH_RANGES else TOO_SHORT_YEARS
        elif number > high:
            errors[name] = TOO_LONG
        out[name] = number
    if not errors and int(out["retention_identity_years"]) > min(
        int(out["retention_substantiated_years"]), int(out["retention_unsubstantiated_years"])
    ):
        errors["retention_identity_years"] = IDENTITY_LONGER
    if errors:
        return None, errors
    return replace(current, **out), {}  # type: ignore[arg-type]


def limits_of(name: str) -> dict[str, int]:
    """The numbers a message about ``name`` needs (``min``/``max``)."""
    low, high = {**YEAR_RANGES, **MONTH_RANGES}.get(name, (0, 0))
    return {"min": low, "max": high}


async def save(
    session: AsyncSession, values: OrgValues, current: OrgValues, actor: str
) -> list[str]:
    """Store every value that changed; returns the names of those that did."""
    changed: list[str] = []
    today: dt.date = clock.today()
    for name in _names():
        new = getattr(values, name)
        if new == getattr(current, name):
            continue
        changed.append(name)
        row = await session.get(OrgSetting, name)
        if row is None:
            session.add(OrgSetting(key=name, value=str(new), updated_by=actor, updated_on=today))
        else:
            row.value, row.updated_by, row.updated_on = str(new), actor, today
    return changed
