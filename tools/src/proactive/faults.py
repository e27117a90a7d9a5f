"""The whole-stack fault-injection run behind `proactive faults`.

It starts the embedded stack with ingest, outreach and notify on a private PostgreSQL
cluster (made for the run in a temporary folder, on a free port: the machine's own
PostgreSQL is never touched) and notify sending letters through GOV.UK Notify, here a
local fake that follows Notify's public API. A steady stream of synthetic source changes
goes through ingest's HTTP API while faults are injected one at a time: kill -9 and
restart of each service, a broker restart (the embedded broker forgets everything, so
ingest's outbox must replay it), PostgreSQL stopped and started, and Notify answering
500, then 429, then not answering in time.

After each fault the stream pauses, the pipeline is left to settle, and the run
reconciles from the services' own stores, their counters and the topics:
- every change ingest accepted was published, and is in scoring's state for its resident
  (or sits in a rejected or dead-letter store with its reason);
- no resident has two tasks (the policy allows one open task, and the run is far shorter
  than the cool-down);
- no task has two letters, and Notify took no letter twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from proactive.broker import EmbeddedBroker, free_port
from proactive.fake_notify import API_KEY, ServedFakeNotify
from proactive.simulate import approve_proposed, batches, every_record, send_changes
from proactive.stack import SERVICES, Ports, Stack
from scoring.domain.state import SEEN_ID_CHARS
from shared.inbound import SourceChange
from shared.settings import DEV_SERVICE_TOKEN
from shared.topics import (
    OUTREACH_TASKS,
    RESIDENT_EVENTS,
    RESIDENT_EVENTS_DEAD_LETTERS,
    RISK_SCORES,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASES = ("ingest", "outreach", "notify")


class FaultRunFailed(RuntimeError):
    pass


# --- A private PostgreSQL cluster -----------------------------------------------------------


class PrivatePostgres:
    """A throw-away cluster in its own folder on a free port, with trust authentication.

    initdb refuses to run as root, so as root every command runs as the `postgres` user,
    who is given the folder.
    """

    def __init__(self, root: Path, bin_dir: Path = PG_BIN) -> None:
        self.root = root
        self.data = root / "data"
        self.bin_dir = bin_dir
        self.port = free_port()
        self.log = root / "postgres.log"

    def _as_owner(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def _run(self, *command: str) -> None:
        subprocess.run(self._as_owner(*command), check=True, capture_output=True, timeout=120)

    def create(self) -> PrivatePostgres:
        if not (self.bin_dir / "initdb").exists():
            raise FaultRunFailed(f"PostgreSQL 15 is not installed ({self.bin_dir}/initdb)")
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "--username=postgres",
            "--no-sync",
        )
        self.start()
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            for name in DATABASES:
                connection.execute(f'CREATE DATABASE "{name}"')
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        with suppress(subprocess.CalledProcessError):
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def query(self, database: str, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(database)) as connection:
            return list(connection.execute(sql).fetchall())


# --- The steady stream ----------------------------------------------------------------------


@dataclass
class StreamCounts:
    batches_sent: int = 0
    events_sent: int = 0
    retries: int = 0
    tasks_approved: int = 0


class SteadyStream:
    """Sends batches to ingest at a steady rate from a thread, as far as its allowance goes,
    and approves proposed tasks as the simulated officer. A batch that fails (ingest down,
    its database away) is sent again until ingest answers: ingest treats a repeat of a
    change as a duplicate, so a batch whose answer was lost costs nothing."""

    def __init__(
        self,
        changes: list[SourceChange],
        ingest_url: str,
        outreach_url: str,
        api_key: str,
        rate: float,
        batch_size: int = 20,
    ) -> None:
        self.pending = list(batches(changes, batch_size))
        self.ingest_url, self.outreach_url = ingest_url, outreach_url
        self.api_key = api_key
        self.interval_s = batch_size / rate
        self.counts = StreamCounts()
        self.allowance = 0
        self.approving = True
        self.errors: Counter[str] = Counter()
        self._approved_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="steady-stream")

    @property
    def remaining(self) -> int:
        return sum(len(batch) for batch in self.pending)

    def allow(self, events: int) -> None:
        self.allowance = min(events, self.remaining)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def approve(self, client: httpx.Client) -> None:
        self._approved_at = time.monotonic()
        try:
            self.counts.tasks_approved += approve_proposed(
                client, self.outreach_url, DEV_SERVICE_TOKEN
            )
        except (httpx.HTTPError, ValueError) as error:
            self.errors[f"approve: {type(error).__name__}"] += 1

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                if self.allowance > 0 and self.pending:
                    try:
                        send_changes(client, self.ingest_url, self.api_key, self.pending[0])
                    except httpx.HTTPError as error:
                        self.counts.retries += 1
                        self.errors[f"send: {type(error).__name__}"] += 1
                    else:
                        batch = self.pending.pop(0)
                        self.allowance -= len(batch)
                        self.counts.batches_sent += 1
                        self.counts.events_sent += len(batch)
                if self.approving and time.monotonic() - self._approved_at >= 1.0:
                    self.approve(client)
                self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


# --- Faults ---------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    what: str
    inject: Callable[[], None]
    recover: Callable[[], None]
    hold_s: float
    # For an outage that only shows when something calls: held until it was met.
    felt: Callable[[], bool] | None = None


@dataclass
class Reconciliation:
    fault: str
    accepted: int = 0
    published: int = 0
    on_topic: int = 0
    scored: int = 0
    duplicates_at_scoring: int = 0
    rejected: int = 0
    parked: int = 0
    dead_lettered: int = 0
    lost: int = 0
    scores: int = 0
    tasks: int = 0
    tasks_approved: int = 0
    letters: int = 0
    letters_taken_by_notify: int = 0
    duplicate_tasks: int = 0
    duplicate_letters: int = 0
    approved_without_letter: int = 0
    seconds_to_recover: float = 0.0
    seconds_to_settle: float = 0.0
    on_topics: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.duplicate_tasks + self.duplicate_letters

    @property
    def clean(self) -> bool:
        return (
            self.lost == 0
            and self.duplicates == 0
            and self.approved_without_letter == 0
            and self.accepted == self.published
            and not self.problems
        )


class FaultRun:
    def __init__(
        self,
        work_dir: Path,
        *,
        quick: bool,
        seed: int = 11,
        progress: Callable[[str, float], None] | None = None,
        on_result: Callable[[Reconciliation], None] | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.quick = quick
        self.seed = seed
        self.events = 600 if quick else 1500
        self.rate = 100.0
        self.settle_timeout_s = 60.0 if quick else 90.0
        # How long every count must stay still before the pipeline counts as settled.
        self.quiet_s = 2.0 if quick else 3.0
        self.report = progress or (lambda _message, _share: None)
        self.on_result = on_result or (lambda _result: None)
        self.postgres = PrivatePostgres(Path(tempfile.mkdtemp(prefix="proactive-faults-pg-")))
        self.notify_api = ServedFakeNotify(stall_s=4.0)
        self.stack: Stack | None = None
        self.stream: SteadyStream | None = None
        self.results: list[Reconciliation] = []
        self.injected: list[tuple[str, str]] = []
        self.started = time.monotonic()

    # Set-up and tear-down.

    @contextmanager
    def running(self) -> Iterator[FaultRun]:
        try:
            self.report("Creating a private PostgreSQL cluster", 0.0)
            self.postgres.create()
            self.notify_api.start()
            self.report("Starting the broker and the four services", 0.0)
            self.stack = Stack(self.work_dir, Ports.free(), extra_env=self._service_env())
            self.stack.start(timeout_s=120)
            yield self
        finally:
            if self.stream is not None:
                self.stream.stop()
            if self.stack is not None:
                self.stack.stop()
            self.notify_api.stop()
            self.postgres.stop("immediate")
            shutil.rmtree(self.postgres.root, ignore_errors=True)

    def _service_env(self) -> dict[str, str]:
        return {
            "PROACTIVE_INGEST_DATABASE_URL": self.postgres.url("ingest"),
            "PROACTIVE_OUTREACH_DATABASE_URL": self.postgres.url("outreach"),
            "PROACTIVE_NOTIFY_DATABASE_URL": self.postgres.url("notify"),
            "PROACTIVE_LETTER_CHANNEL": "govuk-notify",
            "PROACTIVE_NOTIFY_BASE_URL": self.notify_api.url,
            "PROACTIVE_NOTIFY_API_KEY": API_KEY,
            # Short waits, so that an outage of a few seconds is felt and then ridden out.
            "PROACTIVE_NOTIFY_TIMEOUT_S": "2",
            "PROACTIVE_NOTIFY_ATTEMPTS": "3",
            "PROACTIVE_NOTIFY_BACKOFF_S": "0.5",
            "PROACTIVE_NOTIFY_BREAKER_RESET_S": "3",
            "PROACTIVE_NOTIFY_POLL_INTERVAL_S": "2",
            "PROACTIVE_SERVICE_TOKEN": DEV_SERVICE_TOKEN,
        }

    # The faults.

    def faults(self) -> list[Fault]:
        hold = 1.0 if self.quick else 3.0
        outage = 5.0 if self.quick else 12.0
        listed = [
            Fault(
                f"kill -9 {service}",
                f"SIGKILL to the {service} process mid-stream, then started again",
                lambda service=service: self._kill(service),  # type: ignore[misc]
                lambda service=service: self._restart(service),  # type: ignore[misc]
                hold,
            )
            for service in SERVICES
        ]
        listed += [
            Fault(
                "broker restart",
                "the embedded Tansu broker stopped (losing every record it held) and started again",
                self._stop_broker,
                self._start_broker,
                hold,
            ),
            Fault(
                "PostgreSQL stop and start",
                "the services' PostgreSQL stopped (fast shutdown) and started again",
                lambda: self.postgres.stop("fast"),
                self.postgres.start,
                hold * 2,
            ),
        ]
        for answer, what in (
            ("500", "every request answered 500 Internal server error"),
            ("429", "every request answered 429 RateLimitError"),
            ("timeout", "letters taken but every answer held back past notify's timeout"),
        ):
            listed.append(
                Fault(
                    f"Notify {answer}",
                    f"GOV.UK Notify (the fake): {what}, for {outage:.0f} s (longer if no request had met it yet)",
                    lambda answer=answer: setattr(self.notify_api.fake, "outage", answer),  # type: ignore[misc]
                    lambda: setattr(self.notify_api.fake, "outage", "none"),
                    outage,
                    lambda answer=answer: self.notify_api.fake.refused_by_outage[answer] > 0,  # type: ignore[misc]
                )
            )
        return listed

    def _kill(self, service: str) -> None:
        assert self.stack is not None
        process = self.stack.processes[service]
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def _restart(self, service: str) -> None:
        assert self.stack is not None
        self.stack.start_service(service)
        self._wait_ready([service])

    def _stop_broker(self) -> None:
        assert self.stack is not None and self.stack.broker is not None
        self.stack.broker.stop()

    def _start_broker(self) -> None:
        assert self.stack is not None
        self.stack.broker = EmbeddedBroker(
            self.stack.ports.broker, log_path=self.stack.logs_dir / "broker.log"
        ).start()

    def _wait_ready(self, services: list[str], timeout_s: float = 120.0) -> None:
        assert self.stack is not None
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2) as client:
            for service in services:
                while True:
                    with suppress(httpx.HTTPError):
                        if client.get(f"{self.stack.ports.url(service)}/readyz").status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise FaultRunFailed(
                            f"{service} was not ready {timeout_s:.0f}s after restart"
                        )
                    time.sleep(0.3)

    # The run.

    def run(self) -> list[Reconciliation]:
        from proactive.borough import demo_stream

        assert self.stack is not None
        changes = demo_stream(self.events, self.seed)
        run_tag = datetime.now(UTC).strftime("%H%M%S")
        for change in changes:
            change.source_event_id = f"faults-{run_tag}-{change.source_event_id}"
        faults = self.faults()
        key = self.stack.create_source_key("fault-injection")
        self.stream = SteadyStream(
            changes,
            self.stack.ports.url("ingest"),
            self.stack.ports.url("outreach"),
            key,
            self.rate,
        )
        per_phase = len(changes) // (len(faults) + 1)
        self.stream.start()
        self.report("steady stream, no fault yet", 0.0)
        self._stream(per_phase)
        self.results.append(self.settle_and_reconcile("none (baseline)"))
        self.on_result(self.results[-1])
        for number, fault in enumerate(faults, start=1):
            share = number / len(faults)
            self.stream.allow(per_phase if number < len(faults) else self.stream.remaining)
            budget = self.stream.allowance
            # Proposed tasks wait for the outage, so that their letters go out during it.
            self.stream.approving = not fault.name.startswith("Notify")
            # The fault lands mid-stream: a third of this phase's changes are in.
            self._wait_for(lambda budget=budget: self._sent_share(budget) >= 1 / 3)  # type: ignore[misc]
            self.report(f"{fault.name}: injected", share)
            injected_at = time.monotonic()
            fault.inject()
            self.injected.append((fault.name, fault.what))
            if not self.stream.approving:
                time.sleep(1.0)
                self.stream.approving = True
            time.sleep(fault.hold_s)
            if fault.felt is not None:
                self._wait_for(fault.felt, 45)
            self.report(f"{fault.name}: recovering", share)
            fault.recover()
            recovered_s = round(time.monotonic() - injected_at, 1)
            self._stream(0)
            self.report(f"{fault.name}: settling and reconciling", share)
            result = self.settle_and_reconcile(fault.name)
            result.seconds_to_recover = recovered_s
            self.results.append(result)
            self.on_result(result)
        self.stream.stop()
        return self.results

    def _sent_share(self, budget: int) -> float:
        assert self.stream is not None
        return 1.0 if budget <= 0 else 1 - self.stream.allowance / budget

    def _stream(self, events: int) -> None:
        """Let the stream send `events` more (0: finish the allowance), and wait for it."""
        assert self.stream is not None
        if events:
            self.stream.allow(events)
        if not self._wait_for(lambda: self.stream is not None and self.stream.allowance <= 0, 120):
            raise FaultRunFailed(
                "ingest took no changes for two minutes after a fault; "
                f"the stream's errors: {dict(self.stream.errors)}"
            )

    @staticmethod
    def _wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    # Settling and reconciling.

    def _stats(self, client: httpx.Client) -> dict[str, Any]:
        assert self.stack is not None
        return {
            service: client.get(f"{self.stack.ports.url(service)}/stats").json()
            for service in SERVICES
        }

    def _progress_marks(self, client: httpx.Client) -> tuple[Any, ...]:
        """The counts that move while work is still flowing (not letter statuses, which
        move on for as long as Notify is polled)."""
        stats = self._stats(client)
        marks = {
            "ingest": ("accepted", "published", "outbox_pending"),
            "scoring": ("events_consumed", "scores_emitted", "scores_pending"),
            "outreach": ("tasks_created", "tasks_approved", "outbox_pending"),
            "notify": ("tasks_seen", "letters_rendered", "deliveries_failed"),
        }
        return (
            tuple(stats[service].get(name) for service, names in marks.items() for name in names),
            self._letters_pending(),
        )

    def _letters_pending(self) -> int:
        return int(
            self.postgres.query("notify", "SELECT count(*) FROM letters WHERE status = 'pending'")[
                0
            ][0]
        )

    def settle_and_reconcile(self, fault: str) -> Reconciliation:
        """Wait until nothing moves, then reconcile; a shortfall is only called lost when it
        is still there at the deadline."""
        assert self.stack is not None and self.stream is not None
        started = time.monotonic()
        deadline = started + self.settle_timeout_s
        last: Any = None
        still_since = time.monotonic()
        result = Reconciliation(fault)
        with httpx.Client(timeout=5) as client:
            while True:
                self.stream.approve(client)
                try:
                    snapshot = self._progress_marks(client)
                except (httpx.HTTPError, ValueError, psycopg.Error):
                    snapshot = None
                if snapshot != last:
                    last, still_since = snapshot, time.monotonic()
                quiet = snapshot is not None and time.monotonic() - still_since >= self.quiet_s
                if quiet or time.monotonic() > deadline:
                    result = self.reconcile(fault, client)
                    if result.clean or time.monotonic() > deadline:
                        break
                time.sleep(0.5)
        result.seconds_to_settle = round(time.monotonic() - started, 1)
        return result

    def reconcile(self, fault: str, client: httpx.Client) -> Reconciliation:
        assert self.stack is not None
        result = Reconciliation(fault)
        pg = self.postgres
        accepted = pg.query(
            "ingest",
            "SELECT event_id, message_key, published_at IS NOT NULL FROM outboxentry "
            f"WHERE topic = '{RESIDENT_EVENTS.name}'",
        )
        result.accepted = len(accepted)
        marked_published = sum(1 for _, _, published in accepted if published)
        result.rejected = int(pg.query("ingest", "SELECT count(*) FROM rejection")[0][0])
        result.parked = int(pg.query("ingest", "SELECT count(*) FROM parkedchange")[0][0])
        topics = asyncio.run(read_topics(f"127.0.0.1:{self.stack.ports.broker}"))
        on_topic = {json.loads(value)["event_id"] for value in topics.get(RESIDENT_EVENTS.name, [])}
        result.on_topic = len(on_topic)
        # Published means on the topic now: a broker that forgot records must have had them
        # published again from the outbox.
        result.published = len(on_topic & {event_id for event_id, _, _ in accepted})
        if marked_published < result.accepted:
            result.problems.append(
                f"{result.accepted - marked_published} accepted changes still in ingest's outbox"
            )
        result.on_topics = {topic: len(values) for topic, values in sorted(topics.items())}
        result.dead_lettered = len(topics.get(RESIDENT_EVENTS_DEAD_LETTERS.name, []))
        scores = [json.loads(value) for value in topics.get(RISK_SCORES.name, [])]
        result.scores = len({score["event_id"] for score in scores})
        known = {row[0] for row in pg.query("outreach", "SELECT resident_key FROM scoredresident")}
        unseen = {score["resident_key"] for score in scores} - known
        if unseen:
            result.problems.append(
                f"{len(unseen)} residents with scores on {RISK_SCORES.name} that outreach never saw"
            )
        # Scoring: every accepted change is in its resident's state (the ids it has seen).
        by_resident: dict[str, set[str]] = {}
        for event_id, resident_key, _ in accepted:
            by_resident.setdefault(resident_key, set()).add(event_id)
        headers = {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}
        scoring = self.stack.ports.url("scoring")
        missing = 0
        for resident_key, event_ids in by_resident.items():
            try:
                answer = client.get(f"{scoring}/residents/{resident_key}", headers=headers)
            except httpx.HTTPError:
                missing += len(event_ids)
                continue
            state = answer.json() if answer.status_code == 200 else {}
            if state.get("opted_out"):
                continue
            # Scoring remembers recent event ids by a prefix, and each row's latest version
            # by its whole id: an event is in the state if either holds it.
            held = {event_id[:SEEN_ID_CHARS] for event_id in state.get("seen", [])}
            held |= {row[1][:SEEN_ID_CHARS] for row in state.get("rows", {}).values()}
            missing += sum(1 for event_id in event_ids if event_id[:SEEN_ID_CHARS] not in held)
        counters = client.get(f"{scoring}/stats").json()
        result.duplicates_at_scoring = int(counters.get("duplicates_ignored", 0))
        result.scored = result.accepted - missing
        result.lost = missing - result.dead_lettered if missing > result.dead_lettered else 0
        if on_topic - {event_id for event_id, _, _ in accepted}:
            result.problems.append("records on resident.events.v1 that ingest never accepted")
        # Outreach: one task per resident; every approved task has exactly one letter.
        tasks = pg.query("outreach", "SELECT task_id, resident_key, approved_by FROM task")
        result.tasks = len(tasks)
        per_resident = Counter(resident_key for _, resident_key, _ in tasks)
        result.duplicate_tasks = sum(n - 1 for n in per_resident.values() if n > 1)
        approved = {str(task_id) for task_id, _, approved_by in tasks if approved_by}
        result.tasks_approved = len(approved)
        letters = pg.query("notify", "SELECT task_id, reference FROM letters")
        result.letters = len(letters)
        letters_per_task = Counter(str(task_id) for task_id, _ in letters)
        result.duplicate_letters = sum(n - 1 for n in letters_per_task.values() if n > 1)
        result.approved_without_letter = len(approved - set(letters_per_task))
        taken = self.notify_api.fake.posts_by_reference
        result.letters_taken_by_notify = sum(taken.values())
        result.duplicate_letters += sum(n - 1 for n in taken.values() if n > 1)
        created = [
            json.loads(value)
            for value in topics.get(OUTREACH_TASKS.name, [])
            if b'"TaskCreated"' in value
        ]
        unknown = {str(event["task_id"]) for event in created} - {str(t) for t, _, _ in tasks}
        if unknown:
            result.problems.append(f"{len(unknown)} TaskCreated events for tasks outreach lacks")
        return result

    # What gets written down.

    def summary(self) -> dict[str, Any]:
        last = self.results[-1] if self.results else Reconciliation("none")
        return {
            "faults_injected": len(self.injected),
            "accepted": last.accepted,
            "published": last.published,
            "scored": last.scored,
            "dead_lettered": last.dead_lettered,
            "rejected": last.rejected,
            "lost": max((r.lost for r in self.results), default=0),
            "duplicates": max((r.duplicates for r in self.results), default=0),
            "approved_without_letter": max(
                (r.approved_without_letter for r in self.results), default=0
            ),
            "scores": last.scores,
            "tasks": last.tasks,
            "tasks_approved": last.tasks_approved,
            "letters": last.letters,
            "letters_taken_by_notify": last.letters_taken_by_notify,
            "notify_outage_answers": dict(self.notify_api.fake.refused_by_outage),
            "stream_retries": self.stream.counts.retries if self.stream else 0,
            "on_topics": last.on_topics,
            "clean": all(r.clean for r in self.results),
            "elapsed_s": round(time.monotonic() - self.started, 1),
        }


async def read_topics(bootstrap: str) -> dict[str, list[bytes]]:
    """Every record the broker holds now, by topic."""
    found: dict[str, list[bytes]] = {}
    async for record in every_record(bootstrap):
        found.setdefault(record.topic, []).append(record.value or b"")
    return found


def machine() -> str:
    cores = os.cpu_count() or 0
    memory = ""
    with suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f", {kb / 1024 / 1024:.1f} GB memory"
    return f"{platform.system()} {platform.release()}, Python {platform.python_version()}, {cores} cores{memory}"
