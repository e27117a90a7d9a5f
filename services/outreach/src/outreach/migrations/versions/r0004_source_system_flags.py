"""what the source systems say about residents (resident.flags.v1)

Revision ID: 0004
Revises: 0003
Created: 2026-11-27 06:12:43.004800
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sourceflags",
        sa.Column("resident_key", sa.String(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=True),
        sa.Column("basis", sa.JSON(), nullable=True),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resident_key"),
    )


def downgrade() -> None:
    op.drop_table("sourceflags")
