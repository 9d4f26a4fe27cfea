"""statistics (W14, W15): indexes, summary tables and the triggers that keep them

A statistics page for a year must not scan a million cases. Four summary tables hold counts
only (no case id) and are kept by triggers on ``cases``, ``case_deadlines`` and ``subjects``
(PostgreSQL: PL/pgSQL; SQLite: SQL triggers), so they are right whatever code path writes the
rows; ``BACKFILL`` fills them from existing rows (also used by ``bench/statistics_bench.py``
after a bulk load with the triggers off). ``investigator.domain.statistics`` reads them and
subtracts
the viewer's excluded cases (A2).

Revision ID: 0007
Revises: 0006
"""

# Every SQL string below is built from constants of this file (table, column and dimension
# names), never from input: S608 does not apply.
# ruff: noqa: S608

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_DIMS = (
    ("kind", "{r}.kind"),
    ("category", "{r}.category"),
    ("channel", "{r}.channel"),
    ("department", "COALESCE({r}.department_id, '')"),
    ("stage", "{r}.stage"),
    ("identity", "CASE WHEN {r}.anonymous THEN 'anonymous' ELSE 'real_name' END"),
    ("outcome", "COALESCE({r}.outcome, '')"),
)
_SUBJECT_KEYS = (
    # kind, key expression per dialect, the column that must match in the same case
    (
        "subject",
        {"postgresql": "encode({r}.fingerprint, 'hex')", "sqlite": "lower(hex({r}.fingerprint))"},
        "fingerprint",
    ),
    ("staff_subject", {"postgresql": "{r}.user_id", "sqlite": "{r}.user_id"}, "user_id"),
    (
        "department",
        {"postgresql": "{r}.department_id", "sqlite": "{r}.department_id"},
        "department_id",
    ),
)


def _days(dialect: str, r: str) -> str:
    if dialect == "postgresql":
        return f"({r}.met_on - {r}.starts_on)"
    return f"CAST(julianday({r}.met_on) - julianday({r}.starts_on) AS INTEGER)"


def _late(dialect: str, r: str) -> str:
    return f"CASE WHEN {r}.met_on > {r}.due_on THEN 1 ELSE 0 END"


def _case_rows(r: str, sign: int) -> str:
    return ", ".join(f"({r}.received_on, '{d}', {expr.format(r=r)}, {sign})" for d, expr in _DIMS)


def _upsert_case(r: str, sign: int) -> str:
    return (
        f"INSERT INTO stats_case_days (day, dimension, value, n) VALUES {_case_rows(r, sign)} "
        "ON CONFLICT (day, dimension, value) DO UPDATE SET n = stats_case_days.n + excluded.n"
    )


def _upsert_deadline(dialect: str, r: str, sign: int) -> list[str]:
    return [
        f"INSERT INTO stats_deadline_days (day, stage, days_taken, late, n) VALUES "
        f"({r}.met_on, {r}.stage, {_days(dialect, r)}, {_late(dialect, r)}, {sign}) "
        "ON CONFLICT (day, stage, days_taken, late) "
        "DO UPDATE SET n = stats_deadline_days.n + excluded.n",
        f"INSERT INTO stats_handler_days (day, handler_id, late, n) VALUES "
        f"({r}.met_on, COALESCE({r}.handler_id, ''), {_late(dialect, r)}, {sign}) "
        f"ON CONFLICT (day, handler_id, late) DO UPDATE SET n = stats_handler_days.n + excluded.n",
    ]


def _upsert_subject(dialect: str, r: str, sign: int) -> list[str]:
    """+1 / -1 for each key of row ``r`` unless another row of the same case has the key."""
    out = []
    for kind, exprs, column in _SUBJECT_KEYS:
        key = exprs[dialect].format(r=r)
        out.append(
            f"INSERT INTO stats_subject_keys (kind, key, cases) SELECT '{kind}', {key}, {sign} "
            f"WHERE {r}.{column} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM subjects s "
            f"WHERE s.case_id = {r}.case_id AND s.{column} = {r}.{column} AND s.id <> {r}.id) "
            "ON CONFLICT (kind, key) "
            "DO UPDATE SET cases = stats_subject_keys.cases + excluded.cases"
        )
    return out


