"""`proactive bench`: measured speed, each figure beside its baseline from the same run.

1. ingest: events/s accepted through the batch endpoint, beside raw aiokafka produce;
2. scoring: sustained events/s through the worker, beside a naive per-event scikit-learn
   Faust agent and the raw consume rate;
3. latency: a source event's arrival at ingest → its score, and → outreach's decision on
   it, at a fixed offered rate of 1,000 events/s through the whole stack;
4. a full re-score of 220,000 residents beside one batched ONNX Runtime call (the limit);
5. memory: the scoring worker's resident set size and state bytes per resident.

Everything runs on the embedded stack on free ports. Idleness and progress are judged
from the services' own counters, never from partition end offsets (the embedded broker
under-reports them).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from proactive.borough import demo_stream
from proactive.broker import free_port
from proactive.simulate import every_record
from proactive.stack import Ports, Stack
from shared.inbound import SourceChange
from shared.kafka import ensure_topics
from shared.telemetry import read_spans
from shared.topics import RESIDENT_EVENTS, RISK_SCORES, Topic

console = Console(stderr=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not happen within {timeout_s:.0f}s")


def _env(data_dir: Path, bootstrap: str, **ports: int) -> dict[str, str]:
    env = {
        **os.environ,
        "PROACTIVE_DATA_DIR": str(data_dir),
        "PROACTIVE_KAFKA_BOOTSTRAP": bootstrap,
        "PROACTIVE_LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    env.update({f"PROACTIVE_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    return env


def _start(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _get_json(url: str) -> dict[str, Any]:
    try:
        return dict(httpx.get(url, timeout=2).json())
    except (httpx.HTTPError, ValueError):
        return {}


def _answers_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def synthetic_changes(count: int, seed: int = 11) -> list[SourceChange]:
    """`count` native changes from the synthetic borough (deterministic by seed)."""
    return demo_stream(count, seed)


# 1. The broker alone, and ingest through its batch endpoint ----------------------------


async def raw_broker_rates(bootstrap: str, count: int, payload: bytes) -> tuple[float, float]:
    """aiokafka straight to the broker: produce rate, then consume rate, msgs/s."""
    topic = Topic(f"bench.raw.{secrets.token_hex(3)}", 4)
    await ensure_topics(bootstrap, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    started = time.perf_counter()
    futures = [await producer.send(topic.name, payload, key=str(i).encode()) for i in range(count)]
    await asyncio.gather(*futures)
    produce_rate = count / (time.perf_counter() - started)
    await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    seen, started = 0, time.perf_counter()
    while seen < count:
        batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
        seen += sum(len(records) for records in batches.values())
    consume_rate = count / (time.perf_counter() - started)
    await consumer.stop()
    return produce_rate, consume_rate


async def post_all(
    url: str, api_key: str, changes: list[SourceChange], batch: int, workers: int
) -> float:
    """Post every change in batches from `workers` concurrent clients; seconds taken."""
    bodies = [
        json.dumps({"events": [c.model_dump(mode="json") for c in changes[i : i + batch]]}).encode()
        for i in range(0, len(changes), batch)
    ]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {api_key}", "content-type": "application/json"}

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            response = await client.post(f"{url}/v1/events", content=body, headers=headers)
            response.raise_for_status()

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(workers)))
    return time.perf_counter() - started


def _cpu_seconds_with_children(pid: int) -> float:
    """CPU time of a process and of every process it started that is still running (ingest
    runs its outbox relay in a child process)."""
    total = _cpu_seconds(pid)
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                total += _cpu_seconds_with_children(int(child))
            except (FileNotFoundError, ProcessLookupError):
                continue  # it ended meanwhile
    return total


def _wait_published(url: str, timeout_s: float) -> None:
    """Until ingest's outbox has nothing left to publish (polled gently: /stats counts)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _get_json(f"{url}/stats").get("outbox_pending") == 0:
            return
        time.sleep(0.25)
    raise TimeoutError(f"ingest did not publish its outbox within {timeout_s:.0f}s")


