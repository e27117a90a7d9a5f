"""`proactive faults`: the whole-stack fault-injection run, its table and RELIABILITY.md.

A plain function with typer annotations; `proactive.cli` registers it with
`app.command()(faults)`.
"""

from __future__ import annotations

import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from proactive.faults import FaultRun, FaultRunFailed, Reconciliation, machine
from shared.settings import CommonSettings

console = Console(stderr=True)
REPOSITORY = Path(__file__).resolve().parents[4]
COLUMNS = (
    ("after", "fault"),
    ("accepted", "accepted"),
    ("published", "published"),
    ("scored", "scored"),
    ("dead-lettered", "dead_lettered"),
    ("lost", "lost"),
    ("tasks", "tasks"),
    ("approved", "tasks_approved"),
    ("letters", "letters"),
    ("taken by Notify", "letters_taken_by_notify"),
    ("duplicates", "duplicates"),
    ("recovered in s", "seconds_to_recover"),
    ("settled in s", "seconds_to_settle"),
)


def faults(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Fewer changes and shorter outages: about 5 minutes instead of 8"
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the results here as Markdown (e.g. RELIABILITY.md)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last")] = False,
    seed: Annotated[int, typer.Option(help="Borough seed")] = 11,
) -> None:
    """Inject faults one at a time into a running stack and reconcile after each: kill -9
    of every service, a broker restart, PostgreSQL stopped and started, GOV.UK Notify
    answering 500, 429 and timing out. Fails if anything is lost or duplicated."""
    # A run stopped from outside (CI's timeout, Ctrl-C) still stops the stack, the broker
    # and its PostgreSQL cluster: SIGTERM unwinds like an exception.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work_dir = (
        CommonSettings().data_dir / "faults" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    ).resolve()
    started_at = datetime.now(UTC)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        bar = progress.add_task("Starting", total=1.0)

        def report(message: str, share: float) -> None:
            if share >= 0:
                progress.update(bar, description=message, completed=share)
            else:
                progress.update(bar, description=message)

        def print_result(result: Reconciliation) -> None:
            progress.console.print(
                f"after {result.fault}: accepted {result.accepted}, published {result.published}, "
                f"scored {result.scored}, lost {result.lost}, duplicates {result.duplicates}, "
                f"settled in {result.seconds_to_settle} s"
                + "".join(f"; [red]{problem}[/red]" for problem in result.problems)
            )

        run = FaultRun(work_dir, quick=quick, seed=seed, progress=report, on_result=print_result)
        try:
            with run.running():
                run.run()
        except FaultRunFailed as error:
            console.print(f"[red]The fault-injection run could not go on:[/red] {error}")
            raise typer.Exit(2) from error
    summary = run.summary()
    summary["work_dir"] = str(work_dir)
    console.print(results_table(run.results))
    console.print(
        f"{summary['faults_injected']} faults injected; {summary['accepted']} changes accepted, "
        f"{summary['scored']} in scoring's state, {summary['dead_lettered']} dead-lettered; "
        f"lost {summary['lost']}, duplicates {summary['duplicates']}; {summary['elapsed_s']} s. "
        f"Logs in {work_dir / 'logs'}."
    )
    if out is not None:
        out.write_text(reliability_markdown(run, summary, started_at, quick), encoding="utf-8")
        console.print(f"Written to {out}.")
    if as_json:
        print(json.dumps(summary))
    if not summary["clean"]:
        for result in run.results:
            for problem in result.problems:
                console.print(f"[red]{result.fault}:[/red] {problem}")
        raise typer.Exit(1)


def results_table(results: list[Reconciliation]) -> Table:
    table = Table(title="Reconciliation after each fault (cumulative counts)")
    for heading, _ in COLUMNS:
        table.add_column(heading, justify="left" if heading == "after" else "right")
    for result in results:
        cells = [str(_value(result, attribute)) for _, attribute in COLUMNS]
        style = None if result.clean else "red"
        table.add_row(*cells, style=style)
    return table


def _value(result: Reconciliation, attribute: str) -> Any:
    return getattr(result, attribute)


