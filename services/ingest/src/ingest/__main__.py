"""`python -m ingest` serves the API; `python -m ingest create-key --source NAME` makes a
source system's API key (stored hashed, usable at once by a running service)."""

import argparse

import uvicorn

from ingest.adapters.store import create_source_key, create_tables
from ingest.settings import IngestSettings
from shared.database import database_url, make_engine


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ingest")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API (the default)")
    create_key = commands.add_parser("create-key", help="print a new API key for a source system")
    create_key.add_argument("--source", required=True)
    arguments = parser.parse_args()
    settings = IngestSettings().check()
    if arguments.command == "create-key":
        engine = make_engine(
            database_url(settings.ingest_database_url, settings.data_dir, "ingest")
        )
        create_tables(engine)
        print(create_source_key(engine, arguments.source))
        return
    from ingest.app import create_app

    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=settings.ingest_port, log_level="warning"
    )


if __name__ == "__main__":
    main()
