"""The audit_entries table, append-only by triggers (SQLite and PostgreSQL).

Revision ID: 0001
Revises: none
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

REFUSED = "audit_entries is append-only"


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("recorded_at", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        *(sa.Column(name, sa.String(200)) for name in (
            "encounter_id", "note_id", "setting", "code_system", "code_set_version", "code", "replaces", "model_name",
            "model_version", "decision")),
        sa.Column("note_sha256", sa.String(64)),
        sa.Column("manifest_sha256", sa.String(64)),
        sa.Column("score", sa.Float),
        sa.Column("threshold", sa.Float),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("context_flags", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("attestation", sa.Text),
        sa.Column("hash_kind", sa.String(16), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
    )  # fmt: skip
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_entries_no_{verb.lower()} BEFORE {verb} ON audit_entries "
                f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: {verb} refused'); END"
            )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_entries_append_only() RETURNS trigger AS $$ BEGIN "
            f"RAISE EXCEPTION '{REFUSED}: % refused', TG_OP; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER audit_entries_no_change BEFORE UPDATE OR DELETE ON audit_entries "
            "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()"
        )
    else:
        raise RuntimeError(f"the audit log's triggers exist for sqlite and postgresql, not {dialect}")


def downgrade() -> None:
    raise RuntimeError("the audit log is never downgraded: its entries are evidence")