def backfill(dialect: str) -> list[str]:
    """Statements that fill the (empty) summary tables from the existing rows."""
    cases = " UNION ALL ".join(
        f"SELECT received_on, '{d}', {expr.format(r='cases')}, COUNT(*) FROM cases "
        f"GROUP BY received_on, {expr.format(r='cases')}"
        for d, expr in _DIMS
    )
    subjects = " UNION ALL ".join(
        f"SELECT '{kind}', {exprs[dialect].format(r='subjects')}, COUNT(DISTINCT case_id) "
        f"FROM subjects WHERE {column} IS NOT NULL GROUP BY {exprs[dialect].format(r='subjects')}"
        for kind, exprs, column in _SUBJECT_KEYS
    )
    days = _days(dialect, "case_deadlines")
    late = _late(dialect, "case_deadlines")
    return [
        f"INSERT INTO stats_case_days (day, dimension, value, n) {cases}",
        f"INSERT INTO stats_deadline_days (day, stage, days_taken, late, n) "
        f"SELECT met_on, stage, {days}, {late}, COUNT(*) FROM case_deadlines "
        f"WHERE met_on IS NOT NULL GROUP BY met_on, stage, {days}, {late}",
        f"INSERT INTO stats_handler_days (day, handler_id, late, n) "
        f"SELECT met_on, COALESCE(handler_id, ''), {late}, COUNT(*) FROM case_deadlines "
        f"WHERE met_on IS NOT NULL GROUP BY met_on, COALESCE(handler_id, ''), {late}",
        f"INSERT INTO stats_subject_keys (kind, key, cases) {subjects}",
    ]


_CASE_COLUMNS = "received_on, kind, category, channel, department_id, stage, anonymous, outcome"
_DEADLINE_COLUMNS = "met_on, starts_on, due_on, stage, handler_id"
_SUBJECT_COLUMNS = "case_id, fingerprint, user_id, department_id"


def _postgresql_triggers() -> list[str]:
    def body(lines: list[str]) -> str:
        return ";\n    ".join(lines) + ";"

    return [
        f"""CREATE OR REPLACE FUNCTION stats_cases_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    {_upsert_case("OLD", -1)};
  END IF;
  IF TG_OP <> 'DELETE' THEN
    {_upsert_case("NEW", 1)};
  END IF;
  RETURN NULL;
END $$""",
        f"CREATE TRIGGER stats_cases AFTER INSERT OR DELETE OR UPDATE OF {_CASE_COLUMNS} "
        "ON cases FOR EACH ROW EXECUTE FUNCTION stats_cases_trg()",
        f"""CREATE OR REPLACE FUNCTION stats_deadlines_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' AND OLD.met_on IS NOT NULL THEN
    {body(_upsert_deadline("postgresql", "OLD", -1))}
  END IF;
  IF TG_OP <> 'DELETE' AND NEW.met_on IS NOT NULL THEN
    {body(_upsert_deadline("postgresql", "NEW", 1))}
  END IF;
  RETURN NULL;
END $$""",
        f"CREATE TRIGGER stats_deadlines AFTER INSERT OR DELETE OR UPDATE OF {_DEADLINE_COLUMNS} "
        "ON case_deadlines FOR EACH ROW EXECUTE FUNCTION stats_deadlines_trg()",
        f"""CREATE OR REPLACE FUNCTION stats_subjects_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    {body(_upsert_subject("postgresql", "OLD", -1))}
  END IF;
  IF TG_OP <> 'DELETE' THEN
    {body(_upsert_subject("postgresql", "NEW", 1))}
  END IF;
  RETURN NULL;
END $$""",
        f"CREATE TRIGGER stats_subjects AFTER INSERT OR DELETE OR UPDATE OF {_SUBJECT_COLUMNS} "
        "ON subjects FOR EACH ROW EXECUTE FUNCTION stats_subjects_trg()",
    ]


