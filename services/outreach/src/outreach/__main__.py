"""`python -m outreach` serves the outreach API on PROACTIVE_OUTREACH_PORT."""

import uvicorn

from outreach.app import create_app
from outreach.settings import OutreachSettings


def main() -> None:
    settings = OutreachSettings().check()
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=settings.outreach_port, log_level="warning"
    )


if __name__ == "__main__":
    main()
