"""What `proactive bench` measures scoring against, each a plain Faust agent over
`resident.events.v1` in its own consumer group (`BENCH_MODE`):

- `naive` (the baseline): decodes each resident event and calls scikit-learn's
  `predict_proba` on one row per model, per event — the way scoring is often first written;
- `noop`: takes each event and does nothing with it — Faust's own ceiling on this machine;
- `table`: writes one value per event to a changelog-backed table on the RocksDB store,
  with the producer settings scoring uses on the embedded broker — the ceiling of the
  design the issue prescribes (state updated per event, inside stream iteration) before
  any decoding, features, models, scores or traces.

Run as its own process:

    python -m proactive.bench_baseline   (PROACTIVE_KAFKA_BOOTSTRAP, BENCH_WEB_PORT,
                                          BENCH_MODE, PROACTIVE_DATA_DIR)

`/stats` reports how many events it has processed.
"""

from __future__ import annotations

import json
import os
import sys

import faust
import numpy as np
from faust.web import Request, Response, View
from sklearn.linear_model import LogisticRegression

from shared.topics import RESIDENT_EVENTS

FEATURES = 20
NUMERIC_ATTRIBUTES = (
    "age_years",
    "balance_pence",
    "weeks_in_arrears",
    "arrears_pence",
    "hours_per_week",
)


def _models() -> list[LogisticRegression]:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(2_000, FEATURES))
    models = []
    for weight in range(3):
        labels = (features[:, weight] + rng.normal(size=2_000) > 1.0).astype(int)
        models.append(LogisticRegression(max_iter=200).fit(features, labels))
    return models


MODES = ("naive", "noop", "table")
TABLE = "state"


def changelog_topic(mode: str) -> str:
    """Created up front, with the source topic's partitions (the Faust notes)."""
    return f"{app_id(mode)}-{TABLE}-changelog"


def app_id(mode: str) -> str:
    return "proactive-bench-naive-baseline" if mode == "naive" else f"proactive-bench-faust-{mode}"


def main() -> None:
    bootstrap = os.environ.get("PROACTIVE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    port = int(os.environ.get("BENCH_WEB_PORT", "6066"))
    mode = os.environ.get("BENCH_MODE", "naive")
    if mode not in MODES:
        raise SystemExit(f"BENCH_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    data_dir = os.environ.get("PROACTIVE_DATA_DIR", ".")
    models = _models() if mode == "naive" else []
    app = faust.App(
        app_id(mode),
        broker=f"kafka://{bootstrap}",
        store="rocksdb://" if mode == "table" else "memory://",
        datadir=os.path.join(data_dir, "faust"),
        topic_partitions=RESIDENT_EVENTS.partitions,
        # As scoring on the embedded broker: one changelog record per produce request.
        producer_linger_ms=0,
        producer_max_batch_size=1,
        autodiscover=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,
        broker_rebalance_timeout=5.0,
        broker_heartbeat_interval=1.0,
        web_port=port,
        web_bind="127.0.0.1",
        web_host="127.0.0.1",
    )
    events = app.topic(
        RESIDENT_EVENTS.name, key_type=bytes, value_type=bytes, value_serializer="raw"
    )
    processed = {"events": 0}
    table = (
        app.Table(TABLE, default=None, partitions=RESIDENT_EVENTS.partitions, value_type=bytes)
        if mode == "table"
        else {}
    )

    async def take_only(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream:
            processed["events"] += 1

    async def write_table(stream: faust.StreamT[bytes]) -> None:
        async for key, value in stream.items():
            table[key.decode()] = value[:1024]  # about a resident's state
            processed["events"] += 1

    async def naive(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            event = json.loads(value)
            row = np.zeros((1, FEATURES))
            for index, name in enumerate(NUMERIC_ATTRIBUTES):
                raw = event.get("attributes", {}).get(name)
                row[0, index] = float(raw) if isinstance(raw, int | float) else 0.0
            for model in models:
                model.predict_proba(row)
            processed["events"] += 1

    app.agent(events, name=mode)({"naive": naive, "noop": take_only, "table": write_table}[mode])

    @app.page("/stats")
    async def stats(view: View, request: Request) -> Response:
        return view.json(processed)

    # `info`, not `warn`: at `warn` Faust turns the root logger to DEBUG for its spinner, and
    # every debug call then costs a log record (scoring's worker avoids that the same way).
    sys.argv = ["baseline", "worker", "--web-port", str(port), "--loglevel", "info"]
    app.main()


if __name__ == "__main__":
    main()
