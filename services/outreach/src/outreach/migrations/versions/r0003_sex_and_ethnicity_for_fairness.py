"""sex and ethnicity on scored residents, for fairness monitoring only

Revision ID: 0003
Revises: 0002
Created: 2026-11-27 05:07:13
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scoredresident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sex", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("ethnicity", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scoredresident", schema=None) as batch_op:
        batch_op.drop_column("ethnicity")
        batch_op.drop_column("sex")
