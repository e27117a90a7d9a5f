"""Outreach's database schema, versioned with Alembic: the revisions are in `versions/`; how
they are applied (upgraded by itself in dev, refused until `python -m outreach migrate` has
run anywhere else) is `shared.migrations`."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import MetaData

from shared.migrations import DatabaseNotMigrated, SchemaMigrations, models_of


def target_metadata() -> MetaData:
    """Every table outreach owns: its own models and the shared outbox."""
    import outreach.app  # noqa: F401  (imports every module that defines a table)

    return models_of("outreach", ("shared.outbox",))


SCHEMA = SchemaMigrations("outreach", Path(__file__).resolve().parent, target_metadata)
alembic_config = SCHEMA.alembic_config
head_revision = SCHEMA.head_revision
current_revision = SCHEMA.current_revision
upgrade = SCHEMA.upgrade
downgrade = SCHEMA.downgrade
migrate = SCHEMA.migrate
prepare_database = SCHEMA.prepare_database

__all__ = [
    "SCHEMA",
    "DatabaseNotMigrated",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "migrate",
    "prepare_database",
    "target_metadata",
    "upgrade",
]
