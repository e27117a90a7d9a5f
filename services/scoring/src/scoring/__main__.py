"""`python -m scoring`: create the topics scoring needs, then run one Faust worker."""

from __future__ import annotations

import asyncio
import sys

from scoring.app import STATE_CHANGELOG, build_app
from scoring.settings import ScoringSettings
from shared.kafka import ensure_topics
from shared.telemetry import setup_logging, setup_tracing
from shared.topics import (
    RESIDENT_EVENTS,
    RESIDENT_EVENTS_DEAD_LETTERS,
    RESIDENT_FLAGS,
    RESIDENT_OPTOUTS,
    RISK_SCORES,
    RISK_SCORES_SHADOW,
)

# The level named to Faust's worker. Our logging configuration (handed to the app) sets
# the real level; this one only decides whether Faust adds its terminal spinner, which at
# WARNING and above it does by turning the root logger to DEBUG so that the spinner turns
# on every debug call (a tenth of a busy worker's time, measured).
FAUST_LOG_LEVELS = {"DEBUG": "debug"}


def main() -> None:
    settings = ScoringSettings()
    setup_logging(settings.log_level)
    # Scoring makes its own Kafka spans (one per event in, one per resident's scores out);
    # the aiokafka instrumentation would add one per changelog write, thrown away unread.
    setup_tracing(
        "scoring", settings.data_dir, to_file=settings.traces_to_file, instrument_kafka=False
    )
    # Faust picks up the current event loop, so the topics are made on that same loop.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(
        ensure_topics(
            settings.kafka_bootstrap,
            [
                RESIDENT_EVENTS,
                RESIDENT_OPTOUTS,
                RISK_SCORES,
                RISK_SCORES_SHADOW,
                RESIDENT_FLAGS,
                RESIDENT_EVENTS_DEAD_LETTERS,
                STATE_CHANGELOG,
            ],
        )
    )
    scoring = build_app(settings)
    sys.argv = [
        "scoring",
        "worker",
        "--web-port",
        str(settings.scoring_port),
        "--web-host",
        settings.bind_host,
        "--web-bind",
        settings.bind_host,
        "--loglevel",
        FAUST_LOG_LEVELS.get(settings.log_level.upper(), "info"),
    ]
    scoring.app.main()


if __name__ == "__main__":
    main()
