"""Alembic's environment for outreach: runs the revisions on the engine it is given (from
`outreach.migrations`) or on PROACTIVE_OUTREACH_DATABASE_URL, as `python -m outreach migrate` does."""

from sqlalchemy.engine import Engine

from outreach.migrations import target_metadata
from shared.migrations import run_revisions


def engine_from_settings() -> Engine:
    from outreach.settings import OutreachSettings
    from shared.database import database_url, make_engine

    settings = OutreachSettings()
    return make_engine(database_url(settings.outreach_database_url, settings.data_dir, "outreach"))


run_revisions(target_metadata(), engine_from_settings)
