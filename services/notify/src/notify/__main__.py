"""`python -m notify`: serve notify on <bind_host>:<notify_port>.
`python -m notify migrate [--to REVISION]` brings the database to the newest schema (or to
that revision, down as well as up)."""

import argparse
import sys

import uvicorn

from notify.migrations import DatabaseNotMigrated, migrate, prepare_database
from notify.settings import NotifySettings
from shared.database import make_engine


def main() -> None:
    settings = NotifySettings()
    if sys.argv[1:2] == ["migrate"]:
        parser = argparse.ArgumentParser(prog="python -m notify migrate")
        parser.add_argument("--to", default="head", help="a revision to move to (default: head)")
        revision = parser.parse_args(sys.argv[2:]).to
        print(migrate(make_engine(settings.database()), revision))
        return
    from notify.app import create_app

    try:
        # Checked here as well as at start-up, so a refusal is one plain line, not a traceback.
        prepare_database(make_engine(settings.database()), dev=settings.is_dev)
    except DatabaseNotMigrated as error:
        sys.exit(str(error))
    uvicorn.run(
        create_app(settings), host=settings.bind_host, port=settings.notify_port, log_config=None
    )


if __name__ == "__main__":
    main()
