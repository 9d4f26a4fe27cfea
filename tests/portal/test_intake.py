"""Checking a new report (R2 to R5): what is required, what is cleaned, nothing dropped."""

from __future__ import annotations

from portal.kernel.text import clean_text
from portal.reporter.intake import parse_identity, parse_report

CATS = ["bribery", "other"]


def base(**over: str | list[str]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {
        "kind": ["report"],
        "identity_mode": ["anonymous"],
        "category": ["bribery"],
        "relation": ["employee"],
        "what": ["The purchasing manager took a cash payment from a supplier."],
        "declaration": ["yes"],
    }
    for k, v in over.items():
        fields[k] = v if isinstance(v, list) else [v]
    return fields


def test_minimal_anonymous_report() -> None:
    r = parse_report(base(), CATS)
    assert r.errors == {}
    assert r.report is not None and r.report.anonymous and r.report.case_kinds == ["report"]
    assert "identity" not in r.report.content()


def test_required_choices_and_declaration() -> None:
    r = parse_report(base(kind="x", category="nope", relation="alien", declaration=""), CATS)
    assert set(r.errors) >= {"kind", "category", "relation", "declaration"}


def test_complaint_requires_its_fields() -> None:
    r = parse_report(base(kind="complaint"), CATS)
    assert {
        "complainant_name",
        "complainant_phone",
        "complainant_address",
        "respondent_name",
        "respondent_address",
        "request",
    } <= set(r.errors)
    ok = parse_report(
        base(
            kind="both",
            complainant_name="张三",
            complainant_phone="13800000000",
            complainant_address="上海",
            respondent_name="某公司",
            respondent_address="北京",
            request="退款",
        ),
        CATS,
    )
    assert ok.errors == {}
    assert ok.report is not None and ok.report.case_kinds == ["report", "complaint"]


def test_real_name_requires_name_and_contact() -> None:
    r = parse_report(base(identity_mode="real_name"), CATS)
    assert {"id_name", "id_phone"} <= set(r.errors)
    r = parse_report(base(identity_mode="real_name", id_name="李四", id_email="bad"), CATS)
    assert "id_email" in r.errors
    r = parse_report(
        base(identity_mode="real_name", id_name="李四", id_phone="138 0000 0000"), CATS
    )
    assert r.errors == {} and r.report is not None and r.report.identity is not None
    assert r.report.identity.name == "李四"


def test_representative_needs_letter() -> None:
    r = parse_report(base(is_representative="yes", rep_name="王五", rep_phone="12345678"), CATS)
    assert "authorisation" in r.errors
    r = parse_report(
        base(is_representative="yes", rep_name="王五", rep_phone="12345678"),
        CATS,
        files=["authorisation"],
    )
    assert r.errors == {}


def test_subjects_several_and_bounded() -> None:
    r = parse_report(
        base(
            subject_name=["赵六", "", "钱七"],
            subject_department=["采购部", "", ""],
            subject_position=["经理", "", ""],
        ),
        CATS,
    )
    assert r.report is not None
    assert [s.name for s in r.report.subjects] == ["赵六", "钱七"]
    r = parse_report(base(subject_name=[""], subject_position=["经理"]), CATS)
    assert "subject_name" in r.errors


def test_text_is_cleaned_of_controls_and_bidi() -> None:
    assert clean_text("a\u202eb\x00c\u200fd", 100) == "abcd"
    assert clean_text("line1\r\nline2", 100, multiline=True) == "line1\nline2"
    assert clean_text("line1\nline2", 100) == "line1line2"
    assert clean_text("x" * 50, 10) == "x" * 10


def test_overlong_text_is_an_error_not_a_silent_cut() -> None:
    r = parse_report(base(what="x" * 20_001), CATS)
    assert "what" in r.errors


def test_identity_added_later() -> None:
    identity, errors = parse_identity({"id_name": ["周八"], "id_email": ["z@example.com"]})
    assert errors == {} and identity is not None and identity.email == "z@example.com"
    identity, errors = parse_identity({"id_name": [""]})
    assert identity is None and "id_name" in errors
