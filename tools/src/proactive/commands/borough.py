"""`proactive borough` (make the synthetic borough, check its base rates) and `proactive
simulate` (send its history to ingest's API, or to the Kafka CDC topics as Debezium would).

Both are plain functions with typer annotations, so `proactive.cli` registers them with
`app.command()(borough)` and `app.command()(simulate)`, and tests can call the sending
functions directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from proactive.borough import (
    DEFAULT_SEED,
    PEOPLE,
    TARGETS,
    Borough,
    generate_borough,
    source_changes,
)
from proactive.debezium import DEFAULT_PREFIX, CdcRecord, debezium_records, topics
from shared.inbound import SourceChange

console = Console(stderr=True)
TOLERANCE = 0.10  # base rates must be within ±10% (relative) of FACTS.md
NATIVE_EVENTS_PER_PERSON = 2.0  # about how many native events the borough makes per person


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def make_borough(scale: float, seed: int, *, show_progress: bool = True) -> Borough:
    """Generate the borough, with a progress bar on stderr when asked."""
    if not show_progress:
        return generate_borough(scale, seed)
    with _progress() as progress:
        task = progress.add_task("Writing the borough's history", total=None)
        return generate_borough(
            scale,
            seed,
            advance=lambda done, total: progress.update(task, completed=done, total=total),
        )


def within_tolerance(stats: dict[str, Any]) -> dict[str, bool]:
    """Whether each base rate is within ±10% (relative) of its FACTS.md figure."""
    return {
        name: abs(float(stats[name]) - target) <= TOLERANCE * target
        for name, target in TARGETS.items()
    }


def borough(
    scale: Annotated[
        float, typer.Option(help="Share of the borough: 1.0 = 218,900 people, 73,900 households")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Borough seed")] = DEFAULT_SEED,
    stats: Annotated[
        bool, typer.Option("--stats", help="Show the base rates against FACTS.md")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the base rates as one JSON object last")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Also write every native source event to this file, one JSON a line"),
    ] = None,
) -> None:
    """Make the synthetic borough and show how its base rates compare with FACTS.md."""
    started = time.monotonic()
    made = make_borough(scale, seed)
    figures = made.stats()
    if out is not None:
        with out.open("w", encoding="utf-8") as file:
            for change in source_changes(made):
                file.write(change.model_dump_json() + "\n")
        console.print(f"Native source events written to {out}")
    if stats or not as_json:
        ok = within_tolerance(figures)
        table = Table(title=f"Synthetic borough, scale {scale} (seed {seed})")
        for column in ("measure", "borough", "FACTS.md", "within ±10%"):
            table.add_column(column)
        for name, target in TARGETS.items():
            table.add_row(
                name, f"{figures[name]:g}", f"{target:.4g}", "yes" if ok[name] else "[red]no[/red]"
            )
        for name in ("people", "households", "adults_in_resident_index", "wards"):
            table.add_row(name, f"{figures[name]:,}", "", "")
        console.print(table)
        console.print(f"Made in {time.monotonic() - started:.1f} s.")
    if as_json:
        print(json.dumps(figures))


class Target(StrEnum):
    http = "http"
    kafka = "kafka"


@dataclass
class SimulationResult:
    target: str
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    tombstones: int = 0
    available: int = 0
    seconds: float = 0.0


def paced(
    items: Sequence[Any],
    rate: float,
    duration: float,
    send: Callable[[Sequence[Any]], None],
    *,
    max_batch: int = 1000,
    tick: float = 0.25,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Send `items` in order at about `rate` a second for at most `duration` seconds, in
    batches of whatever is due each tick; returns how many were sent."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    started = clock()
    sent = 0
    limit = min(len(items), max(1, int(rate * duration)))
    while sent < limit:
        elapsed = clock() - started
        due = min(limit, max(1, int(rate * (elapsed + tick))))
        while sent < due:
            batch = items[sent : min(due, sent + max_batch)]
            send(batch)
            sent += len(batch)
        if elapsed >= duration:
            break
        if sent < limit:
            sleep(tick)
    return sent


def send_native(
    changes: Sequence[SourceChange],
    ingest_url: str,
    api_key: str,
    rate: float,
    duration: float,
    *,
    client: httpx.Client | None = None,
) -> SimulationResult:
    """POST native events to ingest's `/v1/events`, paced; a refused batch is counted."""
    result = SimulationResult(target="http", available=len(changes))
    own = client is None
    http = client or httpx.Client(timeout=60)
    started = time.monotonic()

    def send(batch: Sequence[SourceChange]) -> None:
        body = {"events": [c.model_dump(mode="json") for c in batch]}
        response = http.post(
            f"{ingest_url.rstrip('/')}/v1/events",
            json=body,
            headers={"Authorization": f"Bearer {api_key}"},
        )
        result.sent += len(batch)
        if response.status_code == 202:
            outcome = response.json()
            result.accepted += int(outcome.get("accepted", 0)) + int(outcome.get("parked", 0))
            result.duplicates += int(outcome.get("duplicates", 0))
        elif response.status_code == 422:
            result.rejected += len(batch)
        else:
            response.raise_for_status()

    try:
        paced(changes, rate, duration, send)
    finally:
        if own:
            http.close()
    result.seconds = round(time.monotonic() - started, 1)
    return result


