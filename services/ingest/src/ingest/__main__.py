"""`python -m ingest` serves the API. `python -m ingest create-key --source NAME` prints a
new API key for a source system (stored hashed, usable at once by a running service);
`python -m ingest revoke-keys --source NAME` revokes every key of that source;
`python -m ingest migrate` brings the database to the newest schema (`--to REVISION` moves
it to that revision instead, down as well as up)."""

import argparse
import gc
import sys

import uvicorn

from ingest.adapters.store import create_source_key, revoke_source_keys
from ingest.migrations import DatabaseNotMigrated, migrate, prepare_database
from ingest.settings import IngestSettings
from shared.database import database_url, make_engine


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ingest")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API (the default)")
    for name, text in (("create-key", "print a new API key"), ("revoke-keys", "revoke all keys")):
        command = commands.add_parser(name, help=f"{text} for a source system")
        command.add_argument("--source", required=True)
    command = commands.add_parser("migrate", help="bring the database to the newest schema")
    command.add_argument("--to", default="head", help="a revision to move to (default: head)")
    arguments = parser.parse_args()
    if arguments.command == "migrate":
        # The migration job needs only the database URL, not the service's secrets.
        plain = IngestSettings()
        url = database_url(plain.ingest_database_url, plain.data_dir, "ingest")
        print(migrate(make_engine(url), arguments.to))
        return
    settings = IngestSettings().check()
    try:
        if arguments.command in ("create-key", "revoke-keys"):
            engine = make_engine(
                database_url(settings.ingest_database_url, settings.data_dir, "ingest")
            )
            prepare_database(engine, dev=settings.is_dev)
            if arguments.command == "create-key":
                print(create_source_key(engine, arguments.source))
            else:
                revoked = revoke_source_keys(engine, arguments.source)
                print(f"Revoked {revoked} key(s) of {arguments.source}.")
            return
        from ingest.app import create_app

        app = create_app(settings)
    except DatabaseNotMigrated as error:
        sys.exit(str(error))
    tune_garbage_collector()
    uvicorn.run(app, host=settings.bind_host, port=settings.ingest_port, log_level="warning")


def tune_garbage_collector() -> None:
    """Keep the cycle collector's full passes off ingest's hot path.

    A batch of 1,000 changes makes tens of thousands of objects that live as long as the
    request, long enough to outlast the young collections: with the default thresholds
    they set off a full collection every few batches, and each walked every object of the
    process (about 260,000, a quarter of a second on the bench machine). Measured under
    `proactive bench --ingest-only`: 6 full collections, 1.08 s of 5.7 CPU-seconds for
    30,000 events. So what start-up made (modules, the app, the mapping) is frozen out of
    the collector's walks, and the young generation is collected less often, so that a
    request's objects are mostly freed by reference counting before they are promoted.
    Cycles are still collected, only less often."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


if __name__ == "__main__":
    main()
