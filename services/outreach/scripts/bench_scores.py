"""How fast outreach takes risk scores: prints figures, asserts nothing.

    .venv/bin/python services/outreach/scripts/bench_scores.py --scores 3000
    .venv/bin/python services/outreach/scripts/bench_scores.py --via-broker --scores 20000
    .venv/bin/python services/outreach/scripts/bench_scores.py --database-url postgresql://...

Without `--via-broker` it calls the handlers directly: `handle_score` one score at a time
and `handle_scores` in batches, each on a fresh database. With `--via-broker` it starts an
embedded broker, puts the scores on `risk.scores.v1` (with a trace context each, as
scoring does) and times outreach's own scores consumer taking all of them. Tracing is set
up as in the service (spans to a local file, SQL statements traced), so spans are paid
for. Each figure is given as scores per second of wall clock and per CPU-second of this
process: the machine is shared, so the second is the steadier one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from outreach.domain.policy import load_policy
from outreach.migrations import prepare_database
from shared.database import database_url, make_engine
from shared.events import Reason, RiskScored
from shared.telemetry import instrument_database, setup_tracing

MODELS = ("falls", "homelessness", "frailty")
AGE_BANDS = ("0-17", "18-34", "35-54", "55-64", "65-74", "75-84", "85+")


def make_scores(count: int, seed: int) -> list[RiskScored]:
    """About three scores per resident (one per model), a tenth of them high."""
    chooser = random.Random(seed)
    residents = [
        ("r_" + uuid.UUID(int=chooser.getrandbits(128)).hex, chooser.choice(AGE_BANDS))
        for _ in range(max(1, count // 3))
    ]
    scores = []
    for i in range(count):
        key, age_band = chooser.choice(residents)
        band = chooser.choices(("high", "medium", "low"), (0.1, 0.3, 0.6))[0]
        scores.append(
            RiskScored(
                occurred_at=datetime.now(UTC),
                resident_key=key,
                source="scoring",
                model=MODELS[i % 3],  # type: ignore[arg-type]
                model_version="bench",
                probability=round(chooser.random(), 4),
                band=band,  # type: ignore[arg-type]
                reasons=[
                    Reason(
                        feature="falls_reported_12m",
                        text="A fall was reported to adult social care this year",
                        contribution=1.2,
                        source_table="social_care.contacts",
                    )
                ],
                feature_hash="h",
                triggered_by=uuid.uuid4(),
                age_band=age_band,
                ward="Abbey",
            )
        )
    return scores


def fresh_engine(url: str | None, folder: Path) -> Engine:
    if url and url.startswith("postgresql"):
        import psycopg

        name = f"outreach_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = url.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(database_url(url, folder / uuid.uuid4().hex[:8], "outreach"))
    prepare_database(engine, dev=True)
    instrument_database(engine)
    return engine


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def figures(name: str, count: int, wall: float, cpu: float) -> dict[str, Any]:
    return {
        "path": name,
        "scores": count,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "scores_per_s": round(count / wall),
        "scores_per_cpu_s": round(count / cpu) if cpu else None,
    }


def direct(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    from outreach import handlers

    policy = load_policy()
    scores = make_scores(args.scores, args.seed)
    results = []
    if not args.batch_only:
        engine = fresh_engine(args.database_url, folder)
        wall, cpu = timed(lambda: [handlers.handle_score(engine, s, policy) for s in scores])
        results.append(figures("handle_score, one at a time", len(scores), wall, cpu))
    handle_scores = getattr(handlers, "handle_scores", None)
    if handle_scores is not None:
        engine = fresh_engine(args.database_url, folder)
        size = args.batch_size

        def batches() -> None:
            for start in range(0, len(scores), size):
                handle_scores(engine, scores[start : start + size], policy)

        wall, cpu = timed(batches)
        results.append(figures(f"handle_scores, batches of {size}", len(scores), wall, cpu))
    return results


def via_broker(args: argparse.Namespace, folder: Path) -> list[dict[str, Any]]:
    from outreach.entrypoints.consumers import scores_consumer
    from proactive.broker import EmbeddedBroker
    from shared.codec import encode, message_key
    from shared.kafka import ensure_topics, make_producer
    from shared.topics import RISK_SCORES

    policy = load_policy()
    scores = make_scores(args.scores, args.seed)
    tracer = __import__("opentelemetry.trace", fromlist=["trace"]).get_tracer("bench")

    async def run(bootstrap: str) -> dict[str, Any]:
        await ensure_topics(bootstrap)
        producer = make_producer(bootstrap)
        await producer.start()
        try:
            for score in scores:
                # A span per score, as scoring makes, so each record carries a traceparent.
                with tracer.start_as_current_span("score"):
                    await producer.send(RISK_SCORES.name, encode(score), key=message_key(score))
            await producer.flush()
        finally:
            await producer.stop()
        engine = fresh_engine(args.database_url, folder)
        counters = {"scores_seen": 0}
        stopping = asyncio.Event()
        ready = asyncio.Event()
        loop = scores_consumer(engine, bootstrap, policy, counters, asyncio.Event(), ready.set)
        task = asyncio.create_task(loop(stopping))
        await ready.wait()
        wall, cpu = time.perf_counter(), time.process_time()
        while counters["scores_seen"] < len(scores):
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        stopping.set()
        await task
        return figures("scores consumer, through the broker", len(scores), wall, cpu)

    with EmbeddedBroker() as broker:
        return [asyncio.run(run(broker.bootstrap))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scores", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", help="PostgreSQL server URL (a database is made)")
    parser.add_argument("--via-broker", action="store_true")
    parser.add_argument("--batch-only", action="store_true", help="skip the one-at-a-time path")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="outreach-bench-"))
    setup_tracing("outreach", folder, to_file=True)
    results = via_broker(args, folder) if args.via_broker else direct(args, folder)
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