async def send_debezium(
    records: Sequence[CdcRecord],
    bootstrap: str,
    rate: float,
    duration: float,
    *,
    prefix: str = DEFAULT_PREFIX,
) -> SimulationResult:
    """Write Debezium records to the CDC topics (created first if missing), paced."""
    from aiokafka import AIOKafkaProducer

    from shared.kafka import ensure_topics
    from shared.topics import Topic

    # One partition per table keeps each table's changes in commit order, as Debezium's
    # default topic creation does.
    await ensure_topics(bootstrap, [Topic(name, 1) for name in topics(prefix)])
    result = SimulationResult(target="kafka", available=len(records))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        limit = min(len(records), max(1, int(rate * duration)))
        while result.sent < limit:
            elapsed = loop.time() - started
            due = min(limit, max(1, int(rate * (elapsed + 0.25))))
            pending = []
            for record in records[result.sent : due]:
                pending.append(
                    await producer.send(record.topic, record.value_bytes(), key=record.key_bytes())
                )
                result.tombstones += record.value is None
            await asyncio.gather(*pending)
            result.sent = due
            if elapsed >= duration:
                break
            if result.sent < limit:
                await asyncio.sleep(0.25)
    finally:
        await producer.stop()
    result.accepted = result.sent  # the broker acknowledged every one
    result.seconds = round(loop.time() - started, 1)
    return result


def scale_for(events: float) -> float:
    """A borough just big enough to hold `events` native events (at least 1%)."""
    return min(1.0, max(0.01, 1.2 * events / (NATIVE_EVENTS_PER_PERSON * PEOPLE)))


def simulate(
    rate: Annotated[float, typer.Option(help="Events a second")] = 40.0,
    duration: Annotated[float, typer.Option(help="Seconds to run for")] = 60.0,
    to: Annotated[
        Target, typer.Option(help="`http`: ingest's API; `kafka`: Debezium records on CDC topics")
    ] = Target.http,
    ingest_url: Annotated[
        str | None, typer.Option(help="ingest's base URL (default: from PROACTIVE_INGEST_PORT)")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="PROACTIVE_SIMULATOR_API_KEY",
            help="A source API key (`proactive keys create --source simulator`)",
        ),
    ] = None,
    bootstrap: Annotated[
        str | None, typer.Option(help="Kafka bootstrap (default: PROACTIVE_KAFKA_BOOTSTRAP)")
    ] = None,
    prefix: Annotated[str, typer.Option(help="CDC topic prefix: <prefix>.<schema>.<table>")] = (
        DEFAULT_PREFIX
    ),
    seed: Annotated[int, typer.Option(help="Borough seed")] = DEFAULT_SEED,
    scale: Annotated[
        float | None, typer.Option(help="Borough scale (default: just big enough)")
    ] = None,
    with_schema: Annotated[
        bool,
        typer.Option(
            "--with-schema", help="Kafka: wrap keys and values as schemas.enable=true does"
        ),
    ] = False,
) -> None:
    """Send the synthetic borough's history, in time order, at a steady rate."""
    made = make_borough(scale if scale is not None else scale_for(rate * duration), seed)
    if to is Target.http:
        if not api_key:
            console.print(
                "[red]An API key is needed:[/red] create one with "
                "`proactive keys create --source simulator` and pass it with --api-key "
                "(or PROACTIVE_SIMULATOR_API_KEY)."
            )
            raise typer.Exit(2)
        url = ingest_url or _default_ingest_url()
        changes = source_changes(made)
        console.print(
            f"Sending up to {min(len(changes), int(rate * duration))} native events to {url}"
        )
        result = send_native(changes, url, api_key, rate, duration)
    else:
        from shared.settings import CommonSettings

        servers = bootstrap or CommonSettings().kafka_bootstrap
        records = list(debezium_records(made, prefix=prefix, with_schema=with_schema))
        console.print(
            f"Writing up to {min(len(records), int(rate * duration))} Debezium records to {servers}"
        )
        result = asyncio.run(send_debezium(records, servers, rate, duration, prefix=prefix))
    if result.sent < int(rate * duration):
        console.print(
            f"The borough's history ran out after {result.sent} events; use a larger --scale "
            "for a longer run."
        )
    print(json.dumps(asdict(result)))


def _default_ingest_url() -> str:
    return f"http://127.0.0.1:{int(os.environ.get('PROACTIVE_INGEST_PORT', 8001))}"
