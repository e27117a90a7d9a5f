"""The borough's history as Debezium change events, as the data contract and its samples
describe them."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from proactive.borough import generate_borough, ordered_rows
from proactive.debezium import (
    TABLES,
    debezium_records,
    native_row,
    topics,
)
from shared.inbound import RECORD_KEYS

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "debezium-samples"


@pytest.fixture(scope="module")
def borough():
    return generate_borough(0.01, seed=12)


@pytest.fixture(scope="module")
def records(borough):
    return list(debezium_records(borough))


def _sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


@pytest.mark.unit
def test_envelopes_have_the_samples_fields_and_source_block(records) -> None:
    sample = _sample("rent_account_update.json")
    for record in records:
        if record.value is None:
            continue
        assert set(record.value) == set(sample)
        assert set(record.value["source"]) == set(sample["source"])
        source = record.value["source"]
        assert (source["schema"], source["table"]) == tuple(record.table.split("."))
        assert record.topic == f"council.{record.table}"
        assert isinstance(source["lsn"], int) and isinstance(source["ts_ms"], int)
        assert record.value["ts_ms"] >= source["ts_ms"]


@pytest.mark.unit
def test_the_snapshot_comes_first_then_creates_updates_and_deletes(records) -> None:
    ops = [r.op for r in records]
    first_change = next(i for i, op in enumerate(ops) if op != "r")
    assert first_change > 0
    assert "r" not in ops[first_change:]
    assert Counter(ops[first_change:]).keys() >= {"c", "u", "d", None}
    flags = [r.value["source"]["snapshot"] for r in records[:first_change]]
    assert flags[0] == "first" and flags[-1] == "last" and set(flags[1:-1]) == {"true"}
    assert {r.value["source"]["snapshot"] for r in records[first_change:] if r.value} == {"false"}


@pytest.mark.unit
def test_every_delete_is_followed_by_a_tombstone_with_the_same_key(records) -> None:
    deletes = [i for i, r in enumerate(records) if r.op == "d"]
    assert deletes
    for i in deletes:
        delete, tombstone = records[i], records[i + 1]
        assert delete.value["after"] is None
        assert delete.value["before"] == delete.key
        assert tombstone.value is None and tombstone.value_bytes() is None
        assert (tombstone.topic, tombstone.key) == (delete.topic, delete.key)
    assert sum(r.value is None for r in records) == len(deletes)


@pytest.mark.unit
def test_an_update_carries_only_the_key_in_before(records) -> None:
    updates = [r for r in records if r.op == "u"]
    assert updates
    for record in updates:
        key_column = RECORD_KEYS[record.table]
        assert record.value["before"] == {key_column: record.value["after"][key_column]}
        assert record.key == record.value["before"]


@pytest.mark.unit
def test_numerics_are_strings_dates_epoch_days_and_timestamps_epoch_microseconds(
    records,
) -> None:
    rent = next(r for r in records if r.table == "housing.rent_accounts" and r.op == "u")
    after = rent.value["after"]
    assert isinstance(after["weeks_in_arrears"], str) and "." in after["weeks_in_arrears"]
    assert isinstance(after["last_payment_date"], int)
    assert 19_000 < after["last_payment_date"] < 21_000  # 2022-2027 in days since 1970
    callout = next(r for r in records if r.table == "health.ambulance_callouts")
    micros = callout.value["after"]["incident_at"]
    assert isinstance(micros, int) and 1.6e15 < micros < 1.8e15
    resident = next(r for r in records if r.table == "people.residents")
    assert isinstance(resident.value["after"]["date_of_birth"], int)
    assert isinstance(resident.value["after"]["lives_alone"], bool)


@pytest.mark.unit
def test_every_change_turns_back_into_the_native_row_it_came_from(borough, records) -> None:
    native = {}
    for row in ordered_rows(borough.residents):
        if row.op == "upsert":
            native.setdefault((row.table, str(row.record[RECORD_KEYS[row.table]])), []).append(
                row.record
            )
    for record in records:
        if record.op in ("c", "u", "r"):
            after = record.value["after"]
            back = native_row(record.table, after)
            versions = native[(record.table, str(after[RECORD_KEYS[record.table]]))]
            expected = [
                {**v, **{c.name: v.get(c.name) for c in TABLES[record.table]}} for v in versions
            ]
            assert back in expected


@pytest.mark.unit
def test_the_same_borough_gives_the_same_bytes(borough) -> None:
    first = [(r.topic, r.key_bytes(), r.value_bytes()) for r in debezium_records(borough)]
    again = [
        (r.topic, r.key_bytes(), r.value_bytes())
        for r in debezium_records(generate_borough(0.01, seed=12))
    ]
    assert first == again


@pytest.mark.unit
def test_with_the_schema_wrapper_the_value_matches_the_samples_schema(borough) -> None:
    sample = _sample("ambulance_callout_create_with_schema.json")
    wrapped = list(debezium_records(borough, with_schema=True))
    plain = list(debezium_records(borough))
    callout = next(r for r in wrapped if r.table == "health.ambulance_callouts" and r.op == "c")
    assert set(callout.value) == {"schema", "payload"}
    ours, theirs = callout.value["schema"], sample["schema"]
    assert ours["name"] == theirs["name"] and ours["type"] == "struct"
    assert [f["field"] for f in ours["fields"]] == [f["field"] for f in theirs["fields"]]
    assert ours["fields"][1]["fields"] == theirs["fields"][1]["fields"]  # the `after` columns
    assert set(callout.value["payload"]) == set(sample["payload"])
    assert set(callout.key) == {"schema", "payload"}
    assert [r.value["payload"] if r.value else None for r in wrapped] == [r.value for r in plain]


@pytest.mark.unit
def test_snapshot_reads_hold_each_row_as_it_stood_at_the_snapshot(borough, records) -> None:
    reads = {(r.table, json.dumps(r.key)) for r in records if r.op == "r"}
    assert len(reads) == sum(r.op == "r" for r in records)  # each row read once
    created_later = [r for r in records if r.op == "c"]
    assert not any((r.table, json.dumps(r.key)) in reads for r in created_later)


@pytest.mark.unit
def test_there_is_a_topic_for_every_source_table() -> None:
    assert topics() == [f"council.{table}" for table in RECORD_KEYS]
    assert topics("test")[0] == "test.people.residents"


@pytest.mark.integration
def test_records_sent_to_kafka_arrive_keyed_on_their_cdc_topics(kafka_bootstrap) -> None:
    from proactive.commands.borough import send_debezium

    small = generate_borough(0.002, seed=4)
    records = list(debezium_records(small, prefix="simtest"))
    result = asyncio.run(
        send_debezium(records, kafka_bootstrap, rate=100_000, duration=5, prefix="simtest")
    )
    assert result.sent == len(records)
    topic = "simtest.people.residents"
    expected = [r for r in records if r.topic == topic]
    assert expected
    found = asyncio.run(_read_all(kafka_bootstrap, topic, len(expected)))
    assert [(m.key, m.value) for m in found] == [(r.key_bytes(), r.value_bytes()) for r in expected]


async def _read_all(bootstrap: str, topic: str, want: int) -> list:
    """Read a topic from the start without a consumer group (no join wait)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the metadata
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(found) < want and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(batch)
        return found
    finally:
        await consumer.stop()
