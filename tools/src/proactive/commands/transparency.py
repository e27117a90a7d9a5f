"""`proactive transparency`: make (or bring up to date) the algorithmic transparency record.

A plain function with typer annotations; `proactive.cli` registers it with
`app.command()(transparency)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from proactive.transparency import REPOSITORY, Sources, is_current, write_record

console = Console(stderr=True)
DEFAULT_OUT = REPOSITORY / "docs" / "transparency"


def transparency(
    out: Annotated[
        Path, typer.Option(help="Where the record, its page and its history are written")
    ] = DEFAULT_OUT,
    owner: Annotated[
        Path | None,
        typer.Option(help="The council's own answers (default: owner.yaml in the output folder)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line")] = False,
    check: Annotated[
        bool,
        typer.Option(help="Write nothing; fail if a model, the policy or an answer changed"),
    ] = False,
) -> None:
    """Make the Algorithmic Transparency Recording Standard record (tier 1 and tier 2) from
    the model cards, the outreach policy, the data-minimisation register and the
    deployment, as JSON and as a web page; a new version whenever any of them changes."""
    sources = Sources(owner=owner or out / "owner.yaml")
    if check:
        current = is_current(out, sources)
        if as_json:
            print(json.dumps({"current": current}))
        elif current:
            console.print("The transparency record is up to date.")
        else:
            console.print("The transparency record is out of date: run `proactive transparency`.")
        raise typer.Exit(0 if current else 1)
    written = write_record(out, sources)
    summary = {
        "inputs_hash": written.inputs_hash,
        "new_version": written.new_version,
        "versions": written.versions,
        "record": str(written.record),
        "page": str(written.page),
        "needs_a_person": written.needs_a_person,
    }
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"{'A new version of' if written.new_version else 'No change to'} the transparency "
        f"record ({written.inputs_hash[:12]}; {written.versions} version(s) kept)."
    )
    console.print(f"  {written.record}\n  {written.page}")
    if written.needs_a_person:
        console.print(
            f"[yellow]{len(written.needs_a_person)} answers need a person[/yellow] "
            f"(fill them in {sources.owner}): " + ", ".join(written.needs_a_person)
        )