def reliability_markdown(
    run: FaultRun, summary: dict[str, Any], started_at: datetime, quick: bool
) -> str:
    command = "proactive faults" + (" --quick" if quick else "") + " --out RELIABILITY.md"
    lines = [
        "# Reliability: the fault-injection run",
        "",
        "Generated by `proactive faults`; do not edit by hand. It shows what happened to a",
        "steady stream of synthetic changes while faults were injected into the running",
        "stack one at a time, and what the reconciliation after each found.",
        "",
        f"- Command: `{command}` (from the repository root, after `make setup`; `make test-faults`",
        "  runs the shorter `--quick` variant, which CI runs as part of `make test`)",
        f"- Date: {started_at.strftime('%Y-%m-%d %H:%M UTC')}, {summary['elapsed_s']} s",
        f"- Machine: {machine()}",
        "- Stack: the embedded Tansu broker; ingest, outreach and notify on a private PostgreSQL 15",
        "  cluster made for the run; scoring on its RocksDB store; notify sending letters through",
        "  GOV.UK Notify's API to a local fake of it",
        "",
        "## Totals",
        "",
        "| | |",
        "|---|---|",
        f"| faults injected | {summary['faults_injected']} |",
        f"| changes accepted by ingest | {summary['accepted']} |",
        f"| published to resident.events.v1 | {summary['published']} |",
        f"| in scoring's state (scored) | {summary['scored']} |",
        f"| dead-lettered | {summary['dead_lettered']} |",
        f"| refused by ingest (kept with reason) | {summary['rejected']} |",
        f"| **lost** | **{summary['lost']}** |",
        f"| **duplicates** (tasks for one resident, letters for one task or taken twice by Notify) | **{summary['duplicates']}** |",
        f"| approved tasks without a letter | {summary['approved_without_letter']} |",
        f"| scores on risk.scores.v1 | {summary['scores']} |",
        f"| tasks / approved | {summary['tasks']} / {summary['tasks_approved']} |",
        f"| letters / taken by Notify | {summary['letters']} / {summary['letters_taken_by_notify']} |",
        f"| Notify outage answers given | {', '.join(f'{k}: {v}' for k, v in sorted(summary['notify_outage_answers'].items())) or 'none'} |",
        f"| batches the stream sent again after a failure | {summary['stream_retries']} |",
        "",
        "## Faults, in the order injected",
        "",
    ]
    lines += [f"{n}. **{name}**: {what}" for n, (name, what) in enumerate(run.injected, 1)]
    lines += [
        "",
        "## Reconciliation after each fault (cumulative)",
        "",
        "| " + " | ".join(heading for heading, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += [
        "| " + " | ".join(str(_value(r, attribute)) for _, attribute in COLUMNS) + " |"
        for r in run.results
    ]
    lines += [
        "",
        "## How it reconciles",
        "",
        "- *accepted*: rows for resident.events.v1 in ingest's outbox (PostgreSQL); *published*:",
        "  those the broker acknowledged. After the broker restart the outbox publishes again",
        "  what the broker forgot.",
        "- *scored*: accepted changes found among the event ids scoring's state keeps for the",
        "  resident (`/residents/{key}`); *lost* is an accepted change that is neither there nor",
        "  on the dead-letter topic when the pipeline has settled.",
        "- *tasks*: rows in outreach's task table; a second task for one resident is a duplicate.",
        "- *letters*: rows in notify's letter table; a second letter for one task, or a second",
        "  letter with one reference taken by GOV.UK Notify, is a duplicate. Every approved task",
        "  must have its letter.",
        "",
        "## What the run found, and its limits",
        "",
        "- Fixed: after a broker restart the first service back recreated the shared topics and",
        "  the other relays saw nothing missing, so ingest's outbox did not publish again what",
        "  the broker had forgotten. Each outbox now keeps a marker topic of its own",
        "  (`shared/outbox.py`; test: `tests/faults/test_outbox_after_broker_restart.py`).",
        "- Scoring has no outbox: scores the broker forgot before outreach read them are not",
        "  published again (events that arrive later re-score the resident). The run checks that",
        "  every resident with a score on the topic is known to outreach, not that no score was",
        "  forgotten by the broker.",
        "- The embedded broker keeps everything in memory; with Apache Kafka (production) a",
        "  broker restart loses nothing and the replay is not needed.",
        "",
    ]
    return "\n".join(lines)