def run_ingest_only(events: int, repeats: int, workers: int = 3) -> dict[str, Any]:
    """Ingest on its own (the broker, and ingest with its outbox relay publishing): the
    batch endpoint's rate, `repeats` times, each into a fresh database; the median too.

    Each run reports the rate at which the endpoint accepted the events (202 answered,
    the events durable in the outbox), the rate to the last of them published on the
    broker, and events per CPU-second of ingest's processes (the relay's included) over
    the whole run to the last publish, beside the raw aiokafka produce rate measured on
    the same broker just before. The whole-stack figure shares two cores with scoring,
    outreach and notify; this one says what ingest itself does, so that a change to it
    can be compared back to back.
    """
    from proactive.broker import EmbeddedBroker

    changes = synthetic_changes(events)
    work = Path(tempfile.mkdtemp(prefix="proactive-bench-ingest-"))
    rates: list[float] = []
    published_rates: list[float] = []
    per_cpu_s: list[float] = []
    raw_rates: list[float] = []
    with EmbeddedBroker(log_path=work / "broker.log") as broker:
        asyncio.run(ensure_topics(broker.bootstrap))
        for number in range(repeats):
            port = free_port()
            env = _env(work / f"run{number}", broker.bootstrap, ingest=port)
            env["PROACTIVE_RATE_LIMIT"] = "100000/second"
            env["PROACTIVE_CDC_FROM_KAFKA"] = "false"
            key_command = [sys.executable, "-m", "ingest", "create-key", "--source", "bench"]
            key = subprocess.run(
                key_command, env=env, capture_output=True, text=True, check=True
            ).stdout.splitlines()[-1]
            payload = b"x" * 450  # about the size of a resident event
            produce, _ = asyncio.run(raw_broker_rates(broker.bootstrap, 10_000, payload))
            raw_rates.append(produce)
            process = _start("ingest", env, work / f"ingest{number}.log")
            url = f"http://127.0.0.1:{port}"
            try:
                wait_until(functools.partial(_answers_ready, url), 60, "ingest to start")
                cpu_before = _cpu_seconds_with_children(process.pid)
                started = time.perf_counter()
                seconds = asyncio.run(post_all(url, key, changes, batch=1000, workers=workers))
                rates.append(len(changes) / seconds)
                _wait_published(url, 300)
                # A change whose link never came waits in ingest unpublished: count what was.
                published = int(_get_json(f"{url}/stats")["published"])
                published_rates.append(published / (time.perf_counter() - started))
                # Ingest's own CPU time tells less of the machine's other load than the wall
                # clock does.
                cpu = _cpu_seconds_with_children(process.pid) - cpu_before
                per_cpu_s.append(len(changes) / cpu)
                console.print(
                    f"ingest alone, run {number + 1}: accepted {rates[-1]:,.0f} events/s, "
                    f"published {published_rates[-1]:,.0f}/s, {per_cpu_s[-1]:,.0f} per "
                    f"CPU-second of ingest; raw aiokafka produce {produce:,.0f}/s"
                )
            finally:
                _stop(process)
    return {
        "ingest_alone_events_per_s": [round(rate) for rate in rates],
        "ingest_alone_median_per_s": round(percentile(rates, 0.5)),
        "ingest_alone_published_per_s": [round(rate) for rate in published_rates],
        "ingest_alone_median_published_per_s": round(percentile(published_rates, 0.5)),
        "ingest_alone_events": len(changes),
        "ingest_alone_per_cpu_s": [round(rate) for rate in per_cpu_s],
        "ingest_alone_median_per_cpu_s": round(percentile(per_cpu_s, 0.5)),
        "broker_produce_per_s": [round(rate) for rate in raw_rates],
        "broker_median_produce_per_s": round(percentile(raw_rates, 0.5)),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
    }


