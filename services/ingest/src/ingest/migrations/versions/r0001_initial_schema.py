"""initial schema

Revision ID: 0001
Revises: nothing (the first revision)
Created: 2026-11-27 04:06:38.518007
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
        "approval",
        sa.Column("task_id", sa.String(), nullable=False),
        sa.Column("resident_key", sa.String(), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id"),
    )
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_resident_key"), ["resident_key"], unique=False
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
        "parkedchange",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("waiting_for_table", sa.String(), nullable=False),
        sa.Column("waiting_for_key", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("change_json", sa.String(), nullable=False),
        sa.Column("traceparent", sa.String(), nullable=True),
        sa.Column("parked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("parkedchange", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_parkedchange_waiting_for_key"), ["waiting_for_key"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_parkedchange_waiting_for_table"), ["waiting_for_table"], unique=False
        )

    op.create_table(
        "recordlink",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(), nullable=False),
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("resident_key", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("table_name", "record_key"),
    )
    op.create_table(
        "rejection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("source_event_id", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("payload", sa.String(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sourcekey",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("sourcekey", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sourcekey_source"), ["source"], unique=False)

    op.create_table(
        "vaultaccess",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("caller", sa.String(), nullable=False),
        sa.Column("resident_key", sa.String(), nullable=False),
        sa.Column("task_id", sa.String(), nullable=True),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "vaultentry",
        sa.Column("resident_key", sa.String(), nullable=False),
        sa.Column("person_ref", sa.String(), nullable=False),
        sa.Column("given_name", sa.String(), nullable=True),
        sa.Column("family_name", sa.String(), nullable=True),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("address_line_1", sa.String(), nullable=True),
        sa.Column("address_line_2", sa.String(), nullable=True),
        sa.Column("address_line_3", sa.String(), nullable=True),
        sa.Column("town", sa.String(), nullable=True),
        sa.Column("postcode", sa.String(), nullable=True),
        sa.Column("uprn", sa.String(), nullable=True),
        sa.Column("ward", sa.String(), nullable=True),
        sa.Column("preferred_language", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resident_key"),
    )
    with op.batch_alter_table("vaultentry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_vaultentry_person_ref"), ["person_ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("vaultentry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vaultentry_person_ref"))

    op.drop_table("vaultentry")
    op.drop_table("vaultaccess")
    with op.batch_alter_table("sourcekey", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sourcekey_source"))

    op.drop_table("sourcekey")
    op.drop_table("rejection")
    op.drop_table("recordlink")
    with op.batch_alter_table("parkedchange", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_parkedchange_waiting_for_table"))
        batch_op.drop_index(batch_op.f("ix_parkedchange_waiting_for_key"))

    op.drop_table("parkedchange")
    with op.batch_alter_table("outboxentry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outboxentry_published_at"))

    op.drop_table("outboxentry")
    with op.batch_alter_table("approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_resident_key"))

    op.drop_table("approval")
