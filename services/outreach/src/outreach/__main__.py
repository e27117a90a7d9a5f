"""`python -m outreach` serves outreach on PROACTIVE_OUTREACH_PORT;
`python -m outreach seed-users` creates one development user per role and prints their
passwords once (only argon2 hashes are stored); `python -m outreach migrate [--to REVISION]`
brings the database to the newest schema (or to that revision, down as well as up)."""

import argparse
import sys

import uvicorn

from outreach.migrations import DatabaseNotMigrated, migrate, prepare_database
from outreach.settings import OutreachSettings
from shared.database import database_url, make_engine


def seed_users() -> None:
    from outreach.adapters.users import seed_dev_users

    settings = OutreachSettings().check()
    if not settings.password_login:
        sys.exit("Password users are for development only; production signs in with OIDC.")
    engine = make_engine(
        database_url(settings.outreach_database_url, settings.data_dir, "outreach")
    )
    prepare_database(engine, dev=settings.is_dev)
    print("Development users for the officer service (shown once; only hashes are kept):")
    for username, password in seed_dev_users(engine).items():
        print(f"  {username:<10} {password}")


def migrate_database(arguments: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m outreach migrate")
    parser.add_argument("--to", default="head", help="a revision to move to (default: head)")
    revision = parser.parse_args(arguments).to
    # The migration job needs only the database URL, not the service's secrets.
    settings = OutreachSettings()
    url = database_url(settings.outreach_database_url, settings.data_dir, "outreach")
    print(migrate(make_engine(url), revision))


def main() -> None:
    if sys.argv[1:] == ["seed-users"]:
        seed_users()
        return
    if sys.argv[1:2] == ["migrate"]:
        migrate_database(sys.argv[2:])
        return
    from outreach.app import create_app

    settings = OutreachSettings().check()
    try:
        app = create_app(settings)
    except DatabaseNotMigrated as error:
        sys.exit(str(error))
    uvicorn.run(app, host=settings.bind_host, port=settings.outreach_port, log_level="warning")


if __name__ == "__main__":
    main()
