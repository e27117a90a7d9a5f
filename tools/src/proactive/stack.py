"""The embedded stack: the Tansu broker and the four services, each its own process.

Used by `proactive up` (fixed, well-known ports) and by `proactive demo` and the
end-to-end tests (free ports and a throw-away data folder, so they never clash with a
running `up`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from proactive.broker import EmbeddedBroker, free_port

SERVICES = ("ingest", "scoring", "outreach", "notify")


@dataclass
class Ports:
    broker: int = 9092
    ingest: int = 8001
    scoring: int = 8002
    outreach: int = 8003
    notify: int = 8004

    @classmethod
    def from_env(cls) -> Ports:
        bootstrap = os.environ.get("PROACTIVE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
        return cls(
            broker=int(bootstrap.rsplit(":", 1)[1]),
            ingest=int(os.environ.get("PROACTIVE_INGEST_PORT", 8001)),
            scoring=int(os.environ.get("PROACTIVE_SCORING_PORT", 8002)),
            outreach=int(os.environ.get("PROACTIVE_OUTREACH_PORT", 8003)),
            notify=int(os.environ.get("PROACTIVE_NOTIFY_PORT", 8004)),
        )

    @classmethod
    def free(cls) -> Ports:
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{getattr(self, service)}"


class StackDidNotStart(RuntimeError):
    pass


@dataclass
class Stack:
    """Start with `start()`, stop with `stop()`; or use it as a context manager."""

    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    extra_env: dict[str, str] = field(default_factory=dict)
    broker: EmbeddedBroker | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PROACTIVE_DATA_DIR": str(self.data_dir),
            "PROACTIVE_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.ports.broker}",
            "PROACTIVE_INGEST_PORT": str(self.ports.ingest),
            "PROACTIVE_SCORING_PORT": str(self.ports.scoring),
            "PROACTIVE_OUTREACH_PORT": str(self.ports.outreach),
            "PROACTIVE_NOTIFY_PORT": str(self.ports.notify),
            "PROACTIVE_INGEST_URL": self.ports.url("ingest"),
            "PYTHONUNBUFFERED": "1",
            # Tansu under-reports end offsets; Faust's recovery check would then fail falsely.
            "PROACTIVE_SCORING_RECOVERY_CONSISTENCY_CHECK": "false",
            "PROACTIVE_SCORING_CHANGELOG_BATCHING": "false",  # the Tansu end-offset defect
            # Tansu answers a fetch only when its wait is over, not when a record arrives:
            # the wait is the delay of every hop, so keep it short.
            "PROACTIVE_KAFKA_FETCH_MAX_WAIT_MS": "20",
            **self.extra_env,
        }

    @property
    def logs_dir(self) -> Path:
        path = self.data_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def start(self, timeout_s: float = 90.0) -> Stack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.broker = EmbeddedBroker(self.ports.broker, log_path=self.logs_dir / "broker.log")
        self.broker.start()
        # Topics first, with their partition counts, before any worker starts.
        from shared.kafka import ensure_topics

        asyncio.run(ensure_topics(self.broker.bootstrap))
        for service in SERVICES:
            self.start_service(service)
        try:
            self.wait_until_ready(timeout_s)
        except StackDidNotStart:
            self.stop()
            raise
        return self

    def start_service(self, service: str) -> None:
        log = open(self.logs_dir / f"{service}.log", "ab")  # noqa: SIM115
        self.processes[service] = subprocess.Popen(
            [sys.executable, "-m", service],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_until_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        waiting = set(SERVICES)
        with httpx.Client(timeout=1.0) as client:
            while waiting and time.monotonic() < deadline:
                for service in sorted(waiting):
                    process = self.processes[service]
                    if process.poll() is not None:
                        raise StackDidNotStart(
                            f"{service} exited with code {process.returncode}; "
                            f"see {self.logs_dir / (service + '.log')}"
                        )
                    try:
                        if client.get(f"{self.ports.url(service)}/readyz").status_code == 200:
                            waiting.discard(service)
                    except httpx.HTTPError:
                        pass
                time.sleep(0.3)
        if waiting:
            raise StackDidNotStart(
                f"not ready after {timeout_s:.0f}s: {', '.join(sorted(waiting))}; "
                f"see the logs in {self.logs_dir}"
            )

    def create_source_key(self, source: str) -> str:
        return self.command("ingest", "create-key", "--source", source).splitlines()[-1]

    def command(self, service: str, *arguments: str) -> str:
        """Run one of a service's own commands against this stack; returns what it printed."""
        result = subprocess.run(
            [sys.executable, "-m", service, *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    def stop(self, timeout_s: float = 20.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
