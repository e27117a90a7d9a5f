"""The naive baseline `proactive bench` measures scoring against: a plain Faust agent that
decodes each resident event and calls scikit-learn's `predict_proba` on one row per model,
per event — the way scoring is often first written. Run as its own process:

    python -m proactive.bench_baseline   (PROACTIVE_KAFKA_BOOTSTRAP, BENCH_WEB_PORT)

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


def main() -> None:
    bootstrap = os.environ.get("PROACTIVE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    port = int(os.environ.get("BENCH_WEB_PORT", "6066"))
    models = _models()
    app = faust.App(
        "proactive-bench-naive-baseline",
        broker=f"kafka://{bootstrap}",
        store="memory://",
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
    events = app.topic("resident.events.v1", value_type=bytes, value_serializer="raw")
    processed = {"events": 0}

    @app.agent(events)
    async def score(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            event = json.loads(value)
            row = np.zeros((1, FEATURES))
            for index, name in enumerate(NUMERIC_ATTRIBUTES):
                raw = event.get("attributes", {}).get(name)
                row[0, index] = float(raw) if isinstance(raw, int | float) else 0.0
            for model in models:
                model.predict_proba(row)
            processed["events"] += 1

    @app.page("/stats")
    async def stats(view: View, request: Request) -> Response:
        return view.json(processed)

    sys.argv = ["baseline", "worker", "--web-port", str(port), "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main()
