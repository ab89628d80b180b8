"""Line modifiers: the CPT/HCPCS modifiers a reviewer set on a code (25, 59, XS, LT...), as a JSON list.

Nullable: entries written before this revision have none, and their hashes, made without the column, still
verify (`entry.ADDED_COLUMNS`). Adding a column is neither an UPDATE nor a DELETE, so the append-only
triggers of 0001 stay as they are.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_entries", sa.Column("modifiers", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("audit_entries", "modifiers")
