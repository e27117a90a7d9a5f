"""The fault-injection run, quick variant: kill -9 of every service, a broker restart,
PostgreSQL stopped and started, GOV.UK Notify answering 500, 429 and timing out, one at a
time under a steady stream; then nothing may be lost and nothing done twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from proactive.faults import PG_BIN

pytestmark = [
    pytest.mark.e2e,
    # A bound, not a measure: the quick run takes about 5 minutes on 2 cores, longer when
    # the machine is shared with other test runs.
    pytest.mark.timeout(1600),
    pytest.mark.skipif(
        not (PG_BIN / "initdb").exists(), reason="PostgreSQL 15's initdb is not installed"
    ),
]


@pytest.fixture(scope="module")
def summary(tmp_path_factory) -> dict:
    data_dir = tmp_path_factory.mktemp("faults")
    run = subprocess.Popen(
        [sys.executable, "-m", "proactive.cli", "faults", "--quick", "--json",
         "--out", str(data_dir / "RELIABILITY.md")],
        env={**os.environ, "PROACTIVE_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        stdout, stderr = run.communicate(timeout=1400)
    except subprocess.TimeoutExpired:
        # SIGTERM, not SIGKILL: the run then stops its services, broker and PostgreSQL.
        run.terminate()
        stdout, stderr = run.communicate(timeout=120)
    completed = subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr)
    assert completed.stdout.strip(), completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["returncode"] = completed.returncode
    result["report"] = (data_dir / "RELIABILITY.md").read_text(encoding="utf-8")
    return result


def test_every_fault_was_injected_under_a_steady_stream(summary):
    assert summary["faults_injected"] == 9
    assert summary["accepted"] > 0
    assert summary["stream_retries"] > 0  # the stream really met the faults


def test_nothing_accepted_is_lost_and_nothing_is_done_twice(summary):
    assert summary["lost"] == 0
    assert summary["duplicates"] == 0
    assert summary["published"] == summary["accepted"]
    assert summary["scored"] + summary["dead_lettered"] >= summary["accepted"]
    assert summary["returncode"] == 0


def test_every_approved_task_got_its_letter_through_notifys_outages(summary):
    assert summary["tasks_approved"] > 0
    assert summary["approved_without_letter"] == 0
    # Notify really answered 500, 429 and too late while letters were going out.
    assert set(summary["notify_outage_answers"]) == {"500", "429", "timeout"}
    assert summary["letters_taken_by_notify"] <= summary["letters"]


def test_the_report_holds_the_counts_and_the_command(summary):
    report = summary["report"]
    assert "proactive faults --quick" in report
    assert f"| **lost** | **{summary['lost']}** |" in report
    assert "kill -9 scoring" in report and "broker restart" in report
