"""A generated Debezium history of a small synthetic borough — snapshot reads, creates,
updates, deletes with their tombstones, with and without the schema wrapper — sent
through the Debezium Server HTTP sink in an order that puts rows before the rows they
hang off: every change is taken, none refused, none left waiting."""

from __future__ import annotations

import random

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from ingest.adapters.store import ParkedChange, create_source_key
from ingest.app import create_app
from ingest.settings import IngestSettings
from proactive.borough import generate_borough
from proactive.debezium import debezium_records
from shared.outbox import OutboxEntry

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("with_schema", [False, True], ids=["no wrapper", "wrapper"])
def test_a_whole_generated_history_is_taken_even_out_of_order(tmp_path, with_schema):
    borough = generate_borough(0.002, seed=5)
    records = list(debezium_records(borough, with_schema=with_schema))
    values = [record.value for record in records]
    assert {r.op for r in records if r.value is not None} >= {"r", "c", "u", "d"}
    assert any(value is None for value in values)  # tombstones
    # Shuffle within windows: links (a rent account's tenancy, a delete's earlier row)
    # now often arrive after what needs them.
    draw = random.Random(1)
    shuffled = []
    for start in range(0, len(values), 50):
        window = values[start : start + 50]
        draw.shuffle(window)
        shuffled.extend(window)
    app = create_app(
        IngestSettings(
            data_dir=tmp_path,
            kafka_bootstrap="127.0.0.1:1",  # no broker needed: the outbox is the output
            cdc_from_kafka=False,
            rate_limit="100000/second",
        )
    )
    key = create_source_key(app.state.engine, "debezium-server")
    totals = {"accepted": 0, "rejected": 0, "ignored": 0}
    with TestClient(app) as client:
        for start in range(0, len(shuffled), 200):
            response = client.post(
                "/v1/cdc",
                json=shuffled[start : start + 200],
                headers={"Authorization": f"Bearer {key}"},
            )
            assert response.status_code == 202, response.text
            for name in totals:
                totals[name] += response.json()[name]
    changes = sum(1 for value in values if value is not None)
    assert totals["rejected"] == 0
    assert totals["ignored"] == len(values) - changes
    with Session(app.state.engine) as session:
        assert session.exec(select(func.count()).select_from(ParkedChange)).one() == 0
        published = session.exec(select(func.count()).select_from(OutboxEntry)).one()
    # Every change became an event (a redelivery would count once; here there is none).
    assert published == changes
