"""seed the default report categories (configurable later by the administrator)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CATEGORIES = [
    # code, 简体, 繁體, English, in scope
    ("bribery", "受贿、索贿、行贿", "受賄、索賄、行賄", "Bribery and kickbacks", True),
    (
        "embezzlement",
        "贪污、侵占、挪用公司资产",
        "貪污、侵佔、挪用公司資產",
        "Embezzlement or misuse of company assets",
        True,
    ),
    ("fraud", "舞弊、财务造假", "舞弊、財務造假", "Fraud or false accounts", True),
    (
        "conflict_of_interest",
        "利益冲突、关联交易",
        "利益衝突、關聯交易",
        "Conflict of interest or related-party dealings",
        True,
    ),
    (
        "procurement",
        "采购与招投标违规",
        "採購與招投標違規",
        "Procurement or tendering violations",
        True,
    ),
    ("confidentiality", "泄露商业秘密", "洩露商業秘密", "Leaking trade secrets", True),
    (
        "abuse_of_power",
        "滥用职权、失职渎职",
        "濫用職權、失職瀆職",
        "Abuse of power or dereliction of duty",
        True,
    ),
    (
        "compliance",
        "违反法律法规或公司制度",
        "違反法律法規或公司制度",
        "Breach of law or company rules",
        True,
    ),
    ("retaliation", "打击报复举报人", "打擊報復舉報人", "Retaliation against a reporter", True),
    (
        "service_quality",
        "产品或服务质量投诉",
        "產品或服務質量投訴",
        "Product or service quality complaint",
        False,
    ),
    ("business_dispute", "业务纠纷", "業務糾紛", "Business dispute", False),
    ("other", "其他违规违纪行为", "其他違規違紀行為", "Other misconduct", True),
]


def upgrade() -> None:
    table = sa.table(
        "categories",
        sa.column("code", sa.String),
        sa.column("name_zh_cn", sa.String),
        sa.column("name_zh_tw", sa.String),
        sa.column("name_en", sa.String),
        sa.column("in_scope", sa.Boolean),
        sa.column("active", sa.Boolean),
        sa.column("position", sa.Integer),
    )
    op.bulk_insert(
        table,
        [
            {
                "code": c,
                "name_zh_cn": cn,
                "name_zh_tw": tw,
                "name_en": en,
                "in_scope": scope,
                "active": True,
                "position": i,
            }
            for i, (c, cn, tw, en, scope) in enumerate(CATEGORIES)
        ],
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM categories"))
