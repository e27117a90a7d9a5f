"""The `proactive` command: run the embedded stack, run a measured demo, make API keys,
retrain the models."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from proactive.broker import port_answers
from proactive.commands.borough import borough, simulate
from proactive.commands.faults import faults
from proactive.commands.transparency import transparency
from proactive.simulate import (
    SendResult,
    approve_proposed,
    batches,
    dump_topics,
    read_stats,
    send_changes,
    wait_until_idle,
)
from proactive.stack import SERVICES, Ports, Stack, StackDidNotStart
from proactive.traces import share_of_complete_traces
from shared.inbound import SourceChange
from shared.settings import CommonSettings

app = typer.Typer(help="Proactive Support: a council's prevention platform, on one machine.")
keys = typer.Typer(help="API keys for the council systems that send changes to ingest.")
app.add_typer(keys, name="keys")
app.command()(borough)
app.command()(faults)
app.command()(simulate)
app.command()(transparency)
console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _urls(ports: Ports) -> dict[str, str]:
    return {service: ports.url(service) for service in SERVICES}


@app.command()
def up(
    no_simulator: Annotated[
        bool, typer.Option("--no-simulator", help="Do not feed synthetic source events")
    ] = False,
    rate: Annotated[float, typer.Option(help="Synthetic events a second")] = 40.0,
    seed: Annotated[
        int | None, typer.Option(help="Borough seed (default: a new one each run)")
    ] = None,
) -> None:
    """Start the broker and the four services; Ctrl-C stops everything."""
    from proactive.borough import demo_stream

    settings = CommonSettings()
    ports = Ports.from_env()
    busy = [
        f"{name} {port}" for name, port in vars(ports).items() if port_answers("127.0.0.1", port)
    ]
    if busy:
        console.print(
            f"[red]These ports are in use: {', '.join(busy)}.[/red] Is `proactive up` already "
            "running? Stop it, or choose other ports with PROACTIVE_KAFKA_BOOTSTRAP and "
            "PROACTIVE_INGEST_PORT, PROACTIVE_SCORING_PORT, PROACTIVE_OUTREACH_PORT, PROACTIVE_NOTIFY_PORT."
        )
        raise typer.Exit(1)
    data_dir = settings.data_dir.resolve()
    stack = Stack(data_dir, ports)
    with console.status("Starting the broker and the four services…"):
        try:
            stack.start()
        except StackDidNotStart as error:
            console.print(f"[red]The stack did not start:[/red] {error}")
            raise typer.Exit(1) from error
    table = Table(title="Proactive Support is running", show_lines=False)
    table.add_column("what")
    table.add_column("where")
    table.add_row("broker (Kafka API)", f"127.0.0.1:{ports.broker}")
    for service in SERVICES:
        pages = "/healthz, /stats, /metrics" + ("" if service == "scoring" else ", /docs")
        table.add_row(service, f"{ports.url(service)}  ({pages})")
    table.add_row("officer service", f"{ports.url('outreach')}/officer/")
    table.add_row("residents' pages", f"{ports.url('outreach')}/how-we-use-your-information")
    table.add_row("letters (PDF)", str(data_dir / "notify" / "letters"))
    table.add_row("traces", str(data_dir / "traces"))
    table.add_row("logs", str(data_dir / "logs"))
    console.print(table)
    console.print(stack.command("outreach", "seed-users"))
    try:
        if no_simulator:
            console.print("No simulator: send events to ingest yourself. Ctrl-C stops everything.")
            while True:
                time.sleep(1)
        run_seed = seed if seed is not None else int(time.time()) % 100_000
        changes = demo_stream(5_000, run_seed)
        run_tag = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        for change in changes:
            # A new run must not look like a redelivery of the last run's events.
            change.source_event_id = f"{run_tag}-{change.source_event_id}"
        _simulate(stack, changes, rate, settings.service_token)
    except KeyboardInterrupt:
        console.print("Stopping…")
    finally:
        stack.stop()
        console.print("Stopped.")


def _simulate(stack: Stack, changes: list[SourceChange], rate: float, token: str) -> None:
    console.print(
        f"Simulator: {len(changes)} synthetic source events at about {rate:.0f}/s, and a "
        "simulated officer approving proposed tasks (labelled as simulated in the audit log). "
        "Ctrl-C stops everything."
    )
    key = stack.create_source_key("simulator")
    urls = _urls(stack.ports)
    batch_size = max(1, int(rate / 2))
    pending = list(batches(changes, batch_size))
    last_report = 0.0
    with httpx.Client(timeout=30) as client:
        while True:
            if pending:
                send_changes(client, urls["ingest"], key, pending.pop(0))
            approve_proposed(client, urls["outreach"], token)
            if time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                stats = read_stats(client, urls)
                console.print(
                    f"events accepted {stats['ingest']['accepted']:>6} · "
                    f"scores {stats['scoring']['scores_emitted']:>5} · "
                    f"tasks {stats['outreach']['tasks_created']:>4} · "
                    f"letters {stats['notify']['letters_rendered']:>4}"
                )
            time.sleep(0.5)


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="Synthetic source events to send")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last")] = False,
    seed: Annotated[int, typer.Option(help="Borough seed")] = 7,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline")] = 110.0,
    keep_topics: Annotated[
        bool, typer.Option("--keep-topics", help="Save every record of every topic to topics.jsonl")
    ] = False,
) -> None:
    """Run a whole embedded stack on free ports, send events, wait until idle, report."""
    from proactive.borough import demo_stream

    started = time.monotonic()
    data_dir = (
        CommonSettings().data_dir / "demos" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    ).resolve()
    settings = CommonSettings()
    stack = Stack(data_dir, Ports.free())
    result = SendResult()
    try:
        with console.status("Starting an embedded stack on free ports…"):
            stack.start()
        key = stack.create_source_key("simulator")
        changes = demo_stream(events, seed)
        urls = _urls(stack.ports)
        with _progress() as progress, httpx.Client(timeout=60) as client:
            sending = progress.add_task("Sending source events", total=len(changes))
            for batch in batches(changes, 250):
                sent = send_changes(client, urls["ingest"], key, batch)
                result.sent += sent.sent
                result.accepted += sent.accepted
                result.rejected += sent.rejected
                result.duplicates += sent.duplicates
                progress.advance(sending, len(batch))
            progress.add_task("Waiting for scoring, outreach and notify", total=None)
            stats = wait_until_idle(client, urls, settings.service_token, timeout)
        if keep_topics:
            # The embedded broker forgets everything when it stops: save what it held.
            asyncio.run(dump_topics(f"127.0.0.1:{stack.ports.broker}", data_dir / "topics.jsonl"))
    finally:
        stack.stop()
    summary = {
        "events_sent": result.sent,
        "events_accepted": result.accepted,
        "events_rejected": result.rejected,
        "scores_emitted": stats["scoring"]["scores_emitted"],
        "tasks_created": stats["outreach"]["tasks_created"],
        "tasks_approved": stats["outreach"]["tasks_approved"],
        "letters_rendered": stats["notify"]["letters_rendered"],
        "notifications_sent": stats["notify"]["notifications_sent"],
        "traces_complete": round(share_of_complete_traces(data_dir / "traces"), 4),
        "elapsed_s": round(time.monotonic() - started, 1),
        "data_dir": str(data_dir),
    }
    console.print(
        f"{summary['events_accepted']} of {summary['events_sent']} events accepted, "
        f"{summary['scores_emitted']} scores, {summary['tasks_created']} tasks, "
        f"{summary['letters_rendered']} letters in {data_dir / 'notify' / 'letters'}; "
        f"{summary['traces_complete']:.0%} of tasks traced through all four services; "
        f"{summary['elapsed_s']} s."
    )
    if as_json:
        print(json.dumps(summary))


@app.command()
def bench(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last")] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller samples (about a minute)")
    ] = False,
    out: Annotated[Path, typer.Option(help="Where results.json and results.png go")] = Path(
        "bench"
    ),
    ingest_only: Annotated[
        bool,
        typer.Option(
            "--ingest-only",
            help="Only ingest's batch endpoint (with its relay), 3 runs and their median",
        ),
    ] = False,
) -> None:
    """Measure ingest, scoring, latency, re-scoring and memory, each beside its baseline."""
    from proactive.bench import run, run_ingest_only, write_outputs

    if ingest_only:
        alone = run_ingest_only(10_000 if quick else 30_000, repeats=3)
        console.print(
            f"ingest alone: median {alone['ingest_alone_median_per_s']:,} events/s "
            f"(runs {alone['ingest_alone_events_per_s']}, {alone['ingest_alone_events']:,} "
            f"events each); {alone['ingest_alone_median_per_cpu_s']:,} per CPU-second of ingest"
        )
        if as_json:
            print(json.dumps(alone))
        return
    results = run(quick)
    results_path, chart_path = write_outputs(results, out)
    r = results
    table = Table(title="proactive bench", show_lines=False)
    for column in ("what", "measured", "beside it", "target"):
        table.add_column(column)
    table.add_row(
        "ingest, batch endpoint",
        f"{r['ingest_events_per_s']:,} events/s",
        f"raw produce {r['broker_produce_per_s']:,}/s",
        "≥ 5,000/s",
    )
    table.add_row(
        "scoring, one worker",
        f"{r['scoring_events_per_s']:,} events/s",
        f"naive baseline {r['baseline_scoring_events_per_s']:,}/s",
        "≥ 10,000/s, ≥ 5 times the baseline",
    )
    table.add_row(
        "scoring, per CPU-second",
        f"{r['scoring_events_per_cpu_s']:,} events",
        f"naive {r['baseline_events_per_cpu_s']:,}; Faust + table write "
        f"{r['table_faust_events_per_cpu_s']:,}; Faust alone "
        f"{r['noop_faust_events_per_cpu_s']:,}",
        "",
    )
    table.add_row(
        "scoring latency at 1,000/s (p50 / p99)",
        f"{r['scoring_latency_ms_p50']} / {r['scoring_latency_ms_p99']} ms",
        f"source change to score {r['e2e_latency_ms_p50']} / {r['e2e_latency_ms_p99']} ms",
        "p99 ≤ 50 ms",
    )
    table.add_row(
        "full re-score of 220,000",
        f"{r['rescore_220k_s']} s",
        f"one ONNX call {r['single_onnx_call_220k_s']} s",
        "≤ 10 s",
    )
    table.add_row("state per resident", f"{r['state_bytes_per_resident']:,} B",
                  f"RocksDB folder {r['bytes_per_resident']:,} B per resident", "≤ 2 KB")  # fmt: skip
    console.print(table)
    console.print(f"Written to {results_path} and {chart_path}.")
    if as_json:
        print(json.dumps(results))


@app.command()
def rescore(
    scoring_url: Annotated[
        str | None, typer.Option(help="The scoring worker (default: from PROACTIVE_SCORING_PORT)")
    ] = None,
) -> None:
    """Score every resident again (nightly, or after a model changed); hysteresis decides
    which scores are published."""
    settings = CommonSettings()
    url = scoring_url or Ports.from_env().url("scoring")
    try:
        response = httpx.post(
            f"{url}/rescore",
            headers={"Authorization": f"Bearer {settings.service_token}"},
            timeout=600,
        )
    except httpx.HTTPError as error:
        console.print(f"[red]The scoring worker at {url} did not answer:[/red] {error}")
        raise typer.Exit(1) from error
    if response.status_code != 200:
        console.print(
            f"[red]The re-score was refused ({response.status_code}):[/red] {response.text}"
        )
        raise typer.Exit(1)
    result = response.json()
    console.print(
        f"Re-scored {result['residents']:,} residents; {result['scores_emitted']:,} scores "
        f"published so far by this worker."
    )
    print(json.dumps(result))


def _ingest_command(*arguments: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ingest", *arguments],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    if result.returncode != 0:
        console.print(f"[red]That did not work:[/red] {result.stderr.strip()}")
        raise typer.Exit(1)
    print(result.stdout.strip())


@keys.command("create")
def create_key(source: Annotated[str, typer.Option(help="The source system's name")]) -> None:
    """Print a new API key for a source system; a running stack accepts it at once."""
    _ingest_command("create-key", "--source", source)


@keys.command("revoke")
def revoke_keys(source: Annotated[str, typer.Option(help="The source system's name")]) -> None:
    """Revoke every API key of a source system (403 from then on)."""
    _ingest_command("revoke-keys", "--source", source)


@app.command()
def train(
    people: Annotated[int | None, typer.Option(help="People in the synthetic borough")] = None,
    seed: Annotated[int | None, typer.Option(help="Borough seed")] = None,
    out: Annotated[Path | None, typer.Option(help="Where to write the models")] = None,
) -> None:
    """Retrain the three models on the synthetic borough (reproducible by seed)."""
    command = [sys.executable, "-m", "scoring.training"]
    for flag, value in (("--people", people), ("--seed", seed), ("--out", out)):
        if value is not None:
            command += [flag, str(value)]
    raise typer.Exit(subprocess.call(command))


if __name__ == "__main__":
    app()
