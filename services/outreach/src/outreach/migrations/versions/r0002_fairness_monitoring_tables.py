"""fairness monitoring tables

Revision ID: 0002
Revises: 0001
Created: 2026-11-27 04:24:39.884912
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scoredresident",
        sa.Column("resident_key", sa.String(), nullable=False),
        sa.Column("age_band", sa.String(), nullable=True),
        sa.Column("ward", sa.String(), nullable=True),
        sa.Column("first_scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resident_key"),
    )
    with op.batch_alter_table("scoredresident", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scoredresident_age_band"), ["age_band"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_scoredresident_last_scored_at"), ["last_scored_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_scoredresident_ward"), ["ward"], unique=False)

    op.create_table(
        "taskscore",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("score_event_id", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("band", sa.String(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("score_event_id"),
    )
    with op.batch_alter_table("taskscore", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_taskscore_model_version"), ["model_version"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_taskscore_task_id"), ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("taskscore", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_taskscore_task_id"))
        batch_op.drop_index(batch_op.f("ix_taskscore_model_version"))

    op.drop_table("taskscore")
    with op.batch_alter_table("scoredresident", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scoredresident_ward"))
        batch_op.drop_index(batch_op.f("ix_scoredresident_last_scored_at"))
        batch_op.drop_index(batch_op.f("ix_scoredresident_age_band"))

    op.drop_table("scoredresident")
