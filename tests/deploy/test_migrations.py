"""Each service's Alembic migrations build exactly the tables its models describe, go down
and up again, on SQLite and on the real PostgreSQL; and the services migrate by themselves
in dev but refuse, naming the command, anywhere else."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from shared.database import make_engine

SERVICES = ("ingest", "outreach", "notify")


def migrations(service: str) -> ModuleType:
    return importlib.import_module(f"{service}.migrations")


def sqlite_engine(tmp_path: Path, service: str) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / (service + '.db')}")


def differences(engine: Engine, service: str) -> list:
    with engine.connect() as connection:
        return compare_metadata(
            MigrationContext.configure(connection), migrations(service).target_metadata()
        )


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def upgrade_downgrade_upgrade(engine: Engine, service: str) -> None:
    module = migrations(service)
    module.upgrade(engine)
    assert module.current_revision(engine) == module.head_revision()
    assert tables(engine) == set(module.target_metadata().tables)
    assert differences(engine, service) == [], (
        f"{service}'s models and migrations differ: write a migration "
        f"(see deploy/README.md, 'Changing a table')"
    )
    module.downgrade(engine, "base")
    assert tables(engine) == set()
    assert module.current_revision(engine) is None
    module.upgrade(engine)
    assert differences(engine, service) == []


@pytest.mark.unit
@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_the_models_tables_and_undo_them_on_sqlite(tmp_path, service):
    upgrade_downgrade_upgrade(sqlite_engine(tmp_path, service), service)


@pytest.mark.integration
@pytest.mark.parametrize("service", SERVICES)
def test_migrations_build_the_models_tables_and_undo_them_on_postgresql(postgres_url, service):
    engine = make_engine(postgres_url)
    try:
        upgrade_downgrade_upgrade(engine, service)
    finally:
        engine.dispose()


@pytest.mark.unit
@pytest.mark.parametrize("service", SERVICES)
def test_outside_dev_a_service_refuses_an_unmigrated_database_and_names_the_command(
    tmp_path, service
):
    module = migrations(service)
    engine = sqlite_engine(tmp_path, service)
    with pytest.raises(module.DatabaseNotMigrated, match=f"python -m {service} migrate"):
        module.prepare_database(engine, dev=False)
    assert tables(engine) == set(), "a refused start-up must not change the database"
    module.upgrade(engine)
    module.prepare_database(engine, dev=False)  # migrated: starts


@pytest.mark.unit
@pytest.mark.parametrize("service", SERVICES)
def test_in_dev_a_service_brings_its_database_to_the_newest_schema(tmp_path, service):
    module = migrations(service)
    engine = sqlite_engine(tmp_path, service)
    module.prepare_database(engine, dev=True)
    assert module.current_revision(engine) == module.head_revision()
    assert differences(engine, service) == []


@pytest.mark.unit
def test_in_dev_a_database_made_before_migrations_is_adopted_when_it_matches(tmp_path):
    module = migrations("outreach")
    engine = sqlite_engine(tmp_path, "outreach")
    module.target_metadata().create_all(engine)  # what start-up did before migrations
    module.prepare_database(engine, dev=True)
    assert module.current_revision(engine) == module.head_revision()


@pytest.mark.unit
def test_in_dev_an_older_database_that_does_not_match_is_set_aside_and_made_afresh(tmp_path):
    module = migrations("ingest")
    engine = sqlite_engine(tmp_path, "ingest")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE sourcekey (id INTEGER PRIMARY KEY)")
    module.prepare_database(engine, dev=True)
    assert (tmp_path / "ingest.db.before-migrations").is_file()
    assert module.current_revision(engine) == module.head_revision()
    assert differences(engine, "ingest") == []


@pytest.mark.integration
def test_outside_sqlite_an_older_dev_database_is_refused_not_touched(postgres_url):
    module = migrations("notify")
    engine = make_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE letters (id INTEGER PRIMARY KEY)")
        with pytest.raises(module.DatabaseNotMigrated, match="older version"):
            module.prepare_database(engine, dev=True)
    finally:
        engine.dispose()


@pytest.mark.unit
@pytest.mark.parametrize("service", SERVICES)
def test_the_migrate_command_needs_only_the_database_url(tmp_path, monkeypatch, capsys, service):
    monkeypatch.setenv("PROACTIVE_ENVIRONMENT", "production")  # and no secrets at all
    monkeypatch.setenv("PROACTIVE_DATA_DIR", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'job.db'}"
    monkeypatch.setenv(f"PROACTIVE_{service.upper()}_DATABASE_URL", url)
    main = importlib.import_module(f"{service}.__main__").main
    monkeypatch.setattr(sys, "argv", [service, "migrate"])
    main()
    assert "went from revision none (empty) to" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", [service, "migrate", "--to", "base"])
    main()
    assert tables(make_engine(url)) == set()


@pytest.mark.unit
@pytest.mark.parametrize("service", SERVICES)
def test_migrations_are_inside_the_package_so_the_image_has_them(service):
    folder = Path(migrations(service).__file__).parent
    for needed in ("env.py", "script.py.mako", "alembic.ini"):
        assert (folder / needed).is_file(), needed
    assert list((folder / "versions").glob("r*.py"))
