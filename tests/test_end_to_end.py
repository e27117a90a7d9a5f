"""The whole pipeline as a newcomer runs it: four service processes and a Tansu broker,
driven by `proactive demo` through ingest's HTTP API."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_a_demo_run_ends_in_tasks_letters_and_one_trace_across_all_four_services(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "proactive.cli", "demo", "--events", "600", "--json"],
        env={**os.environ, "PROACTIVE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    assert summary["events_sent"] == 600
    assert summary["events_accepted"] + summary["events_rejected"] == 600
    assert summary["scores_emitted"] > 0
    assert summary["tasks_created"] > 0
    assert summary["letters_rendered"] > 0
    assert summary["letters_rendered"] == summary["tasks_approved"]
    assert summary["traces_complete"] >= 0.95

    letters = list((Path(summary["data_dir"]) / "notify" / "letters").glob("*.pdf"))
    assert len(letters) == summary["letters_rendered"]
    assert letters[0].read_bytes().startswith(b"%PDF")