# 3. Latency through the whole stack ----------------------------------------------------


def _traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


async def offered_load(
    url: str, api_key: str, changes: list[SourceChange], rate: int, slice_s: float = 0.01
) -> dict[str, float]:
    """Send `rate` events a second in small batches (a steady stream: 10 events every 10 ms
    at 1,000 a second), each in its own trace; returns the send time of each trace."""
    per_slice = max(1, int(rate * slice_s))
    sent: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        for number, start in enumerate(range(0, len(changes), per_slice)):
            due = started + number * slice_s
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            trace_id, header = _traceparent()
            body = {
                "events": [c.model_dump(mode="json") for c in changes[start : start + per_slice]]
            }
            sent[trace_id] = time.time()
            response = await client.post(
                f"{url}/v1/events",
                json=body,
                headers={"Authorization": f"Bearer {api_key}", "traceparent": header},
            )
            response.raise_for_status()
    return sent


async def record_times(bootstrap: str, topic: str) -> dict[str, float]:
    """Event id → when the record was appended (its Kafka timestamp, epoch seconds)."""
    return {
        json.loads(record.value)["event_id"]: record.timestamp / 1000
        async for record in every_record(bootstrap, [topic])
    }


async def scoring_hop_ms(bootstrap: str, triggered: dict[str, float]) -> list[float]:
    """Scoring's own latency: from an event's append to resident.events.v1 to the append of
    the score it triggered to risk.scores.v1 (both Kafka timestamps, one clock)."""
    appended = await record_times(bootstrap, RESIDENT_EVENTS.name)
    return [
        (scored_at - appended[event_id]) * 1000
        for event_id, scored_at in triggered.items()
        if event_id in appended
    ]


