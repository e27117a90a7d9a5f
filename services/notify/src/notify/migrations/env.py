"""Alembic's environment for notify: runs the revisions on the engine it is given (from
`notify.migrations`) or on PROACTIVE_NOTIFY_DATABASE_URL, as `python -m notify migrate` does."""

from sqlalchemy.engine import Engine

from notify.migrations import target_metadata
from shared.migrations import run_revisions


def engine_from_settings() -> Engine:
    from notify.settings import NotifySettings
    from shared.database import database_url, make_engine

    settings = NotifySettings()
    return make_engine(database_url(settings.notify_database_url, settings.data_dir, "notify"))


run_revisions(target_metadata(), engine_from_settings)
