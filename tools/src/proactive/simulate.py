"""The demo's two simulated actors: a council system sending changes through ingest's API,
and an officer who approves proposed tasks through outreach's API.

The simulated officer exists only in `proactive up` and `proactive demo`: its approvals
are recorded as `simulated-officer` in the audit log, and production has no such actor.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.inbound import SourceChange

SIMULATED_OFFICER = "simulated-officer"


def batches(changes: Sequence[SourceChange], size: int) -> Iterator[Sequence[SourceChange]]:
    for start in range(0, len(changes), size):
        yield changes[start : start + size]


@dataclass
class SendResult:
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0


def send_changes(
    client: httpx.Client, ingest_url: str, api_key: str, changes: Iterable[SourceChange]
) -> SendResult:
    """Post one batch; a refused batch counts as rejected (ingest keeps the reasons)."""
    batch = list(changes)
    body = {"events": [c.model_dump(mode="json") for c in batch]}
    response = client.post(
        f"{ingest_url}/v1/events", json=body, headers={"Authorization": f"Bearer {api_key}"}
    )
    result = SendResult(sent=len(batch))
    if response.status_code == 202:
        outcome = response.json()
        result.accepted = outcome["accepted"] + outcome["parked"]
        result.duplicates = outcome["duplicates"]
    elif response.status_code == 422:
        result.rejected = len(batch)
    else:
        response.raise_for_status()
    return result


def approve_proposed(client: httpx.Client, outreach_url: str, service_token: str) -> int:
    """Approve every proposed task, as the demo's simulated officer; returns how many."""
    headers = {"Authorization": f"Bearer {service_token}"}
    response = client.get(
        f"{outreach_url}/v1/tasks", params={"status": "proposed", "limit": 1000}, headers=headers
    )
    response.raise_for_status()
    approved = 0
    for task in response.json():
        result = client.post(
            f"{outreach_url}/v1/tasks/{task['task_id']}/approve",
            json={"officer": SIMULATED_OFFICER},
            headers=headers,
        )
        if result.status_code == 200:
            approved += 1
    return approved


def read_stats(client: httpx.Client, urls: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {service: client.get(f"{url}/stats").json() for service, url in urls.items()}


def pipeline_settled(stats: dict[str, dict[str, Any]]) -> bool:
    """Every stage has caught up with the one before it (counts, not end offsets: the
    embedded broker under-reports partition end offsets)."""
    ingest, scoring, outreach = stats["ingest"], stats["scoring"], stats["outreach"]
    notify = stats["notify"]
    return (
        ingest["published"] == ingest["accepted"]
        and scoring["events_consumed"] >= ingest["published"]
        and scoring.get("scores_pending", 0) == 0
        and outreach["scores_seen"] >= scoring["scores_emitted"]
        and outreach["outbox_pending"] == 0
        and notify["letters_rendered"]
        + notify["deliveries_failed"]
        + notify.get("letters_cancelled", 0)
        >= outreach["tasks_approved"]
    )


def wait_until_idle(
    client: httpx.Client,
    urls: dict[str, str],
    service_token: str,
    timeout_s: float,
    quiet_s: float = 2.0,
) -> dict[str, dict[str, Any]]:
    """Approve tasks as they appear until every stage has settled and stayed still."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, dict[str, Any]] | None = None
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        approved = approve_proposed(client, urls["outreach"], service_token)
        stats = read_stats(client, urls)
        if approved or stats != last:
            last, still_since = stats, time.monotonic()
        elif pipeline_settled(stats) and time.monotonic() - still_since >= quiet_s:
            return stats
        time.sleep(0.5)
    raise TimeoutError(f"the pipeline did not settle in {timeout_s:.0f}s; last counts: {last}")


async def every_record(
    bootstrap: str, topics: Iterable[str] | None = None
) -> AsyncIterator[ConsumerRecord]:
    """Every record of every topic on the broker (or of `topics`), from the beginning,
    until a second passes with nothing new (the end is judged by reading, not by the
    reported end offset, which the embedded broker under-reports)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = sorted(topics if topics is not None else await consumer.topics())
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5_000)
            if not batches:
                return
            for records in batches.values():
                for record in records:
                    yield record
    finally:
        await consumer.stop()


async def dump_topics(bootstrap: str, path: Path) -> int:
    """Every record of every topic on the broker, one JSON object a line; returns how many."""
    written = 0
    with path.open("w", encoding="utf-8") as out:
        async for record in every_record(bootstrap):
            line = {
                "topic": record.topic,
                "key": (record.key or b"").decode("utf-8", "replace"),
                "value": (record.value or b"").decode("utf-8", "replace"),
            }
            out.write(json.dumps(line) + "\n")
            written += 1
    return written