async def score_times(
    bootstrap: str, wanted: set[str], timeout_s: float, triggered: dict[str, float] | None = None
) -> dict[str, list[float]]:
    """Epoch seconds at which each trace's scores were produced, from risk.scores.v1; and,
    into `triggered`, when the first score of each triggering event was appended."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    partitions = [TopicPartition(RISK_SCORES.name, p) for p in range(RISK_SCORES.partitions)]
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    found: dict[str, list[float]] = {}
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.5:
        batches = await consumer.getmany(timeout_ms=300)
        for records in batches.values():
            for record in records:
                quiet_since = time.monotonic()
                header = dict(record.headers).get("traceparent", b"").decode()
                trace_id = header.split("-")[1] if header.count("-") == 3 else ""
                if trace_id in wanted:
                    score = json.loads(record.value)
                    found.setdefault(trace_id, []).append(
                        datetime.fromisoformat(score["produced_at"]).timestamp()
                    )
                    if triggered is not None:
                        triggered.setdefault(score["triggered_by"], record.timestamp / 1000)
    await consumer.stop()
    return found


def decision_times(traces_dir: Path, wanted: set[str]) -> dict[str, list[float]]:
    """When outreach finished deciding on each score, from the local trace store."""
    found: dict[str, list[float]] = {}
    for span in read_spans(traces_dir):
        service = span["resource"]["attributes"].get("service.name")
        if service != "outreach" or span["name"] != f"{RISK_SCORES.name} process":
            continue
        trace_id = span["context"]["trace_id"].removeprefix("0x")
        if trace_id in wanted:
            end = datetime.fromisoformat(span["end_time"].replace("Z", "+00:00")).timestamp()
            found.setdefault(trace_id, []).append(end)
    return found


def latencies_ms(sent: dict[str, float], arrived: dict[str, list[float]]) -> list[float]:
    return [
        (moment - sent[trace_id]) * 1000
        for trace_id, moments in arrived.items()
        for moment in moments
    ]


# 2. Scoring beside its references ------------------------------------------------------


async def latest_value_bytes(bootstrap: str) -> int:
    """The mean size of each key's latest value in scoring's state changelog."""
    from scoring.app import STATE_CHANGELOG  # Faust's, imported only when measuring

    latest = {
        record.key: len(record.value or b"")
        async for record in every_record(bootstrap, [STATE_CHANGELOG.name])
    }
    return round(sum(latest.values()) / max(1, len(latest)))


def reference_rate(mode: str, count: int, bootstrap: str, work: Path) -> tuple[int, int]:
    """Events a second, and per CPU-second, of a reference agent over `count` events of
    resident.events.v1 (`proactive.bench_baseline`, each in its own consumer group)."""
    from proactive.bench_baseline import changelog_topic

    if mode == "table":
        changelog = Topic(changelog_topic(mode), RESIDENT_EVENTS.partitions, compacted=True)
        asyncio.run(ensure_topics(bootstrap, [changelog]))
    port = free_port()
    env = _env(work / mode, bootstrap)
    env.update({"BENCH_WEB_PORT": str(port), "BENCH_MODE": mode})
    (work / mode).mkdir(parents=True, exist_ok=True)
    agent = _start("proactive.bench_baseline", env, work / f"{mode}.log")
    url = f"http://127.0.0.1:{port}/stats"
    try:
        wait_until(lambda: _get_json(url).get("events", 0) > 0, 120, f"the {mode} agent to start")
        first, start_count = time.perf_counter(), _get_json(url)["events"]
        cpu_before = _cpu_seconds(agent.pid)
        wait_until(
            lambda: _get_json(url).get("events", 0) >= start_count + count,
            600,
            f"the {mode} agent to take its sample",
        )
        done = _get_json(url)["events"] - start_count
        seconds, cpu = time.perf_counter() - first, _cpu_seconds(agent.pid) - cpu_before
    finally:
        _stop(agent)
    return round(done / seconds), round(done / max(0.01, cpu))


# The run --------------------------------------------------------------------------------


def run(quick: bool) -> dict[str, Any]:
    """One embedded stack serves every measurement, in an order that keeps them apart."""
    sizes = {
        "raw": 10_000 if quick else 100_000,
        "ingest": 3_000 if quick else 50_000,
        "baseline": 800 if quick else 5_000,
        # Faust alone, and Faust with one table write per event: the design's ceilings.
        "reference": 5_000 if quick else 20_000,
        "latency_s": 3 if quick else 15,
        "rescore": 220_000,
    }
    results: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="proactive-bench-"))
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    )
    with progress:
        step = progress.add_task("Preparing synthetic events", total=7)
        changes = synthetic_changes(sizes["ingest"] + 1000 * sizes["latency_s"] + 1000)
        ingest_changes = changes[: sizes["ingest"]]
        latency_changes = changes[sizes["ingest"] :][: 1000 * sizes["latency_s"]]
        progress.advance(step)

        progress.update(step, description="Starting the embedded stack")
        stack = Stack(
            work / "stack",
            Ports.free(),
            extra_env={"PROACTIVE_LOG_LEVEL": "WARNING", "PROACTIVE_RATE_LIMIT": "100000/second"},
        )
        stack.start()
        bootstrap = f"127.0.0.1:{stack.ports.broker}"
        ingest_url, scoring_url = stack.ports.url("ingest"), stack.ports.url("scoring")
        try:
            progress.advance(step)
            progress.update(step, description="Broker alone: raw produce and consume")
            payload = b"x" * 450  # about the size of a resident event
            produce, consume = asyncio.run(raw_broker_rates(bootstrap, sizes["raw"], payload))
            results["broker_produce_per_s"] = round(produce)
            results["broker_consume_per_s"] = round(consume)
            progress.advance(step)

            progress.update(step, description="Ingest (batch endpoint), then scoring")
            key = stack.create_source_key("bench")
            # Scoring is measured on its own: outreach and notify are paused meanwhile, or
            # the figure would be the slowest stage's on a shared 2-core machine.
            downstream = [stack.processes[name] for name in ("outreach", "notify")]
            for process in downstream:
                process.send_signal(signal.SIGSTOP)
            consumed_before = _get_json(f"{scoring_url}/stats").get("events_consumed", 0)
            seconds = asyncio.run(post_all(ingest_url, key, ingest_changes, batch=1000, workers=3))
            results["ingest_events_per_s"] = round(len(ingest_changes) / seconds)
            results["ingest_events"] = len(ingest_changes)
            # Scoring's rate: from its first event of this batch to its last, by its counters.
            wait_until(
                lambda: (
                    _get_json(f"{scoring_url}/stats").get("events_consumed", 0) > consumed_before
                ),
                120,
                "scoring to start on the batch",
            )
            first = time.perf_counter()
            cpu_before = _cpu_seconds(stack.processes["scoring"].pid)
            started_at = _get_json(f"{scoring_url}/stats")["events_consumed"]
            # A change whose link never came (a rent account without its tenancy in this
            # sample) waits in ingest and is never published: count what was published.
            wait_until(
                lambda: _get_json(f"{ingest_url}/stats").get("outbox_pending") == 0,
                300,
                "ingest to publish the batch",
            )
            target = consumed_before + int(_get_json(f"{ingest_url}/stats")["published"])
            wait_until(
                lambda: _get_json(f"{scoring_url}/stats").get("events_consumed", 0) >= target,
                900,
                "scoring to consume the batch",
            )
            results["scoring_events_per_s"] = round(
                (target - started_at) / (time.perf_counter() - first)
            )
            # The same events per CPU-second of the worker: steadier than the rate on a
            # machine shared with the broker and ingest.
            results["scoring_events_per_cpu_s"] = round(
                (target - started_at)
                / max(0.01, _cpu_seconds(stack.processes["scoring"].pid) - cpu_before)
            )
            counters = _get_json(f"{scoring_url}/stats")
            residents = max(1, int(counters.get("residents", 1)))
            results["scoring_residents"] = residents
            results["scoring_rss_bytes"] = _rss_bytes(stack.processes["scoring"].pid)
            # The state itself: each resident's latest value in the state changelog.
            results["state_bytes_per_resident"] = asyncio.run(latest_value_bytes(bootstrap))
            # And what it takes on disk: the RocksDB folder (write-ahead log, versions not
            # yet compacted away) divided by residents.
            state_dir = work / "stack" / "scoring" / "faust"
            state_bytes = sum(f.stat().st_size for f in state_dir.rglob("*") if f.is_file())
            results["bytes_per_resident"] = round(state_bytes / residents)
            results["rss_bytes_per_resident"] = round(results["scoring_rss_bytes"] / residents)
            for process in downstream:
                process.send_signal(signal.SIGCONT)
            # Let outreach and notify catch up before latency is measured.
            wait_until(
                lambda: (
                    _get_json(f"{stack.ports.url('outreach')}/stats").get("scores_seen", 0)
                    >= _get_json(f"{scoring_url}/stats").get("scores_emitted", 0)
                ),
                # Outreach takes scores a poll at a time (up to 500 in one transaction,
                # over 1,000 a second on this machine), so the full run's 60,000 scores
                # take about a minute; the bound leaves room for a busy machine.
                600,
                "outreach to catch up",
            )
            progress.advance(step)

            progress.update(step, description="Latency at 1,000 events/s through the whole stack")
            sent = asyncio.run(offered_load(ingest_url, key, latency_changes, rate=1000))
            triggered: dict[str, float] = {}
            scored = asyncio.run(score_times(bootstrap, set(sent), 120, triggered))
            scoring_hop = asyncio.run(scoring_hop_ms(bootstrap, triggered))
            progress.advance(step)

            for mode, count, description in (
                ("naive", sizes["baseline"], "Naive baseline: scikit-learn per event in Faust"),
                ("noop", sizes["reference"], "Faust alone: events taken, nothing done"),
                ("table", sizes["reference"], "Faust with one state-table write per event"),
            ):
                progress.update(step, description=description)
                rate, per_cpu_s = reference_rate(mode, count, bootstrap, work)
                results[f"{mode}_faust_events_per_s"] = rate
                results[f"{mode}_faust_events_per_cpu_s"] = per_cpu_s
            results["baseline_scoring_events_per_s"] = results.pop("naive_faust_events_per_s")
            results["baseline_events_per_cpu_s"] = results.pop("naive_faust_events_per_cpu_s")
            progress.advance(step)
        finally:
            stack.stop()
        for label, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            results[f"scoring_latency_ms_{label}"] = round(percentile(scoring_hop, share), 1)
        to_score = latencies_ms(sent, scored)
        to_decision = latencies_ms(sent, decision_times(work / "stack" / "traces", set(sent)))
        for name, values in (("e2e_latency_ms", to_score), ("decision_latency_ms", to_decision)):
            for label, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                results[f"{name}_{label}"] = round(percentile(values, share), 1)
        results["latency_samples"] = len(to_score)

        progress.update(step, description="Full re-score of 220,000 residents")
        # In its own process, once the stack has stopped: it has the machine to itself.
        rescore = subprocess.run(
            [sys.executable, "-m", "scoring.rescore", "--bench", str(sizes["rescore"]), "--json"],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        output = rescore.stdout
        rescored = json.loads(output.strip().splitlines()[-1])
        results["rescore_220k_s"] = rescored["rescore_s"]
        results["single_onnx_call_220k_s"] = rescored["single_onnx_call_s"]
        progress.advance(step)
    results["scoring_vs_baseline"] = round(
        results["scoring_events_per_s"] / max(1, results["baseline_scoring_events_per_s"]), 1
    )
    results["scoring_vs_baseline_per_cpu_s"] = round(
        results["scoring_events_per_cpu_s"] / max(1, results["baseline_events_per_cpu_s"]), 1
    )
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mode": "quick" if quick else "full",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return results


def write_outputs(results: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """bench/results.json and a chart of each figure beside its baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    results_path = folder / "results.json"
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    pairs = [
        ("Ingest (events/s)", ["ingest", "raw produce"],
         [results["ingest_events_per_s"], results["broker_produce_per_s"]]),
        ("Scoring (events per CPU-second)",
         ["scoring", "naive\nbaseline", "Faust +\ntable write", "Faust\nalone"],
         [results["scoring_events_per_cpu_s"], results["baseline_events_per_cpu_s"],
          results["table_faust_events_per_cpu_s"], results["noop_faust_events_per_cpu_s"]]),
        ("Re-score 220k (s)", ["full re-score", "one ONNX call"],
         [results["rescore_220k_s"], results["single_onnx_call_220k_s"]]),
    ]  # fmt: skip
    for axis, (title, labels, values) in zip(axes, pairs, strict=True):
        colours = ["#1d70b8", "#b1b4b6", "#505a5f", "#0b0c0c"]
        bars = axis.bar(labels, values, color=colours[: len(values)])
        axis.set_title(title)
        axis.set_yscale("log")
        axis.bar_label(bars, labels=[f"{v:,.0f}" if v >= 10 else f"{v:.2f}" for v in values])
    machine = results["machine"]
    figure.suptitle(
        f"proactive bench ({machine['mode']}) on {machine['cpus']} cores, "
        f"Python {machine['python']}; at 1,000 events/s, scoring p50/p99 "
        f"{results['scoring_latency_ms_p50']}/{results['scoring_latency_ms_p99']} ms, "
        f"source change to score {results['e2e_latency_ms_p50']}/{results['e2e_latency_ms_p99']} ms"
    )
    figure.tight_layout()
    chart_path = folder / "results.png"
    figure.savefig(chart_path, dpi=100)
    plt.close(figure)
    return results_path, chart_path