def _sqlite_triggers() -> list[str]:
    def trigger(name: str, event: str, table: str, lines: list[str], when: str = "") -> str:
        cond = f" WHEN {when}" if when else ""
        return (
            f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{cond} BEGIN "
            + "; ".join(lines)
            + "; END"
        )

    return [
        trigger("stats_cases_ins", "INSERT", "cases", [_upsert_case("NEW", 1)]),
        trigger("stats_cases_del", "DELETE", "cases", [_upsert_case("OLD", -1)]),
        trigger(
            "stats_cases_upd",
            f"UPDATE OF {_CASE_COLUMNS}",
            "cases",
            [_upsert_case("OLD", -1), _upsert_case("NEW", 1)],
        ),
        trigger(
            "stats_deadlines_ins",
            "INSERT",
            "case_deadlines",
            _upsert_deadline("sqlite", "NEW", 1),
            "NEW.met_on IS NOT NULL",
        ),
        trigger(
            "stats_deadlines_del",
            "DELETE",
            "case_deadlines",
            _upsert_deadline("sqlite", "OLD", -1),
            "OLD.met_on IS NOT NULL",
        ),
        trigger(
            "stats_deadlines_upd_old",
            f"UPDATE OF {_DEADLINE_COLUMNS}",
            "case_deadlines",
            _upsert_deadline("sqlite", "OLD", -1),
            "OLD.met_on IS NOT NULL",
        ),
        trigger(
            "stats_deadlines_upd_new",
            f"UPDATE OF {_DEADLINE_COLUMNS}",
            "case_deadlines",
            _upsert_deadline("sqlite", "NEW", 1),
            "NEW.met_on IS NOT NULL",
        ),
        trigger("stats_subjects_ins", "INSERT", "subjects", _upsert_subject("sqlite", "NEW", 1)),
        trigger("stats_subjects_del", "DELETE", "subjects", _upsert_subject("sqlite", "OLD", -1)),
        trigger(
            "stats_subjects_upd",
            f"UPDATE OF {_SUBJECT_COLUMNS}",
            "subjects",
            _upsert_subject("sqlite", "OLD", -1) + _upsert_subject("sqlite", "NEW", 1),
        ),
    ]


TRIGGERS_SQLITE = (
    "stats_cases_ins",
    "stats_cases_del",
    "stats_cases_upd",
    "stats_deadlines_ins",
    "stats_deadlines_del",
    "stats_deadlines_upd_old",
    "stats_deadlines_upd_new",
    "stats_subjects_ins",
    "stats_subjects_del",
    "stats_subjects_upd",
)


def upgrade() -> None:
    op.create_index("ix_cases_received_on", "cases", ["received_on"], unique=False)
    op.create_index("ix_rewards_proposed_on", "rewards", ["proposed_on"], unique=False)
    op.create_table(
        "stats_case_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "dimension", "value"),
    )
    op.create_table(
        "stats_deadline_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("days_taken", sa.Integer(), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "stage", "days_taken", "late"),
    )
    op.create_table(
        "stats_handler_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("handler_id", sa.String(length=32), nullable=False),
        sa.Column("late", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "handler_id", "late"),
    )
    op.create_table(
        "stats_subject_keys",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )
    op.create_index(
        "ix_stats_subject_keys_cases", "stats_subject_keys", ["kind", "cases"], unique=False
    )
    dialect = op.get_bind().dialect.name
    for statement in backfill(dialect):
        op.execute(statement)
    triggers = _postgresql_triggers() if dialect == "postgresql" else _sqlite_triggers()
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, name in (
            ("cases", "stats_cases"),
            ("case_deadlines", "stats_deadlines"),
            ("subjects", "stats_subjects"),
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {name}_trg()")
    else:
        for name in TRIGGERS_SQLITE:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_stats_subject_keys_cases", table_name="stats_subject_keys")
    op.drop_table("stats_subject_keys")
    op.drop_table("stats_handler_days")
    op.drop_table("stats_deadline_days")
    op.drop_table("stats_case_days")
    op.drop_index("ix_rewards_proposed_on", table_name="rewards")
    op.drop_index("ix_cases_received_on", table_name="cases")
