"""The compliance pack (docs/compliance/, issue 18 item 5) agrees with the code.

The documents a company files must say what the system does: every staff role of
investigator/roles.py has a one-page handbook in both languages; the retention schedule names
the defaults and the legal floors the code applies (portal/kernel/settings.py,
portal/kernel/org_settings.py) and the code refuses anything below those floors; the
deployment guide keeps system logs the 6 months the schedule promises.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from investigator.roles import ROLES
from portal.kernel import org_settings
from portal.kernel.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "docs" / "compliance"
LANGS = ("zh-CN", "en")


def test_every_document_exists_in_chinese_and_english() -> None:
    for name in ("pia", "ropa", "retention-schedule"):
        for lang in LANGS:
            text = (PACK / f"{name}.{lang}.md").read_text(encoding="utf-8")
            assert len(text) > 1500, (name, lang)
    zh = (PACK / "pia.zh-CN.md").read_text(encoding="utf-8")
    assert "第五十五条" in zh and "第五十六条" in zh and "待公司填写" in zh
    en = (PACK / "pia.en.md").read_text(encoding="utf-8")
    assert "Art. 55" in en and "[company to complete]" in en
    # the data inventory covers the sealed tables of docs/security.md that hold personal data
    for column in (
        "cases.content",
        "identities.sealed",
        "identity_corrections.sealed",
        "rewards.sealed_claim",
        "reporter_contacts.sealed_address",
        "rights_requests.sealed_decision",
    ):
        assert column in zh and column in en, column


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_a_one_page_handbook(role: str) -> None:
    for lang in LANGS:
        path = PACK / "handbooks" / f"{role}.{lang}.md"
        text = path.read_text(encoding="utf-8")
        title = text.splitlines()[0]
        assert f"（{role}）" in title or f": {role.replace('_', ' ')}" in title, path
        lines = [line for line in text.splitlines() if line.strip()]
        assert 6 <= len(lines) <= 45, (path, len(lines))  # one printed page
        assert len(text) < 3500, path


def _years(text: str, label_zh: str) -> int:
    match = re.search(re.escape(label_zh) + r"[^|]*\|[^0-9|]*(\d+)", text)
    assert match, label_zh
    return int(match.group(1))


def test_the_retention_schedule_states_the_codes_defaults_and_floors() -> None:
    defaults = Settings()
    zh = (PACK / "retention-schedule.zh-CN.md").read_text(encoding="utf-8")
    en = (PACK / "retention-schedule.en.md").read_text(encoding="utf-8")
    rows_zh = {
        "经查属实或部分属实的举报": defaults.retention_substantiated_years,
        "其他举报": defaults.retention_unsubstantiated_years,
        "举报人身份信息": defaults.retention_identity_years,
    }
    for label, years in rows_zh.items():
        assert _years(zh, label) == years, label
    assert f"| {defaults.retention_substantiated_years} years after closure | 3 years |" in en
    assert f"| {defaults.retention_unsubstantiated_years} years after closure | 3 years |" in en
    # the floors the documents state are the ones the form and the settings enforce
    assert org_settings.YEAR_RANGES["retention_substantiated_years"][0] == 3
    assert org_settings.YEAR_RANGES["retention_unsubstantiated_years"][0] == 3
    assert org_settings.MONTH_RANGES["log_retention_months"][0] == 6
    assert org_settings.defaults(defaults).log_retention_months == 6
    assert "| 6 个月 | 6 个月 |" in zh and "| 6 months | 6 months |" in en
    for name in ("PORTAL_RETENTION_UNSUBSTANTIATED_YEARS", "PORTAL_RETENTION_SUBSTANTIATED_YEARS"):
        with pytest.raises(SettingsError):
            Settings.from_env({name: "2"})
        assert Settings.from_env({name: "3"})
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = deploy[deploy.index("## 11. Logs") : deploy.index("## 12.")]
    assert "at least 6 months" in section and "30 days" not in section
