"""Case exports as ZIP files (A2, W13). Framework-free; callers ask ``investigator.policy``.

* ``case_archive``: for the team lead (policy ``export_case``): the decrypted report, the
  subjects, the messages with the reporter, the records (notes and investigation records),
  the investigation plan, every version of the handling plan, the timeline, and the WORKING
  copies of the evidence (metadata stripped). Never an original file, never the reporter's
  identity (both stay sealed in the system, A2/A3).
* ``package_archive``: for a department liaison (policy ``view_transfer``): the transfer
  package's summary, the report back if any, and its redacted copies, opened with the
  package key. Nothing else of the case.

The ZIP is built in memory (``zipfile`` on a ``BytesIO``), never on disk: no temporary file
ever holds plaintext. ``ExportTooLarge`` stops it once the compressed size passes the cap
(``PORTAL_EXPORT_MAX_MB``, default 256), so memory stays bounded. Entry names are
ours (``files/003.pdf``); the original file names appear only inside ``manifest.json``.
Entry times are the export day at midnight: no clock time of anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from portal.case.evidence import read_header, read_plaintext
from portal.case.sealing import open_json
from portal.kernel import clock
from portal.kernel.db.models import (
    Case,
    CaseEvent,
    EvidenceFile,
    HandlingPlan,
    InvestigationStep,
    Message,
    Note,
    Subject,
    TransferPackage,
    User,
)
from portal.kernel.services import Services

DEFAULT_MAX_MB = 256
_EXT = re.compile(r"\.[A-Za-z0-9]{1,8}$")


class ExportTooLarge(Exception):
    """The ZIP would pass the size cap; nothing is returned."""


def max_bytes(services: Services) -> int:
    """``PORTAL_EXPORT_MAX_MB`` (default 256) in bytes."""
    mb = services.settings.export_max_mb
    return max(1, int(mb)) * 1024 * 1024


@dataclass
class _Zip:
    cap: int
    day: dt.date
    buffer: io.BytesIO = field(default_factory=io.BytesIO)
    manifest: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.zf = zipfile.ZipFile(self.buffer, "w", compression=zipfile.ZIP_DEFLATED)

    def _info(self, name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(
            name, date_time=(self.day.year, self.day.month, self.day.day, 0, 0, 0)
        )
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        return info

    def _check(self) -> None:
        if self.buffer.tell() > self.cap:
            raise ExportTooLarge

    def add_json(self, name: str, obj: Any) -> None:
        data = json.dumps(obj, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        self.zf.writestr(self._info(name), data)
        self.manifest.append(
            {"entry": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        )
        self._check()

    async def add_file(self, services: Services, row: EvidenceFile, key: bytes, index: int) -> None:
        header = await read_header(services.files, row.case_id, row.id, row.storage_key, key)
        ext = _EXT.search(header.name or "")
        name = f"files/{index:03d}{ext.group(0).lower() if ext else ''}"
        digest = hashlib.sha256()
        size = 0
        with self.zf.open(self._info(name), "w", force_zip64=True) as out:
            async for chunk in read_plaintext(
                services.files, row.case_id, row.id, row.storage_key, key
            ):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                self._check()
        self.manifest.append(
            {
                "entry": name,
                "name": header.name,
                "content_type": header.content_type,
                "kind": row.kind,
                "added_on": row.created_on.isoformat(),
                "sha256": digest.hexdigest(),
                "bytes": size,
            }
        )
        self._check()

    def finish(self, about: dict[str, Any]) -> bytes:
        self.add_json("manifest.json", {**about, "entries": self.manifest})
        self.zf.close()
        self._check()
        return self.buffer.getvalue()


async def _names(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return {str(uid): str(name) for uid, name in rows.all()}


async def case_archive(services: Services, session: AsyncSession, case: Case, key: bytes) -> bytes:
    """The lead's archive ZIP (see the module docstring). ``ExportTooLarge`` past the cap."""
    today = clock.today()
    z = _Zip(max_bytes(services), today)
    cid = case.id
    z.add_json(
        "case.json",
        {
            "number": case.number,
            "kind": case.kind,
            "channel": case.channel,
            "category": case.category,
            "stage": case.stage,
            "severity": case.severity,
            "urgent": case.urgent,
            "outcome": case.outcome,
            "anonymous": case.anonymous,
            "received_on": case.received_on,
            "closed_on": case.closed_on,
        },
    )
    z.add_json("report.json", open_json(key, case.content, field_aad(cid, "content")))
    subjects = [
        open_json(key, s.sealed, field_aad(cid, f"subject:{s.id}"))
        for s in (await session.execute(select(Subject).where(Subject.case_id == cid))).scalars()
    ]
    z.add_json("subjects.json", subjects)
    messages = []
    for m in (
        await session.execute(select(Message).where(Message.case_id == cid).order_by(Message.seq))
    ).scalars():
        text = open_json(key, m.sealed, field_aad(cid, f"message:{m.id}"))["text"]
        messages.append({"from": m.author, "on": m.created_on, "text": text})
    z.add_json("messages.json", messages)
    notes = list(
        (
            await session.execute(select(Note).where(Note.case_id == cid).order_by(Note.created_at))
        ).scalars()
    )
    steps = list(
        (
            await session.execute(
                select(InvestigationStep)
                .where(InvestigationStep.case_id == cid)
                .order_by(InvestigationStep.due_on)
            )
        ).scalars()
    )
    plans = list(
        (
            await session.execute(
                select(HandlingPlan)
                .where(HandlingPlan.case_id == cid)
                .order_by(HandlingPlan.version)
            )
        ).scalars()
    )
    names = await _names(
        session,
        {n.author_user_id for n in notes}
        | {s.owner_id for s in steps}
        | {p.author_id for p in plans},
    )
    z.add_json(
        "records.json",
        [
            {
                "kind": n.kind,
                "by": names.get(n.author_user_id, ""),
                "on": n.created_at.astimezone(clock.SHANGHAI).date(),
                "record": open_json(key, n.sealed, field_aad(cid, f"note:{n.id}")),
            }
            for n in notes
        ],
    )
    z.add_json(
        "investigation_plan.json",
        [
            {
                "owner": names.get(s.owner_id, ""),
                "due_on": s.due_on,
                "status": s.status,
                "done_on": s.done_on,
                "step": open_json(key, s.sealed, field_aad(cid, f"step:{s.id}")),
            }
            for s in steps
        ],
    )
    z.add_json(
        "handling_plans.json",
        [
            {
                "version": p.version,
                "status": p.status,
                "author": names.get(p.author_id, ""),
                "plan": open_json(key, p.sealed, field_aad(cid, f"plan:{p.id}")),
                "decision": open_json(
                    key, p.sealed_decision, field_aad(cid, f"plan-decision:{p.id}")
                )
                if p.sealed_decision is not None
                else None,
            }
            for p in plans
        ],
    )
    z.add_json(
        "timeline.json",
        [
            {"on": e.on, "event": e.kind, "shown_to_reporter": e.public}
            for e in (
                await session.execute(
                    select(CaseEvent).where(CaseEvent.case_id == cid).order_by(CaseEvent.id)
                )
            ).scalars()
        ],
    )
    files = (
        await session.execute(
            select(EvidenceFile)
            .where(
                EvidenceFile.case_id == cid,
                EvidenceFile.package_id.is_(None),
                EvidenceFile.kind != "original",  # working copies only (A2)
            )
            .order_by(EvidenceFile.created_on, EvidenceFile.id)
        )
    ).scalars()
    for i, row in enumerate(list(files), start=1):
        await z.add_file(services, row, key, i)
    return z.finish(
        {
            "export": "case archive",
            "case": case.number,
            "exported_on": today,
            "left_out": "original files and the reporter's identity stay sealed in the system",
        }
    )


async def package_archive(
    services: Services, session: AsyncSession, package: TransferPackage, pkey: bytes, number: str
) -> bytes:
    """The liaison's transfer package ZIP: summary, report back, redacted copies."""
    today = clock.today()
    z = _Zip(max_bytes(services), today)
    summary = open_json(pkey, package.sealed_summary, field_aad(package.id, "package-summary"))
    report = None
    if package.sealed_report_back is not None:
        report = open_json(
            pkey, package.sealed_report_back, field_aad(package.id, "package-report")
        )["text"]
    z.add_json(
        "package.json",
        {
            "case": number,
            "created_on": package.created_on,
            "due_on": package.due_on,
            "summary": summary.get("summary", ""),
            "report_back": report,
            "reported_on": package.reported_on,
        },
    )
    files = (
        await session.execute(
            select(EvidenceFile)
            .where(EvidenceFile.package_id == package.id)
            .order_by(EvidenceFile.created_on, EvidenceFile.id)
        )
    ).scalars()
    for i, row in enumerate(list(files), start=1):
        await z.add_file(services, row, pkey, i)
    return z.finish({"export": "transfer package", "case": number, "exported_on": today})
