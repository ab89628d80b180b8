"""Physician queries: a `query` entry (a care-gap query sent) and an `answer` entry (the provider's answer) carry
the query's identity in a JSON column: its id, rule, format and option labels, the SHA-256 of its text (which
quotes the note, so is never stored), and for an answer the option chosen and the SHA-256 of any free text.

Nullable: entries written before this revision have none, and their hashes, made without the column, still
verify (`entry.ADDED_COLUMNS`). Adding a column is neither an UPDATE nor a DELETE, so the append-only
triggers of 0001 stay as they are.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_entries", sa.Column("query", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("audit_entries", "query")
