"""`python -m notify`: serve notify on 127.0.0.1:<notify_port>."""

import uvicorn

from notify.app import create_app
from notify.settings import NotifySettings


def main() -> None:
    settings = NotifySettings()
    uvicorn.run(create_app(settings), host="127.0.0.1", port=settings.notify_port, log_config=None)


if __name__ == "__main__":
    main()
