"""Reading and checking a new report (R2 to R5). Framework-free.

`parse_report(fields, categories)` turns the submitted form into a `ReportInput` or a dict
of field errors (msgids). It never drops what the reporter typed: the caller re-renders the
form with `fields` on error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from portal.kernel.text import clean_text

KINDS = ("report", "complaint", "both")
RELATIONS = ("employee", "supplier", "partner", "customer", "other")
IDENTITY_MODES = ("anonymous", "real_name")
CONTACT_PREFERENCES = ("phone", "email", "none")
MAX_SUBJECTS = 10
SHORT = 200
LONG = 20_000

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
_PHONE = re.compile(r"^[0-9+()\- ]{5,30}$")


@dataclass
class SubjectInput:
    name: str
    department: str = ""
    position: str = ""


@dataclass
class IdentityInput:
    name: str = ""
    phone: str = ""
    email: str = ""
    employee_id: str = ""
    contact_preference: str = "none"

    def is_empty(self) -> bool:
        return not (self.name or self.phone or self.email or self.employee_id)


@dataclass
class ComplaintInput:
    complainant_name: str = ""
    complainant_phone: str = ""
    complainant_address: str = ""
    respondent_name: str = ""
    respondent_address: str = ""
    request: str = ""


@dataclass
class RepresentativeInput:
    name: str = ""
    phone: str = ""
    id_number: str = ""


@dataclass
class ReportInput:
    kind: str
    identity_mode: str
    category: str
    relation: str
    subjects: list[SubjectInput]
    what: str
    when: str = ""
    where: str = ""
    how_known: str = ""
    amount: str = ""
    witnesses: str = ""
    complaint: ComplaintInput | None = None
    representative: RepresentativeInput | None = None
    identity: IdentityInput | None = None
    declaration: bool = True
    # the reporter says the report concerns the 法审风控中心 or its staff (independent channel)
    independent: bool = False

    @property
    def anonymous(self) -> bool:
        return self.identity_mode == "anonymous"

    @property
    def case_kinds(self) -> list[str]:
        return ["report", "complaint"] if self.kind == "both" else [self.kind]

    def content(self) -> dict[str, Any]:
        """The document sealed under the case key (everything but the identity)."""
        data = asdict(self)
        data.pop("identity", None)
        return data


@dataclass
class ParseResult:
    report: ReportInput | None
    errors: dict[str, str] = field(default_factory=dict)


PRIVACY_ACK_NEEDED = (
    "Please confirm that you have read the privacy notice before you send your name or "
    "contact details."
)


def _one(
    fields: Mapping[str, Sequence[str]], name: str, limit: int = SHORT, multiline: bool = False
) -> str:
    values = fields.get(name) or [""]
    return clean_text(values[0], limit, multiline=multiline)


def _too_long(fields: Mapping[str, Sequence[str]], name: str, limit: int) -> bool:
    values = fields.get(name) or [""]
    return len(values[0]) > limit


def parse_report(
    fields: Mapping[str, Sequence[str]],
    categories: Sequence[str],
    *,
    files: Sequence[str] = (),
    require_privacy_ack: bool = False,
) -> ParseResult:
    """Check the form. `files` names the file fields that arrived (e.g. "authorisation").

    With ``require_privacy_ack`` (the public form) a submission that carries personal
    information of its sender (a name, or a complainant's details) needs the box saying the
    privacy notice was read (PIPL Art. 17; issue 18)."""
    errors: dict[str, str] = {}
    kind = _one(fields, "kind")
    if kind not in KINDS:
        errors["kind"] = "Choose what you are submitting."
    mode = _one(fields, "identity_mode")
    if mode not in IDENTITY_MODES:
        errors["identity_mode"] = "Choose whether to give your name or stay anonymous."
    category = _one(fields, "category")
    if category not in categories:
        errors["category"] = "Choose a category."
    relation = _one(fields, "relation")
    if relation not in RELATIONS:
        errors["relation"] = "Choose how you are related to the company."

    for name, limit in (("what", LONG), ("how_known", LONG), ("witnesses", LONG)):
        if _too_long(fields, name, limit):
            errors[name] = "This text is too long."
    what = _one(fields, "what", LONG, multiline=True)
    if len(what) < 10:
        errors["what"] = "Describe what happened (at least a sentence)."

    names = fields.get("subject_name", [])
    depts = fields.get("subject_department", [])
    positions = fields.get("subject_position", [])
    subjects: list[SubjectInput] = []
    for i, raw in enumerate(names[:MAX_SUBJECTS]):
        name = clean_text(raw, SHORT)
        dept = clean_text(depts[i], SHORT) if i < len(depts) else ""
        pos = clean_text(positions[i], SHORT) if i < len(positions) else ""
        if name or dept or pos:
            subjects.append(SubjectInput(name=name or "", department=dept, position=pos))
    if any(not s.name and not s.department for s in subjects):
        errors["subject_name"] = "Give at least a name or a department for each person."

    complaint: ComplaintInput | None = None
    if kind in ("complaint", "both"):
        complaint = ComplaintInput(
            complainant_name=_one(fields, "complainant_name"),
            complainant_phone=_one(fields, "complainant_phone", 30),
            complainant_address=_one(fields, "complainant_address", 400),
            respondent_name=_one(fields, "respondent_name"),
            respondent_address=_one(fields, "respondent_address", 400),
            request=_one(fields, "request", LONG, multiline=True),
        )
        for attr, msg in (
            ("complainant_name", "A complaint needs your name."),
            ("complainant_phone", "A complaint needs your phone number."),
            ("complainant_address", "A complaint needs your address."),
            (
                "respondent_name",
                "A complaint needs the name of the person or unit complained about.",
            ),
            ("respondent_address", "A complaint needs their address."),
            ("request", "Say what you are asking for."),
        ):
            if not getattr(complaint, attr):
                errors[attr] = msg
        if complaint.complainant_phone and not _PHONE.match(complaint.complainant_phone):
            errors["complainant_phone"] = "Enter a phone number with digits only."

    representative: RepresentativeInput | None = None
    if _one(fields, "is_representative") == "yes":
        representative = RepresentativeInput(
            name=_one(fields, "rep_name"),
            phone=_one(fields, "rep_phone", 30),
            id_number=_one(fields, "rep_id_number", 40),
        )
        if not representative.name or not representative.phone:
            errors["rep_name"] = "A representative gives their own name and phone number."
        if "authorisation" not in files:
            errors["authorisation"] = "A representative must attach the authorisation letter."

    identity: IdentityInput | None = None
    if mode == "real_name":
        identity = IdentityInput(
            name=_one(fields, "id_name"),
            phone=_one(fields, "id_phone", 30),
            email=_one(fields, "id_email", 254),
            employee_id=_one(fields, "id_employee_id", 60),
            contact_preference=_one(fields, "id_contact") or "none",
        )
        if not identity.name:
            errors["id_name"] = "Give your name, or choose to stay anonymous."
        if not identity.phone and not identity.email:
            errors["id_phone"] = "Give a phone number or an e-mail address."
        if identity.phone and not _PHONE.match(identity.phone):
            errors["id_phone"] = "Enter a phone number with digits only."
        if identity.email and not _EMAIL.match(identity.email):
            errors["id_email"] = "Enter a valid e-mail address."
        if identity.contact_preference not in CONTACT_PREFERENCES:
            identity.contact_preference = "none"

    if _one(fields, "declaration") != "yes":
        errors["declaration"] = "Please confirm the declaration."
    carries_identity = mode == "real_name" or kind in ("complaint", "both")
    if require_privacy_ack and carries_identity and _one(fields, "privacy_ack") != "yes":
        errors["privacy_ack"] = PRIVACY_ACK_NEEDED

    if errors:
        return ParseResult(report=None, errors=errors)
    return ParseResult(
        report=ReportInput(
            kind=kind,
            identity_mode=mode,
            category=category,
            relation=relation,
            subjects=subjects,
            what=what,
            when=_one(fields, "when"),
            where=_one(fields, "where"),
            how_known=_one(fields, "how_known", LONG, multiline=True),
            amount=_one(fields, "amount", 60),
            witnesses=_one(fields, "witnesses", LONG, multiline=True),
            complaint=complaint,
            representative=representative,
            identity=identity,
            independent=_one(fields, "about_centre") == "yes",
        )
    )


def parse_identity(
    fields: Mapping[str, Sequence[str]],
) -> tuple[IdentityInput | None, dict[str, str]]:
    """Identity added later from the follow-up page (becoming real-name)."""
    result = parse_report(
        {
            **fields,
            "kind": ["report"],
            "identity_mode": ["real_name"],
            "category": ["x"],
            "relation": ["other"],
            "what": ["(identity only)"],
            "declaration": ["yes"],
        },
        ["x"],
    )
    if result.report is None:
        return None, {k: v for k, v in result.errors.items() if k.startswith("id_")}
    return result.report.identity, {}
