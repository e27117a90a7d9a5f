"""A service's database schema, versioned with Alembic: one implementation for every
service that has tables (ingest, outreach, notify), each with its own revisions.

In dev (`PROACTIVE_ENVIRONMENT=dev`) start-up brings the database to the newest revision by
itself, so `make run` needs no step. Anywhere else the schema is changed only on purpose,
by `python -m <service> migrate` (the migration job in Compose and Kubernetes), and the
service refuses to start against a database that is behind or unversioned: two replicas
racing to alter the same tables during a rolling upgrade is how production databases get
broken.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


class DatabaseNotMigrated(RuntimeError):
    """The database's schema is not the one this version of the code needs."""


class SchemaMigrations:
    """One service's revisions (in `script_location`) and the tables they must produce."""

    def __init__(
        self, service: str, script_location: Path, target_metadata: Callable[[], MetaData]
    ) -> None:
        self.service = service
        self.script_location = script_location
        self.target_metadata = target_metadata

    def alembic_config(self, engine: Engine | None = None) -> Config:
        """Alembic's configuration, built in code so that no alembic.ini has to be found."""
        config = Config()
        config.set_main_option("script_location", str(self.script_location))
        if engine is not None:
            config.attributes["engine"] = engine
        return config

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self.alembic_config()).get_current_head()

    def current_revision(self, engine: Engine) -> str | None:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def upgrade(self, engine: Engine, revision: str = "head") -> None:
        command.upgrade(self.alembic_config(engine), revision)

    def downgrade(self, engine: Engine, revision: str) -> None:
        command.downgrade(self.alembic_config(engine), revision)

    def migrate(self, engine: Engine, revision: str = "head") -> str:
        """Move the schema to `revision`, down as well as up; says what was done, plainly."""
        before = self.current_revision(engine)
        if revision == "base" or (before is not None and self._is_older(revision, before)):
            self.downgrade(engine, revision)
        else:
            self.upgrade(engine, revision)
        after = self.current_revision(engine)
        if after == before:
            return (
                f"{self.service}'s database is already at revision {after or 'none'}; "
                "nothing to do."
            )
        return (
            f"{self.service}'s database went from revision {before or 'none (empty)'} "
            f"to {after or 'none (empty)'}."
        )

    def _is_older(self, revision: str, current: str) -> bool:
        script = ScriptDirectory.from_config(self.alembic_config())
        wanted = script.get_revision(revision)
        return wanted is not None and any(
            step.revision == wanted.revision
            for step in script.iterate_revisions(current, "base")
            if step.revision != current
        )

    def prepare_database(self, engine: Engine, *, dev: bool) -> None:
        """Make sure the schema is the newest before the service uses the database.

        dev: upgrade to the newest revision (a database made before migrations existed is
        adopted when its tables match the models, set aside when not). Otherwise: refuse,
        naming the command.
        """
        current, head = self.current_revision(engine), self.head_revision()
        if current == head:
            return
        if dev:
            if current is None and self._has_tables(engine):
                self._adopt_unversioned(engine)
                return
            self.upgrade(engine)
            return
        service = self.service
        state = "has no schema version" if current is None else f"is at revision {current}"
        raise DatabaseNotMigrated(
            f"{service}'s database {state}, but this version of {service} needs revision "
            f"{head}. Run `python -m {service} migrate` (the migration job) before starting "
            f"{service}."
        )

    def _has_tables(self, engine: Engine) -> bool:
        return bool(set(inspect(engine).get_table_names()) & set(self.target_metadata().tables))

    def _adopt_unversioned(self, engine: Engine) -> None:
        """A dev database made by create_all before migrations existed: stamp it when it
        matches the models; otherwise (an older schema) set the SQLite file aside and start
        afresh."""
        metadata = self.target_metadata()
        with engine.begin() as connection:
            metadata.create_all(connection)  # what create_all at start-up used to do
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
        if differences:
            path = engine.url.database
            if engine.url.get_backend_name() != "sqlite" or not path or not Path(path).is_file():
                raise DatabaseNotMigrated(
                    f"{self.service}'s development database was made by an older version and "
                    f"does not match the code ({len(differences)} difference(s)): drop its "
                    f"tables, or point PROACTIVE_{self.service.upper()}_DATABASE_URL at an "
                    "empty database."
                )
            engine.dispose()
            aside = Path(f"{path}.before-migrations")
            for suffix in ("", "-wal", "-shm"):
                if Path(path + suffix).exists():
                    Path(path + suffix).replace(f"{aside}{suffix}")
            log.warning(
                "%s's development database was made by an older version; it is kept as %s "
                "and a new one is made.",
                self.service,
                aside,
            )
            self.upgrade(engine)
            return
        with engine.begin() as connection:
            script = ScriptDirectory.from_config(self.alembic_config())
            MigrationContext.configure(connection).stamp(script, "head")
        log.info(
            "Adopted %s's unversioned development database at revision %s",
            self.service,
            self.head_revision(),
        )


def models_of(service: str, modules: tuple[str, ...] = ()) -> MetaData:
    """The tables a service owns among SQLModel's default registry: those defined in its
    own package (and in `modules`, such as `shared.outbox`)."""
    from sqlmodel.main import default_registry

    metadata = MetaData()
    for mapper in default_registry.mappers:
        model = mapper.class_
        if model.__module__.startswith(f"{service}.") or model.__module__ in modules:
            model.__table__.to_metadata(metadata)
    return metadata


def render_item(kind: str, item: Any, _context: Any) -> str | bool:
    """Write SQLModel's column types as what they store, so revisions need only SQLAlchemy."""
    from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

    if kind == "type" and isinstance(item, AutoString):
        return f"sa.String(length={item.length})" if item.length else "sa.String()"
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_revisions(metadata: MetaData, engine_from_settings: Callable[[], Engine]) -> None:
    """What each service's Alembic `env.py` does: run the revisions on the engine it was
    given (by `SchemaMigrations`) or on the one the service's settings name."""
    from alembic import context

    config = context.config
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
