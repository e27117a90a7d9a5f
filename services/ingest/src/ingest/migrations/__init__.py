"""Ingest's database schema, versioned with Alembic (the revisions are in `versions/`).

In dev (`PROACTIVE_ENVIRONMENT=dev`) start-up brings the database to the newest revision by
itself, so `make run` needs no step. Anywhere else the schema is changed only on purpose,
by `python -m ingest migrate` (the migration job in Compose and Kubernetes), and ingest
refuses to start against a database that is behind or unversioned: two replicas racing to
alter the same tables during a rolling upgrade is how production databases get broken.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Engine

SERVICE = "ingest"
HERE = Path(__file__).resolve().parent
log = logging.getLogger(__name__)


class DatabaseNotMigrated(RuntimeError):
    """The database's schema is not the one this version of the code needs."""


def target_metadata() -> MetaData:
    """Every table ingest owns: its own models and the shared outbox."""
    from sqlmodel.main import default_registry

    import ingest.app  # noqa: F401  (imports every module that defines a table)

    metadata = MetaData()
    for mapper in default_registry.mappers:
        model = mapper.class_
        table = model.__table__
        if model.__module__.startswith(f"{SERVICE}.") or model.__module__ == "shared.outbox":
            table.to_metadata(metadata)
    return metadata


def alembic_config(engine: Engine | None = None) -> Config:
    """Alembic's configuration, built in code so that no alembic.ini has to be found."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(engine), revision)


def migrate(engine: Engine, revision: str = "head") -> str:
    """Move the schema to `revision`, down as well as up; says what was done, plainly."""
    before = current_revision(engine)
    if revision == "base" or (before is not None and _is_older(revision, before)):
        downgrade(engine, revision)
    else:
        upgrade(engine, revision)
    after = current_revision(engine)
    if after == before:
        return f"{SERVICE}'s database is already at revision {after or 'none'}; nothing to do."
    return (
        f"{SERVICE}'s database went from revision {before or 'none (empty)'} "
        f"to {after or 'none (empty)'}."
    )


def _is_older(revision: str, current: str) -> bool:
    script = ScriptDirectory.from_config(alembic_config())
    wanted = script.get_revision(revision)
    return wanted is not None and any(
        step.revision == wanted.revision
        for step in script.iterate_revisions(current, "base")
        if step.revision != current
    )


def prepare_database(engine: Engine, *, dev: bool) -> None:
    """Make sure the schema is the newest before the service uses the database.

    dev: upgrade to the newest revision (a database made before migrations existed is
    adopted when its tables match the models, set aside when not). Otherwise: refuse,
    naming the command.
    """
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    if dev:
        if current is None and _has_tables(engine):
            _adopt_unversioned(engine)
            return
        upgrade(engine)
        return
    state = "has no schema version" if current is None else f"is at revision {current}"
    raise DatabaseNotMigrated(
        f"{SERVICE}'s database {state}, but this version of {SERVICE} needs revision {head}. "
        f"Run `python -m {SERVICE} migrate` (the migration job) before starting {SERVICE}."
    )


def _has_tables(engine: Engine) -> bool:
    return bool(set(inspect(engine).get_table_names()) & set(target_metadata().tables))


def _adopt_unversioned(engine: Engine) -> None:
    """A dev database made by create_all before migrations existed: stamp it when it matches
    the models; otherwise (an older schema) set the SQLite file aside and start afresh."""
    metadata = target_metadata()
    with engine.begin() as connection:
        metadata.create_all(connection)  # what create_all at start-up used to do
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    if differences:
        path = engine.url.database
        if engine.url.get_backend_name() != "sqlite" or not path or not Path(path).is_file():
            raise DatabaseNotMigrated(
                f"{SERVICE}'s development database was made by an older version and does not "
                f"match the code ({len(differences)} difference(s)): drop its tables, or point "
                f"PROACTIVE_{SERVICE.upper()}_DATABASE_URL at an empty database."
            )
        engine.dispose()
        aside = Path(f"{path}.before-migrations")
        for suffix in ("", "-wal", "-shm"):
            if Path(path + suffix).exists():
                Path(path + suffix).replace(f"{aside}{suffix}")
        log.warning(
            "%s's development database was made by an older version; it is kept as %s "
            "and a new one is made.",
            SERVICE,
            aside,
        )
        upgrade(engine)
        return
    with engine.begin() as connection:
        script = ScriptDirectory.from_config(alembic_config())
        MigrationContext.configure(connection).stamp(script, "head")
    log.info(
        "Adopted %s's unversioned development database at revision %s", SERVICE, head_revision()
    )
