"""Alembic's environment for outreach: runs the revisions on the engine it is given (from
`outreach.migrations`) or on PROACTIVE_OUTREACH_DATABASE_URL, as `python -m outreach migrate` does."""

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Engine
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from outreach.migrations import target_metadata


def engine_from_settings() -> Engine:
    from outreach.settings import OutreachSettings
    from shared.database import database_url, make_engine

    settings = OutreachSettings()
    return make_engine(database_url(settings.outreach_database_url, settings.data_dir, "outreach"))


def render_item(kind: str, item: Any, _context: AutogenContext) -> str | bool:
    """Write SQLModel's column types as what they store, so revisions need only SQLAlchemy."""
    if kind == "type" and isinstance(item, AutoString):
        return f"sa.String(length={item.length})" if item.length else "sa.String()"
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run() -> None:
    config = context.config
    metadata = target_metadata()
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "compare_type": True,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        "render_as_batch": True,
        "render_item": render_item,
    }
    if context.is_offline_mode():
        url = config.get_main_option(
            "sqlalchemy.url"
        ) or engine_from_settings().url.render_as_string(hide_password=False)
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine: Engine = config.attributes.get("engine") or engine_from_settings()
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
