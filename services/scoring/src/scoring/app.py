"""Wiring: the Faust app, its table and topics, the models and the scoring service."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from scoring.adapters.faust_transport import transport_with_fetch_wait
from scoring.adapters.onnx_models import ModelRegistry
from scoring.adapters.publisher import BatchPublisher
from scoring.entrypoints.agents import register_agents
from scoring.entrypoints.drift import register_drift
from scoring.entrypoints.pages import register_pages
from scoring.handlers import ScoringService
from scoring.settings import ScoringSettings
from shared.telemetry import logging_config
from shared.topics import RESIDENT_EVENTS, RESIDENT_OPTOUTS, Topic

APP_ID = "proactive-scoring"
STATE_TABLE = "resident-state"
# Faust names a table's changelog `<app id>-<table>-changelog`; it is created up front
# with the partition count of the topic the table is keyed by (the Faust notes).
STATE_CHANGELOG = Topic(
    f"{APP_ID}-{STATE_TABLE}-changelog",
    RESIDENT_EVENTS.partitions,
    compacted=True,
    description="Scoring's per-resident state",
)


@dataclass
class ScoringApp:
    app: faust.App
    service: ScoringService
    table: faust.types.TableT
    agent: faust.types.AgentT


def build_app(
    settings: ScoringSettings,
    models: ModelRegistry | None = None,
    *,
    broker: str | None = None,
    store: str = "rocksdb://",
) -> ScoringApp:
    app = faust.App(
        APP_ID,
        broker=broker or f"kafka://{settings.kafka_bootstrap}",
        store=store,
        datadir=str(settings.service_data_dir("scoring") / "faust"),
        autodiscover=False,
        # Tansu cannot commit transactions: at-least-once, and the fold is idempotent.
        processing_guarantee="at_least_once",
        topic_partitions=RESIDENT_EVENTS.partitions,
        topic_replication_factor=1,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        # Tansu makes a group join wait about half the session timeout (Tansu notes).
        broker_session_timeout=10.0,
        broker_rebalance_timeout=5.0,
        broker_heartbeat_interval=1.0,
        producer_acks=-1,
        recovery_consistency_check=settings.scoring_recovery_consistency_check,
        # Faust's producer carries only the state changelog (scores go out in batches of
        # their own). Batching it is cheaper; on the embedded broker it must not be (the
        # end-offset defect: see ScoringSettings.scoring_changelog_batching).
        producer_linger_ms=5 if settings.scoring_changelog_batching else 0,
        producer_max_batch_size=262_144 if settings.scoring_changelog_batching else 1,
        # Faust's worker replaces the process's logging with its own; handed ours, it keeps
        # JSON lines at the configured level (see also FAUST_LOG_LEVELS in __main__).
        logging_config=logging_config(settings.log_level),
        web_enabled=True,
        web_port=settings.scoring_port,
        web_bind=settings.bind_host,
        web_host=settings.bind_host,
    )
    # Faust's fixed fetch wait would delay every event on the embedded broker (see the
    # adapter); set before anything asks the app for its transport.
    app.transport = transport_with_fetch_wait(settings.kafka_fetch_max_wait_ms)(
        app.conf.broker_consumer, app
    )
    events_topic = app.topic(
        RESIDENT_EVENTS.name,
        partitions=RESIDENT_EVENTS.partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    optouts_topic = app.topic(
        RESIDENT_OPTOUTS.name,
        partitions=RESIDENT_OPTOUTS.partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    table = app.Table(
        STATE_TABLE,
        default=None,
        partitions=RESIDENT_EVENTS.partitions,
        # str keys under Faust's json codec; values are the state's JSON bytes, written and
        # read by the service (`stored_form`, `read_stored`) with no codec or Record class
        # in between (decoding records is where Faust's time goes). `bytes` means Faust's
        # raw codec: the bytes go to the store and the changelog as they are.
        value_type=bytes,
    )

    service = ScoringService(
        table,
        models or ModelRegistry.load(settings.scoring_models_dir),
        # Scores, flags and dead letters go out as one record batch per partition.
        BatchPublisher(settings.kafka_bootstrap),
        shadow=ModelRegistry.candidates(settings.scoring_shadow_models_dir),
        hysteresis_delta=settings.scoring_hysteresis_delta,
        batch_size=settings.scoring_batch_size,
        max_wait_s=settings.scoring_batch_max_wait_s,
    )
    agent = register_agents(app, events_topic, optouts_topic, service)
    register_pages(app, service, settings.service_token)
    register_drift(app, service)
    return ScoringApp(app=app, service=service, table=table, agent=agent)
