"""Alembic's environment for ingest: runs the revisions on the engine it is given (from
`ingest.migrations`) or on PROACTIVE_INGEST_DATABASE_URL, as `python -m ingest migrate` does."""

from sqlalchemy.engine import Engine

from ingest.migrations import target_metadata
from shared.migrations import run_revisions


def engine_from_settings() -> Engine:
    from ingest.settings import IngestSettings
    from shared.database import database_url, make_engine

    settings = IngestSettings()
    return make_engine(database_url(settings.ingest_database_url, settings.data_dir, "ingest"))


run_revisions(target_metadata(), engine_from_settings)
