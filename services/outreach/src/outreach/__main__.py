"""`python -m outreach` serves outreach on PROACTIVE_OUTREACH_PORT;
`python -m outreach seed-users` creates one development user per role and prints their
passwords once (only argon2 hashes are stored)."""

import sys

import uvicorn

from outreach.app import create_app
from outreach.settings import OutreachSettings


def seed_users() -> None:
    from outreach.adapters.store import create_tables
    from outreach.adapters.users import seed_dev_users
    from shared.database import database_url, make_engine

    settings = OutreachSettings().check()
    if not settings.password_login:
        sys.exit("Password users are for development only; production signs in with OIDC.")
    engine = make_engine(
        database_url(settings.outreach_database_url, settings.data_dir, "outreach")
    )
    create_tables(engine)
    print("Development users for the officer service (shown once; only hashes are kept):")
    for username, password in seed_dev_users(engine).items():
        print(f"  {username:<10} {password}")


def main() -> None:
    if sys.argv[1:] == ["seed-users"]:
        seed_users()
        return
    settings = OutreachSettings().check()
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=settings.outreach_port, log_level="warning"
    )


if __name__ == "__main__":
    main()
