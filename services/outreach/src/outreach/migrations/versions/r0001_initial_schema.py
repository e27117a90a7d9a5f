"""initial schema

Revision ID: 0001
Revises: nothing (the first revision)
Created: 2026-11-27 04:07:03.802028
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auditentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resident_key", sa.String(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("policy_version", sa.String(), nullable=True),
        sa.Column("score_event_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_auditentry_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_auditentry_resident_key"), ["resident_key"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_auditentry_task_id"), ["task_id"], unique=False)

    op.create_table(
        "deadletter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "outboxentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("message_key", sa.String(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("traceparent", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("outboxentry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outboxentry_published_at"), ["published_at"], unique=False
        )

    op.create_table(
        "processedevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("consumer", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "consumer"),
    )
    op.create_table(
        "residentflag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_key", sa.String(), nullable=False),
        sa.Column("flag", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("resident_key", "flag"),
    )
    with op.batch_alter_table("residentflag", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_residentflag_resident_key"), ["resident_key"], unique=False
        )

    op.create_table(
        "task",
        sa.Column("resident_key", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=True),
        sa.Column("team", sa.String(), nullable=False),
        sa.Column("policy_version", sa.String(), nullable=False),
        sa.Column("age_band", sa.String(), nullable=True),
        sa.Column("ward", sa.String(), nullable=True),
        sa.Column("due_by", sa.Date(), nullable=True),
        sa.Column("assigned_to", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("closed_reason", sa.String(), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_by", sa.String(), nullable=True),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("letter_reference", sa.String(), nullable=True),
        sa.Column("letter_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("traceparent", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("task_id"),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_closed_at"), ["closed_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_task_letter_reference"), ["letter_reference"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_task_released_at"), ["released_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_resident_key"), ["resident_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_team"), ["team"], unique=False)

    op.create_table(
        "tasknote",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("tasknote", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tasknote_task_id"), ["task_id"], unique=False)

    op.create_table(
        "user",
        sa.Column("username", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("team", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username"),
    )


def downgrade() -> None:
    op.drop_table("user")
    with op.batch_alter_table("tasknote", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tasknote_task_id"))

    op.drop_table("tasknote")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_team"))
        batch_op.drop_index(batch_op.f("ix_task_status"))
        batch_op.drop_index(batch_op.f("ix_task_resident_key"))
        batch_op.drop_index(batch_op.f("ix_task_released_at"))
        batch_op.drop_index(batch_op.f("ix_task_letter_reference"))
        batch_op.drop_index(batch_op.f("ix_task_closed_at"))

    op.drop_table("task")
    with op.batch_alter_table("residentflag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_residentflag_resident_key"))

    op.drop_table("residentflag")
    op.drop_table("processedevent")
    with op.batch_alter_table("outboxentry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outboxentry_published_at"))

    op.drop_table("outboxentry")
    op.drop_table("deadletter")
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auditentry_task_id"))
        batch_op.drop_index(batch_op.f("ix_auditentry_resident_key"))
        batch_op.drop_index(batch_op.f("ix_auditentry_at"))

    op.drop_table("auditentry")
