"""The worker runs on onnxruntime and numpy alone: no training libraries, no tools."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.unit
def test_the_worker_never_imports_scikit_learn_onnx_or_the_borough() -> None:
    probe = (
        "import sys, scoring.__main__, scoring.app, scoring.handlers;"
        "bad = [m for m in ('sklearn', 'onnx', 'proactive') if m in sys.modules];"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
