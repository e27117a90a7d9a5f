"""`python -m ingest` serves the API. `python -m ingest create-key --source NAME` prints a
new API key for a source system (stored hashed, usable at once by a running service);
`python -m ingest revoke-keys --source NAME` revokes every key of that source."""

import argparse

import uvicorn

from ingest.adapters.store import create_source_key, create_tables, revoke_source_keys
from ingest.settings import IngestSettings
from shared.database import database_url, make_engine


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ingest")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API (the default)")
    for name, text in (("create-key", "print a new API key"), ("revoke-keys", "revoke all keys")):
        command = commands.add_parser(name, help=f"{text} for a source system")
        command.add_argument("--source", required=True)
    arguments = parser.parse_args()
    settings = IngestSettings().check()
    if arguments.command in ("create-key", "revoke-keys"):
        engine = make_engine(
            database_url(settings.ingest_database_url, settings.data_dir, "ingest")
        )
        create_tables(engine)
        if arguments.command == "create-key":
            print(create_source_key(engine, arguments.source))
        else:
            print(
                f"Revoked {revoke_source_keys(engine, arguments.source)} key(s) of {arguments.source}."
            )
        return
    from ingest.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.bind_host,
        port=settings.ingest_port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
